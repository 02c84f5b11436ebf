"""Benchmark: GAN image statistics (lazyastro.gan) vs a same-run baseline written like the legacy pipeline.

Per statistic and image size (256x256 and 1024x1024, 100 thresholds) it prints images/s and
peak RSS of the lazyastro kernel next to a baseline written the legacy way:

- Minkowski functionals: a compiled (Numba) marching-squares pass over every cell, called
  once per threshold and image (as the legacy pipeline calls ``minkfncts2d.MF2D``), with the
  same per-cell formulas;
- power spectrum: the ring-sampling PSD, one ``linspace`` ring per radius and a per-point
  bilinear interpolation (Python loop over sample points), as the legacy ``calcSquareImagePSD``;
- histogram: ``np.histogram(np.log10(x))`` per batch (what the legacy tool does).

Then the whole statistics job (``compute_statistics``: PSD + histogram + functionals, legacy
mode, or ``--job-mode default``) on 1 and 2 workers, under two schedulers: the threaded one (``dask.config``
``num_workers``; the Numba sweep runs with ``nogil=True``, FFTs and large ufuncs release the
GIL too) and a ``distributed.LocalCluster`` of 1 or 2 single-threaded worker processes (no
GIL in common at all). Besides the wall-clock speed-up each row shows the CPU time used per
wall-clock second (``cpu/wall``: about 2 when both workers really compute at once), which
the load of other processes on a shared machine does not fake, and the 1-minute load
average before the run. Each measurement runs in a fresh subprocess (peak RSS = ``VmHWM``
after resetting the mark; for the cluster, the largest worker's); Numba compilation is
warmed up (cached) first, and so is the job itself on a tiny set.

    python benchmarks/gan_stats.py            # full table
    python benchmarks/gan_stats.py --quick    # fewer images
    python benchmarks/gan_stats.py --job-only --repeat 3   # just the 1-vs-2-worker table, medians
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

SIZES = (256, 1024)
THRESHOLDS = 100


def _images(size: int, n: int):
    from lazyastro.gan.simulate import simulate_set

    return simulate_set(n, size, seed=7, slope=-2.8)


_MF2D = None


def _baseline_mf(z, ts):
    """Legacy call pattern: one compiled pass over every cell per threshold (compiled once per process)."""
    global _MF2D
    import numpy as np

    if _MF2D is None:
        from numba import njit

        from lazyastro.gan._mf_numba import _cell

        @njit(cache=True)
        def mf2d(img, t):
            h, w = img.shape
            f_ = u_ = c_ = 0.0
            for y in range(h - 1):
                for x in range(w - 1):
                    f, u, c = _cell(img[y, x], img[y, x + 1], img[y + 1, x + 1], img[y + 1, x], t, True)
                    f_ += f
                    u_ += u
                    c_ += c
            return f_, u_, c_

        _MF2D = mf2d
    return np.array([_MF2D(z, float(t)) for t in ts]).T


def _baseline_psd(image):
    import numpy as np

    psd2d = np.abs(np.fft.fftshift(np.fft.fft2(image))) ** 2
    h, w = psd2d.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0

    def bilinear(x, y):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        x1, y1 = min(max(x0 + 1, 0), w - 1), min(max(y0 + 1, 0), h - 1)
        x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
        return (psd2d[y0, x0] * (x1 - x) * (y1 - y) + psd2d[y1, x0] * (x1 - x) * (y - y0)
                + psd2d[y0, x1] * (x - x0) * (y1 - y) + psd2d[y1, x1] * (x - x0) * (y - y0))

    out = []
    for r in range(int(min(h, w) / 2 - 1) + 1):
        theta = np.linspace(0, 2 * np.pi, int(2 * np.pi * r + 1), endpoint=False)
        out.append(np.mean([bilinear(cx + r * np.cos(t), cy + r * np.sin(t)) for t in theta]))
    return np.array(out)


def worker(case: dict) -> None:
    import numpy as np

    from lazyastro.core.memory import peak_rss, reset_peak_rss
    from lazyastro.gan import kernels as K

    size, n, stat, impl = case["size"], case["n"], case["stat"], case["impl"]
    imgs = _images(size, n)
    ts = np.linspace(-1, 1, THRESHOLDS)
    ln = [float(np.log(imgs.min())), float(np.log(imgs.max()))]
    # warm-up (compilation from the on-disk cache, FFT plans)
    if stat == "mf2d":
        z0 = K.log_normalise(imgs[0][:32, :32], ln)
        (K.minkowski(z0, ts) if impl == "lazyastro" else _baseline_mf(z0, ts))
    if stat == "job":
        print(json.dumps(_job(case, imgs, ln)))
        return
    reset_peak_rss()
    t0 = time.perf_counter()
    for im in imgs:
        if stat == "mf2d":
            z = K.log_normalise(im, ln)
            K.minkowski(z, ts, convention="legacy") if impl == "lazyastro" else _baseline_mf(z, ts)
        elif stat == "psd":
            K.power_spectrum(im, mode="legacy") if impl == "lazyastro" else _baseline_psd(im)
        elif stat == "psd-default":
            K.power_spectrum(im)
        else:
            K.intensity_histogram(im) if impl == "lazyastro" else np.histogram(np.log10(im), 100, (-5, 10))
    dt = time.perf_counter() - t0
    print(json.dumps({"time": dt, "rate": n / dt, "rss": peak_rss() / 2**20}))


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _reset_and_cpu() -> float:
    from lazyastro.core.memory import reset_peak_rss

    reset_peak_rss()
    return _cpu_seconds()


def _peak_mib() -> float:
    from lazyastro.core.memory import peak_rss

    return peak_rss() / 2**20


def _job(case: dict, imgs, ln) -> dict:
    """The whole statistics job on ``workers`` workers of ``scheduler`` (threads or a local cluster)."""
    import os
    import tempfile as tf

    import dask

    from lazyastro.core.memory import peak_rss, reset_peak_rss
    from lazyastro.gan import compute_statistics, write_imageset

    d = tf.mkdtemp()
    write_imageset(imgs, f"{d}/s.h5", lognorminfo=ln, progress=False)
    write_imageset(imgs[:2, :32, :32], f"{d}/w.h5", lognorminfo=ln, progress=False)
    batch, workers = case.get("batch", 16), case["workers"]

    def run(src, cache, sched):
        compute_statistics(src, cache, batch_size=batch if src.endswith("s.h5") else 1, mode=case.get("mode", "legacy"),
                           scheduler=sched, progress=False, overwrite=True)

    load = os.getloadavg()[0]
    if case["scheduler"] == "threads":
        with dask.config.set(num_workers=workers):
            run(f"{d}/w.h5", f"{d}/wc.h5", "threads")  # warm-up: Numba cache, FFT plans
            reset_peak_rss()
            c0, t0 = _cpu_seconds(), time.perf_counter()
            run(f"{d}/s.h5", f"{d}/c.h5", "threads")
            dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        rss = peak_rss() / 2**20
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as lc, \
                Client(lc) as client:
            run(f"{d}/w.h5", f"{d}/wc.h5", lc.scheduler_address)  # warm-up in every worker
            client.run(_reset_and_cpu)
            c0 = sum(client.run(_cpu_seconds).values()) + _cpu_seconds()
            t0 = time.perf_counter()
            run(f"{d}/s.h5", f"{d}/c.h5", lc.scheduler_address)
            dt = time.perf_counter() - t0
            cpu = sum(client.run(_cpu_seconds).values()) + _cpu_seconds() - c0
            rss = max(client.run(_peak_mib).values())
    return {"time": dt, "rate": len(imgs) / dt, "rss": rss, "cpu_per_wall": cpu / dt, "load": load}


def _run(case: dict) -> dict:
    res = subprocess.run([sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer images per case")
    ap.add_argument("--job-only", action="store_true", help="only the whole-job 1-vs-2-worker table")
    ap.add_argument("--job-mode", choices=("legacy", "default"), default="legacy",
                    help="kernel mode of the whole-job table (default legacy: ring-sampling PSD)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs of each 1-vs-2-worker pair, alternating (medians are reported; default 1)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    with tempfile.TemporaryDirectory():
        _run({"size": 32, "n": 1, "stat": "mf2d", "impl": "baseline"})  # compile caches
        _run({"size": 32, "n": 1, "stat": "mf2d", "impl": "lazyastro"})
    if not args.job_only:
        _kernel_table(args)
    _job_table(args)


def _kernel_table(args) -> None:
    print("| statistic | image | images | lazyastro img/s | baseline img/s | speed-up | RSS lazyastro MiB | RSS baseline MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        n = {256: 16, 1024: 4}[size] if args.quick else {256: 64, 1024: 8}[size]
        for stat in ("mf2d", "psd", "histogram"):
            nb = n if stat != "psd" else max(2, n // 8)  # the Python-loop PSD baseline is slow
            a = _run({"size": size, "n": n, "stat": stat, "impl": "lazyastro"})
            b = _run({"size": size, "n": nb, "stat": stat, "impl": "baseline"})
            label = {"mf2d": f"Minkowski ({THRESHOLDS} thr.)", "psd": "PSD (legacy mode)", "histogram": "histogram"}[stat]
            print(f"| {label} | {size}² | {n} | {a['rate']:.2f} | {b['rate']:.2f} | {a['rate'] / b['rate']:.1f}x "
                  f"| {a['rss']:.0f} | {b['rss']:.0f} |", flush=True)
        d = _run({"size": size, "n": n, "stat": "psd-default", "impl": "lazyastro"})
        print(f"| PSD (default mode) | {size}² | {n} | {d['rate']:.2f} | | | {d['rss']:.0f} | |", flush=True)
    print()


def _job_table(args) -> None:
    import os

    print(f"whole statistics job (compute_statistics, {args.job_mode} mode: PSD + histogram + 100-threshold Minkowski); "
          f"{os.cpu_count()} CPUs, load average before the table {os.getloadavg()[0]:.2f}")
    print()
    print("| job | scheduler | images | 1 worker img/s | 2 workers img/s | speed-up | cpu/wall 1 w. | cpu/wall 2 w. "
          "| load avg (1 w. / 2 w.) | RSS 2 workers MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        n = {256: 64, 1024: 8}[size] if args.quick else {256: 128, 1024: 32}[size]
        batch = 16 if size == 256 else 4
        for sched in ("threads", "distributed"):
            base = {"size": size, "n": n, "stat": "job", "impl": "lazyastro", "batch": batch, "scheduler": sched,
                    "mode": args.job_mode}
            pairs = [(_run({**base, "workers": 1}), _run({**base, "workers": 2})) for _ in range(max(1, args.repeat))]

            def med(i, key, pairs=pairs):
                return statistics.median(p[i][key] for p in pairs)

            ratio = statistics.median(p[1]["rate"] / p[0]["rate"] for p in pairs)
            label = "threads" if sched == "threads" else "LocalCluster, 1-thread worker processes"
            print(f"| {size}² (batch {batch}) | {label} | {n} | {med(0, 'rate'):.2f} | {med(1, 'rate'):.2f} | "
                  f"{ratio:.2f}x | {med(0, 'cpu_per_wall'):.2f} | {med(1, 'cpu_per_wall'):.2f} | "
                  f"{med(0, 'load'):.1f} / {med(1, 'load'):.1f} | {med(1, 'rss'):.0f} |", flush=True)
    if args.repeat > 1:
        print(f"\n(medians of {args.repeat} alternating runs; speed-up = median of the per-pair ratios)")


if __name__ == "__main__":
    main()
