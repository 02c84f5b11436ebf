"""Benchmark: the DRE model cube (render + store) and its PSF convolution vs same-run baselines.

Rows (each measured in a fresh subprocess; peak RSS = ``VmHWM`` after resetting the mark):

- ``build``: :func:`lazyastro.dre.make_models` on the default grid (2730 De Vaucouleurs models,
  128 x 128) streamed to Zarr with :func:`lazyastro.dre.write_models` (what
  :func:`lazyastro.dre.default_models` does once), threaded scheduler;
- ``baseline render``: the regeneration recipe done plainly in numpy: every pixel point-sampled
  on a uniform 10 x 10 sub-grid (the spec's minimum oversampling, everywhere), vectorised per
  stamp; measured on a subset and reported per model, with its error on the hardest model;
- ``convolve``: :func:`lazyastro.dre.convolve` of the whole cube with a 25 x 25 PSF (batched
  real FFTs, one task per q slab), computed into memory;
- ``baseline convolve``: the legacy CPU form, ``scipy.signal.fftconvolve(model, psf, 'same')``
  stamp by stamp (on one q slab, per model).

``cpu/wall`` shows how many cores really worked (the machine may be shared; ratios are from
the same run, both by wall-clock and by CPU time, which the load of other processes does not
fake).

    python benchmarks/dre_models.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FINE = dict(order=5, central_order=7, central_cells=3, levels=12, accuracy=4.0, max_cells=128)


def _baseline_stamp(n, q, theta, r_e, boxsize=128, over=10):
    import numpy as np
    from scipy.special import gammaincinv

    b = gammaincinv(2 * n, 0.5)
    sub = (np.arange(boxsize * over) + 0.5) / over - 0.5 - boxsize // 2
    dy, dx = np.meshgrid(sub, sub, indexing="ij")
    t = np.radians(theta)
    xp, yp = dx * np.cos(t) + dy * np.sin(t), (-dx * np.sin(t) + dy * np.cos(t)) / q
    img = np.exp(-b * ((np.hypot(xp, yp) / r_e) ** (1 / n) - 1))
    img = img.reshape(boxsize, over, boxsize, over).mean(axis=(1, 3))
    return img / img.sum()


def case(name: str, tmp: str) -> dict:
    import numpy as np

    from lazyastro.core.memory import peak_rss, reset_peak_rss
    from lazyastro.dre import convolve, default_grid, make_models, open_models, write_models
    from lazyastro.dre.kernels_models import render_stamps

    render_stamps([4.0], [0.5], [0.0], [1.0], 16)  # Numba: load the cached machine code
    yy, xx = np.mgrid[:25, :25]
    psf = np.exp(-((yy - 12) ** 2 + (xx - 12) ** 2) / (2 * 1.5 ** 2))
    cube = os.path.join(tmp, "models.zarr")
    reset_peak_rss()
    c0, t0 = time.process_time(), time.perf_counter()
    extra: dict = {}
    if name == "build":
        write_models(make_models(**default_grid()), cube, progress=False, scheduler="threads")
        count = 2730
    elif name == "baseline render":
        g = default_grid()
        rows = [(4.0, q, th, 10 ** lr) for q in g["q"][::3] for th in (0.0, 45.0) for lr in g["log_r"][::5]]
        for r in rows:
            _baseline_stamp(*r)
        count = len(rows)
    elif name == "convolve":
        convolve(open_models(cube), psf).compute(scheduler="threads")
        count = 2730
    elif name == "baseline convolve":
        from scipy.signal import fftconvolve

        slab = open_models(cube).isel(n=0, q=0).values.astype(np.float64)
        for st in slab.reshape(-1, 128, 128):
            fftconvolve(st, psf / psf.sum(), mode="same")
        count = slab.shape[0] * slab.shape[1]
    else:
        raise SystemExit(f"unknown case {name}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if name == "baseline render":  # accuracy of plain 10x oversampling on the hardest model
        hard = (4.0, 0.1, 0.0, 0.25)
        ref = render_stamps(*[[v] for v in hard], 128, **FINE)[0]
        extra["l1_error_hardest"] = float(np.abs(_baseline_stamp(*hard) - ref).sum())
        extra["l1_error_hardest_lazyastro"] = float(np.abs(render_stamps(*[[v] for v in hard], 128)[0] - ref).sum())
    return {"case": name, "models": count, "wall": wall, "cpu": cpu, "rss": peak_rss() / 2**20, **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--tmp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.tmp)))
        return
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        res = {}
        for name in ("build", "baseline render", "convolve", "baseline convolve"):
            out = subprocess.run([sys.executable, __file__, "--case", name, "--tmp", tmp], check=True,
                                 capture_output=True, text=True).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
    print(f"DRE model cube, default grid (2730 x 128^2), load average {load:.1f} before the run\n")
    print("| case | models | wall s | cpu s | cpu/wall | models/s | models/cpu-s | peak RSS MB | vs baseline "
          "(wall) | vs baseline (cpu) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, base in (("build", "baseline render"), ("baseline render", None), ("convolve", "baseline convolve"),
                       ("baseline convolve", None)):
        r = res[name]
        rate = r["models"] / r["wall"]
        crate = r["models"] / r["cpu"]
        ratio = f"{rate / (res[base]['models'] / res[base]['wall']):.1f}x" if base else "1x"
        cratio = f"{crate / (res[base]['models'] / res[base]['cpu']):.1f}x" if base else "1x"
        print(f"| {name} | {r['models']} | {r['wall']:.1f} | {r['cpu']:.1f} | {r['cpu'] / r['wall']:.2f} | "
              f"{rate:.1f} | {crate:.1f} | {r['rss']:.0f} | {ratio} | {cratio} |")
    b = res["baseline render"]
    print(f"\nL1 error (stamp flux units) on the hardest model (n=4, q=0.1, theta=0, R_e=0.25 px) vs a 4x finer "
          f"reference: lazyastro {b['l1_error_hardest_lazyastro']:.1e}, uniform 10x oversampling "
          f"{b['l1_error_hardest']:.1e}")


if __name__ == "__main__":
    main()
