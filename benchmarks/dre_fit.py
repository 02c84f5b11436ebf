"""Benchmark: the DRE chi^2 fit, objects per second and peak RSS, against the legacy algorithm.

A legacy-size cube (1 x 10 x 13 x 21 = 2730 models of 128 x 128, random positive float32:
the speed does not depend on the model shapes) and objects with elliptical masks of about
300, 1500 and 5000 pixels. Methods, each in a fresh subprocess (so peak RSS is its own):

* ``lazyastro-1`` / ``lazyastro-2`` -- :func:`lazyastro.dre.chi2` (``mode="legacy"``) computed
  with the threaded scheduler on 1 and 2 workers (the compiled kernel releases the GIL);
* ``legacy`` -- the legacy per-object algorithm in plain numpy, one core: the cube in float64
  (as the legacy tool loads it), per object gather the mask pixels of every model
  (``models[..., iy, ix]`` -> ``(K, Npix)``), then ``F_k``, ``s_k``, the residual, the
  variance, the ratio and ``nanmean`` as whole-array passes.

Methods run interleaved per mask size and ``--repeat`` times (best time kept) so that all
see the same machine load. ``x legacy`` = objects/s (wall clock) over the legacy's.
``objects per CPU-s`` divides by the CPU time of the process (all its threads), so
``x legacy per core`` compares the work per core whatever the load of a shared machine. ``RSS+`` is the peak RSS above the process's RSS
once the cube and the cuts are built (kernel high-water mark, reset before timing).

    python benchmarks/dre_fit.py              # masks 300, 1500, 5000 px
    python benchmarks/dre_fit.py --quick      # fewer objects, one repeat
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GRID = (1, 10, 13, 21)
B = 128


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def make_cube():
    import numpy as np

    rng = np.random.default_rng(0)
    cube = rng.random((int(np.prod(GRID)), B, B), dtype=np.float32)
    cube += 0.01
    return cube.reshape(*GRID, B, B)


def make_cuts(cube, npix: int, n_obj: int):
    """Objects = flux x a random model + noise; elliptical masks of about ``npix`` pixels."""
    import numpy as np

    rng = np.random.default_rng(npix)
    flat = cube.reshape(-1, B, B)
    yy, xx = np.mgrid[:B, :B] - B // 2
    obj = np.empty((n_obj, B, B), np.float32)
    seg = np.empty((n_obj, B, B), bool)
    rms = np.empty((n_obj, B, B), np.float32)
    for i in range(n_obj):
        q = 0.5 + 0.5 * rng.random()
        t = np.pi * rng.random()
        xp, yp = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
        a = np.sqrt(npix / (np.pi * q))
        seg[i] = xp**2 + (yp / q) ** 2 < a * a
        sigma = 0.05 + 0.01 * rng.random((B, B))
        obj[i] = 1e3 * flat[rng.integers(flat.shape[0])] + sigma * rng.standard_normal((B, B))
        rms[i] = sigma
    return obj, seg, rms


def legacy_fit(cube64, d, mask, rms):
    """The legacy per-object chi^2 (float64 numpy, one object)."""
    import numpy as np

    iy, ix = np.nonzero(mask)
    mk = cube64[..., iy, ix]  # (N, Q, T, R, Npix): the gather
    dp = d[iy, ix].astype(np.float64)
    v = rms[iy, ix].astype(np.float64) ** 2
    fd = np.nansum(dp)
    fk = np.sum(mk, axis=-1)
    s = (fd / fk)[..., None]
    sm = s * mk
    return np.nanmean((dp - sm) ** 2 / (sm + v), axis=-1)


def run_one(method: str, npix: int, n_obj: int, repeat: int, block: int) -> dict:
    import numpy as np

    from lazyastro.core.memory import current_rss, peak_rss, reset_peak_rss

    cube = make_cube()
    obj, seg, rms = make_cuts(cube, npix, n_obj)
    real_npix = float(seg.sum(axis=(1, 2)).mean())
    times, cpus = [], []
    if method == "legacy":
        cube64 = cube.astype(np.float64)
        del cube
        legacy_fit(cube64, obj[0], seg[0], rms[0])  # warm
        base = current_rss()
        reset_peak_rss()
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            for i in range(n_obj):
                legacy_fit(cube64, obj[i], seg[i], rms[i])
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        workers = 1
    else:
        import dask
        import xarray as xr

        from lazyastro.dre import chi2

        workers = int(method.rsplit("-", 1)[1])
        dims = ("n", "q", "theta", "log_r", "y", "x")
        models = xr.DataArray(cube, dims=dims, coords={d: np.arange(s, dtype=float) for d, s in zip(dims[:4], GRID)})
        cuts = xr.Dataset({"obj": (("object", "y", "x"), obj), "seg": (("object", "y", "x"), seg),
                           "rms": (("object", "y", "x"), rms)})
        with dask.config.set(scheduler="threads", num_workers=workers):
            chi2(models, cuts.isel(object=slice(0, 2)), mode="legacy").compute()  # compile / warm
            base = current_rss()
            reset_peak_rss()
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                chi2(models, cuts, mode="legacy", objects_per_block=block).compute()
                times.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
    best = min(times)
    return {"method": method, "target": npix, "npix": real_npix, "objects": n_obj, "seconds": best, "rate": n_obj / best,
            "cpu_rate": n_obj / min(cpus),
            "workers": workers, "peak_rss_mib": peak_rss() / 2**20,
            "rss_plus_mib": (peak_rss() - base) / 2**20, "times": times, "load": _load()}


def _child(method, npix, n_obj, repeat, block) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([method, npix, n_obj, repeat, block])]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--masks", default="300,1500,5000", help="mask sizes in pixels")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--block", type=int, default=64, help="objects per task (lazyastro; the chi2 default)")
    ap.add_argument("--objects", type=int, default=256, help="objects per lazyastro run")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(*json.loads(args.child))))
        return 0
    repeat = 1 if args.quick else args.repeat
    rows = []
    print(f"cube {'x'.join(map(str, GRID))} = 2730 models of {B}x{B} float32; load before: {_load()}",
          file=sys.stderr)
    for npix in (int(v) for v in args.masks.split(",")):
        # lazyastro: a tile's worth of objects (the per-cube graph work is amortised as in a real
        # fit); legacy: a few objects (its cost per object is constant)
        n_ours = args.objects
        n_legacy = max(2, min(12, int(3000 / npix) + 2))
        if args.quick:
            n_ours, n_legacy = 2 * args.block, 2
        for method, n in (("legacy", n_legacy), ("lazyastro-1", n_ours), ("lazyastro-2", n_ours)):
            r = _child(method, npix, n, repeat, args.block)
            rows.append(r)
            print(f"  {method:<12} mask {npix:>5}: {r['rate']:8.2f} objects/s  (load {r['load']})", file=sys.stderr)
    print()
    print("| mask px | method | objects | time s | objects/s | x legacy | objects per CPU-s | x legacy per core | peak RSS MiB | RSS+ MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        leg = next(x for x in rows if x["method"] == "legacy" and x["target"] == r["target"])
        ratio = r["rate"] / leg["rate"]
        core = r["cpu_rate"] / leg["cpu_rate"]
        print(f"| {r['npix']:.0f} | {r['method']} | {r['objects']} | {r['seconds']:.2f} | {r['rate']:.2f} | "
              f"{ratio:.1f} | {r['cpu_rate']:.2f} | {core:.1f} | {r['peak_rss_mib']:.0f} | {r['rss_plus_mib']:.0f} |")
    print(f"\nload average after: {_load()} (2 cores shared with other jobs: compare ratios, not times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
