"""Benchmark: statistics over the frames of an image series larger than the memory budget.

Writes a synthetic uint16 series as Zarr and as legacy hexrd HDF5, then times each
statistic, each in a fresh subprocess (peak RSS from ``getrusage``), for:

* ``lazyastro``  -- ``lazyastro.frames`` graphs (threads scheduler, memory budget set);
* ``numpy-RAM``  -- NumPy on the whole series already loaded in RAM (load not timed);
* ``legacy``     -- the legacy approach: a Python loop over frames read one by one
  (``np.maximum``/accumulation), percentiles by row bands with ``np.percentile``.

Ratios are throughput ratios (baseline time / lazyastro time; > 1 means lazyastro
is faster). ``RSS+`` is the peak RSS above the process's RSS after imports.

    python benchmarks/frames_stats.py                      # 64 x 1024 x 1024, budget 32 MiB
    python benchmarks/frames_stats.py --frames 200 --size 2048 --budget 400MiB
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATS = ("max", "min", "mean", "median")


class PeakRSS:
    """Sample this process's RSS every few milliseconds (ru_maxrss is inherited across exec)."""

    def __init__(self, interval: float = 0.005):
        import threading

        import psutil

        self.proc, self.interval, self.peak = psutil.Process(), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _current_rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def make_data(workdir: Path, frames: int, size: int, budget: str) -> dict:
    """Write the synthetic series (Zarr + legacy HDF5) frame batch by frame batch."""
    import dask.array as da
    import numpy as np

    import lazyastro.frames as lf
    from lazyastro.core.config import set_options

    rng = da.random.default_rng(0)
    data = rng.poisson(100, size=(frames, size, size), chunks=(4, size, size)).astype(np.uint16)
    with set_options(memory_budget=budget, progress=False):
        lf.write_series(data, workdir / "series.zarr", chunks=(8, 32, size), overwrite=True)
        lf.write_series(data, workdir / "series.h5", format="hdf5", gzip=0, overwrite=True)
    return {"zarr": str(workdir / "series.zarr"), "hdf5": str(workdir / "series.h5")}


def run_one(method: str, stat: str, source: str, budget: str, threads: int) -> dict:
    """Time one (method, stat) in this process; returns seconds and peak RSS."""
    import dask

    import lazyastro.frames as lf
    from lazyastro.core.config import set_options
    from lazyastro.core.execution import compute

    if method == "lazyastro":
        with set_options(memory_budget=budget, scheduler="threads", progress=False), \
                dask.config.set(num_workers=threads):
            s = lf.open(source)
            compute(lf.max(s.isel(frame=slice(0, 1), y=slice(0, 8))).data)  # warm-up: imports, pools
            base = _current_rss_mib()
            with PeakRSS() as rss:
                t0 = time.perf_counter()
                (out,) = compute(getattr(lf, stat)(s).data)
                dt = time.perf_counter() - t0
        shape, dtype = s.shape, s.dtype
        return _result(dt, rss, base, shape, dtype, out)
    base = _current_rss_mib()
    with PeakRSS() as rss:
        dt, shape, dtype, out = _baseline(method, stat, source, budget)
    return _result(dt, rss, base, shape, dtype, out)


def _result(dt, rss, base, shape, dtype, out) -> dict:
    import numpy as np

    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return {"seconds": dt, "peak_rss_mib": rss.peak / 2**20, "base_rss_mib": base, "bytes": nbytes,
            "checksum": float(np.asarray(out, dtype=np.float64).sum())}


def _baseline(method, stat, source, budget):
    import h5py
    import numpy as np

    from lazyastro.core.config import parse_bytes

    if method == "numpy-RAM":
        with h5py.File(source, "r") as h5:
            a = h5["imageseries/images"][()]
        shape, dtype = a.shape, a.dtype
        funcs = {"max": lambda: a.max(0), "min": lambda: a.min(0), "mean": lambda: a.mean(0).astype(np.float32),
                 "median": lambda: np.median(a, axis=0).astype(np.float32)}
        t0 = time.perf_counter()
        out = funcs[stat]()
        dt = time.perf_counter() - t0
    elif method == "legacy":
        t0 = time.perf_counter()
        with h5py.File(source, "r") as h5:
            ds = h5["imageseries/images"]
            shape, dtype = ds.shape, ds.dtype
            nf, ny, nx = shape
            if stat in ("max", "min"):
                op = np.maximum if stat == "max" else np.minimum
                out = ds[0]
                for i in range(1, nf):
                    out = op(out, ds[i])
            elif stat == "mean":
                out = ds[0].astype(np.float64)
                for i in range(1, nf):
                    out += ds[i]
                out = (out / nf).astype(np.float32)
            else:
                # row bands holding all frames, as many rows as fit half the budget
                rows = max(1, parse_bytes(budget) // 2 // (nf * nx * dtype.itemsize))
                out = np.zeros((ny, nx), np.float64)
                for r0 in range(0, ny, rows):
                    out[r0 : r0 + rows] = np.percentile(ds[:, r0 : r0 + rows, :], 50, axis=0)
                out = out.astype(np.float32)
        dt = time.perf_counter() - t0
    else:
        raise SystemExit(f"unknown method {method}")
    return dt, shape, dtype, out


def _child(method, stat, source, budget, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([method, stat, source, budget, threads])]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{method} {stat} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=64)
    p.add_argument("--size", type=int, default=1024, help="frame rows = cols")
    p.add_argument("--budget", default=None, help="memory budget (default: a quarter of the series)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--stats", default=",".join(STATS))
    p.add_argument("--sources", default="zarr,hdf5")
    p.add_argument("--workdir", default=None, help="where to write the data (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the data")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(*json.loads(args.child))))
        return 0

    series_bytes = args.frames * args.size * args.size * 2
    budget = args.budget or f"{series_bytes // 4}"
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lazyastro-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from lazyastro.core.config import format_bytes, parse_bytes

    print(f"series {args.frames} x {args.size} x {args.size} uint16 = {format_bytes(series_bytes)}, "
          f"memory budget {format_bytes(parse_bytes(budget))} "
          f"({series_bytes / parse_bytes(budget):.1f}x), {args.threads} threads; data in {workdir}")
    t0 = time.perf_counter()
    paths = make_data(workdir, args.frames, args.size, budget)
    print(f"wrote Zarr (lz4, chunks 8x32x{args.size}) and legacy HDF5 (uncompressed, 1 frame per chunk) "
          f"in {time.perf_counter() - t0:.1f} s")
    rows = []
    for stat in args.stats.split(","):
        base = {m: _child(m, stat, paths["hdf5"], budget, args.threads) for m in ("numpy-RAM", "legacy")}
        for src in args.sources.split(","):
            r = _child("lazyastro", stat, paths[src], budget, args.threads)
            for ref in base.values():
                if abs(ref["checksum"] - r["checksum"]) > 1e-6 * max(1.0, abs(ref["checksum"])) and stat != "mean":
                    raise SystemExit(f"{stat}: lazyastro result differs from the baseline")
            rows.append({"stat": stat, "method": f"lazyastro/{src}", **r,
                         "x_numpy": base["numpy-RAM"]["seconds"] / r["seconds"],
                         "x_legacy": base["legacy"]["seconds"] / r["seconds"]})
        for m, r in base.items():
            rows.append({"stat": stat, "method": f"{m}/hdf5", **r, "x_numpy": None, "x_legacy": None})
    hdr = f"{'stat':<7} {'method':<16} {'time s':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'RSS+ MiB':>9} " \
          f"{'x numpy':>8} {'x legacy':>9}"
    print(hdr)
    print("-" * len(hdr))

    def fmt(v):
        return f"{v:8.2f}" if v is not None else f"{'':>8}"

    for r in rows:
        print(f"{r['stat']:<7} {r['method']:<16} {r['seconds']:8.2f} {r['bytes'] / r['seconds'] / 1e6:8.0f} "
              f"{r['peak_rss_mib']:13.0f} {r['peak_rss_mib'] - r['base_rss_mib']:9.0f} "
              f"{fmt(r['x_numpy'])} {fmt(r['x_legacy']):>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
