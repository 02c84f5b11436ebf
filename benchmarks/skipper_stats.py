"""Benchmark: skipper statistics, lazy (dask, chunked along skip) vs eager numpy baseline.

For simulated files of 1, 25, 1000 and 4000 skips it prints files/s and peak RSS of
``lazyastro.skipper.compute_statistics`` next to a same-run baseline that loads the whole
cube with numpy and computes the same statistics eagerly (same kernels, one block).
Each measurement runs in a fresh subprocess (peak RSS = ``VmHWM`` after resetting the mark). The memory
budget is set small (default 64 MiB) so that the 4000-skip file is larger than it.

    python benchmarks/skipper_stats.py                 # default sizes
    python benchmarks/skipper_stats.py --rows 30 --cols 100 --budget 32MiB --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = [(1, 16), (25, 16), (1000, 2), (4000, 1)]  # (nskips, files)


def _mib(n: int) -> float:
    return n / 2**20


def _eager(path: str) -> dict:
    """Baseline: whole cube in memory with numpy, then the same statistics in one block."""
    import numpy as np
    from astropy.io import fits

    from lazyastro.skipper import kernels
    from lazyastro.skipper.derive import NSKIPS_ENTROPY, NSKIPS_NOISE, derive_statistics
    from lazyastro.skipper.stats import DEFAULT_SEED, NSAMPLES, SKIPPER_OFFSET

    with fits.open(path, memmap=False) as hdul:
        raw = hdul[0].data
        n = int(hdul[0].header.get("NDCMS", 1))
    cube = raw.reshape(raw.shape[0], raw.shape[1] // n, n)
    codes = cube.astype(np.int64)
    nrows, ncols, nskips = codes.shape
    summary = kernels.block_summary(cube, 0, max(NSKIPS_ENTROPY, NSKIPS_NOISE))
    avg = kernels.value_counts(codes.sum(axis=2))
    rng_pix, rng_clust = (np.random.default_rng(s) for s in np.random.SeedSequence(DEFAULT_SEED).spawn(2))
    pix = clust = None
    if nskips - SKIPPER_OFFSET >= 2:
        var = codes[:, :, SKIPPER_OFFSET:].var(axis=2)
        pix = var[rng_pix.integers(0, nrows, NSAMPLES), rng_pix.integers(0, ncols, NSAMPLES)]
    plan = kernels.cluster_trials(codes.shape, SKIPPER_OFFSET, NSAMPLES, rng_clust)
    if plan is not None:
        trials, e_r, _e_c, npix = plan
        clust = kernels.cluster_variances(codes, 0, 0, trials, e_r, npix)
    meta = {"path": path, "nskips": nskips, "shape": codes.shape, "legacy": False, "version": "2021",
            "n_average": nskips, "seed": DEFAULT_SEED, "polarity": -1}
    return derive_statistics(summary, avg, pix, clust, meta)


def worker(mode: str, paths: list[str], budget: str) -> None:
    import lazyastro
    from lazyastro import skipper
    from lazyastro.core.memory import current_rss, peak_rss, reset_peak_rss
    from lazyastro.skipper import derive, stats  # noqa: F401  (imports are not part of the measure)

    reset_peak_rss()  # the mark is inherited from the parent through fork
    base = _mib(current_rss())
    t0 = time.perf_counter()
    if mode == "lazy":
        with lazyastro.set_options(memory_budget=budget, progress=False):
            rows = skipper.compute_statistics(paths, scheduler="threads")
    else:
        rows = [_eager(p) for p in paths]
    dt = time.perf_counter() - t0
    print(json.dumps({"time": dt, "rss": _mib(peak_rss()), "base": base,
                      "skNoise": rows[0]["skNoise"], "imgNoise": rows[0]["imgNoise"]}))


def _run(mode: str, paths: list[str], budget: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", mode, "--budget", budget, *paths]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise SystemExit(f"worker failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", choices=("lazy", "numpy"), help=argparse.SUPPRESS)
    ap.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, default=60)
    ap.add_argument("--cols", type=int, default=200)
    ap.add_argument("--budget", default="64MiB", help="memory budget of the lazy runs (default 64MiB)")
    ap.add_argument("--quick", action="store_true", help="fewer files per case")
    ap.add_argument("--dir", default=None, help="where to write the simulated files (default: a temp dir)")
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.paths, args.budget)
        return

    from lazyastro.core.config import parse_bytes
    from lazyastro.skipper import simulate

    budget = parse_bytes(args.budget)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(f"image {args.rows} x {args.cols} pixels, uint16, memory budget {budget / 2**20:.0f} MiB, "
              f"{os.cpu_count()} cores, scheduler threads")
        header = (f"{'nskips':>6} {'files':>5} {'MiB/file':>8} | {'lazy f/s':>8} {'numpy f/s':>9} {'ratio':>5} | "
                  f"{'lazy RSS':>8} {'numpy RSS':>9} (MiB; after-import base {'lazy':>4}/{'numpy':<5})")
        print(header)
        print("-" * len(header))
        for nskips, nfiles in CASES:
            nfiles = max(1, nfiles // 4) if args.quick else nfiles
            paths = []
            for i in range(nfiles):
                p = Path(tmp) / f"Img_{nskips}_{i}.fits"
                simulate(p, nrows=args.rows, ncols=args.cols, nskips=nskips, read_noise=60.0,
                         dark_current=0.1, gain=10.0, seed=i, scheduler="threads")
                paths.append(str(p))
            size = os.path.getsize(paths[0]) / 2**20
            lazy = _run("lazy", paths, args.budget)
            eager = _run("numpy", paths, args.budget)
            over = " > budget" if size * 2**20 > budget else ""
            print(f"{nskips:>6} {nfiles:>5} {size:>8.1f} | {nfiles / lazy['time']:>8.2f} {nfiles / eager['time']:>9.2f} "
                  f"{eager['time'] / lazy['time']:>5.2f} | {lazy['rss']:>8.0f} {eager['rss']:>9.0f} "
                  f"({lazy['base']:.0f}/{eager['base']:.0f}){over}")
            for p in paths:
                os.remove(p)
        print("ratio = lazy files/s / numpy files/s; RSS = peak resident set of the measuring process")


if __name__ == "__main__":
    main()
