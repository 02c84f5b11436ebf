"""Benchmark: statistics over the frames of an image series larger than the memory budget.

Writes a synthetic uint16 series in the layouts users have, then times each
statistic, each method in a fresh subprocess. Sources (``--sources``):

* ``zarr``       -- Zarr, Blosc LZ4, chunks of 8 frames x a band of rows x all columns
  (a layout chosen for the median's row bands);
* ``zarr-16x512`` -- Zarr, Blosc LZ4, chunks (16, 512, 512) (a common user layout);
* ``hdf5``       -- legacy hexrd HDF5, one frame per chunk, uncompressed;
* ``hdf5-gzip``  -- legacy hexrd HDF5, one frame per chunk, gzip 1 + shuffle (hexrd's default).

Methods:

* ``lazyastro``  -- ``lazyastro.frames`` graphs (threads scheduler, memory budget set);
* ``before``     -- the same with another checkout of lazyastro (``--before ROOT``), run
  interleaved with ``lazyastro`` so that both see the same machine load;
* ``cluster-N``  -- ``lazyastro`` inside ``lazyastro.cluster(n_workers=N, threads_per_worker=1)``
  (``--cluster 1,2``; mean and median of the uncompressed HDF5);
* ``numpy-RAM``  -- NumPy on the whole series already loaded in RAM (load not timed);
* ``legacy``     -- the legacy approach: a Python loop over frames read one by one
  with h5py (``np.maximum``/accumulation), percentiles by row bands with ``np.percentile``.

Times are the best of ``--repeat`` runs (the data are in the page cache after the
first); ratios are throughput ratios (baseline time / lazyastro time; > 1 means
lazyastro is faster). ``RSS+`` is the peak RSS above the process's RSS after
imports (kernel high-water mark, reset before timing), over all repeats.

    python benchmarks/frames_stats.py                  # 200 x 2048 x 2048 uint16 (1.6 GB), budget 400 MiB
    python benchmarks/frames_stats.py --quick          # 64 x 1024 x 1024 (128 MiB), budget 32 MiB
    python benchmarks/frames_stats.py --workdir /tmp/fs --keep   # reuse the written data next time
    python benchmarks/frames_stats.py --before /tmp/old-checkout --cluster 1,2
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


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def zarr_rows(frames: int, size: int, budget: str, threads: int) -> int:
    """Zarr chunk rows: the power of two at most the median's band height (bands then read whole chunks)."""
    from lazyastro.core.config import parse_bytes
    from lazyastro.frames.reductions import band_rows

    rows = band_rows(frames, size, size, 2, budget=parse_bytes(budget), workers=threads)
    return 1 << (max(1, rows).bit_length() - 1)


def make_data(workdir: Path, frames: int, size: int, budget: str, threads: int, sources) -> dict:
    """Write the synthetic series (Zarr + legacy HDF5) frame batch by frame batch; reuse if present."""
    import dask.array as da
    import numpy as np

    import lazyastro.frames as lf
    from lazyastro.core.config import set_options

    rows = zarr_rows(frames, size, budget, threads)
    paths = {"zarr": workdir / f"series-{frames}x{size}-r{rows}.zarr",
             "zarr-16x512": workdir / f"series-{frames}x{size}-16x512.zarr",
             "hdf5": workdir / f"series-{frames}x{size}.h5", "hdf5-gzip": workdir / f"series-{frames}x{size}-gz.h5"}
    rng = da.random.default_rng(0)
    data = rng.poisson(100, size=(frames, size, size), chunks=(4, size, size)).astype(np.uint16)
    with set_options(memory_budget="512MiB", progress=False):
        for src in sources:
            p = paths[src]
            if p.exists():
                continue
            t0 = time.perf_counter()
            if src == "zarr":
                lf.write_series(data, p, chunks=(8, rows, size))
                what = f"Zarr (Blosc LZ4, chunks 8 x {rows} x {size})"
            elif src == "zarr-16x512":
                c = (min(16, frames), min(512, size), min(512, size))
                lf.write_series(data, p, chunks=c)
                what = f"Zarr (Blosc LZ4, chunks {c[0]} x {c[1]} x {c[2]})"
            else:
                lf.write_series(data, p, format="hexrd-hdf5", gzip=1 if src == "hdf5-gzip" else 0)
                what = "legacy HDF5 (1 frame per chunk, " + ("gzip 1 + shuffle)" if src == "hdf5-gzip" else "uncompressed)")
            print(f"wrote {what} in {time.perf_counter() - t0:.1f} s", flush=True)
    return {k: str(v) for k, v in paths.items()}


def run_one(method: str, stat: str, source: str, budget: str, threads: int, repeat: int) -> dict:
    """Time one (method, stat) in this process: best of ``repeat`` runs, peak RSS over all."""
    import dask

    import lazyastro.frames as lf
    from lazyastro.core.config import set_options
    from lazyastro.core.execution import compute
    from lazyastro.core.memory import current_rss, peak_rss, reset_peak_rss

    times = []
    if method.startswith("cluster-"):
        import lazyastro

        with set_options(memory_budget=budget, progress=False), \
                lazyastro.cluster(n_workers=int(method.split("-")[1]), threads_per_worker=1):
            s = lf.open(source)
            compute(getattr(lf, stat)(s.isel(y=slice(0, 8))).data)
            base = current_rss()
            reset_peak_rss()
            for _ in range(repeat):
                t0 = time.perf_counter()
                (out,) = compute(getattr(lf, stat)(s).data)
                times.append(time.perf_counter() - t0)
            peak = peak_rss()  # this (client) process only: the workers are separate processes
        return _result(min(times), peak, base, s.shape, s.dtype, out, times, s.data.chunksize)
    if method in ("lazyastro", "before"):
        with set_options(memory_budget=budget, scheduler="threads", progress=False), \
                dask.config.set(num_workers=threads):
            s = lf.open(source)
            compute(getattr(lf, stat)(s.isel(y=slice(0, 8))).data)  # warm-up: imports, pools, code paths
            base = current_rss()
            reset_peak_rss()
            for _ in range(repeat):
                t0 = time.perf_counter()
                (out,) = compute(getattr(lf, stat)(s).data)
                times.append(time.perf_counter() - t0)
            peak = peak_rss()
        return _result(min(times), peak, base, s.shape, s.dtype, out, times, s.data.chunksize)
    base = current_rss()
    reset_peak_rss()
    for _ in range(repeat):
        dt, shape, dtype, out = _baseline(method, stat, source, budget)
        times.append(dt)
    return _result(min(times), peak_rss(), base, shape, dtype, out, times, None)


def _result(dt, peak, base, shape, dtype, out, times, chunks) -> dict:
    import numpy as np

    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    out = np.asarray(out, dtype=np.float64)
    return {"seconds": dt, "times": times, "peak_rss_mib": peak / 2**20, "base_rss_mib": base / 2**20,
            "bytes": nbytes, "chunks": chunks, "checksum": float(out.sum()),
            "digest": __import__("hashlib").sha1(out.astype(np.float32).tobytes()).hexdigest()}


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


def _child(method, stat, source, budget, threads, repeat, root=ROOT) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps([method, stat, source, budget, threads, repeat])]
    env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{method} {stat} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=None, help="default 200 (64 with --quick)")
    p.add_argument("--size", type=int, default=None, help="frame rows = cols; default 2048 (1024 with --quick)")
    p.add_argument("--budget", default=None, help="memory budget (default: a quarter of the series)")
    p.add_argument("--quick", action="store_true", help="small series: 64 x 1024 x 1024")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best time counts")
    p.add_argument("--median-repeat", type=int, default=None, help="runs for the median (default: --repeat)")
    p.add_argument("--stats", default=",".join(STATS))
    p.add_argument("--sources", default="zarr,zarr-16x512,hdf5,hdf5-gzip",
                   help="zarr (bands layout), zarr-16x512, hdf5 (uncompressed), hdf5-gzip")
    p.add_argument("--before", default=None, help="another lazyastro checkout to time side by side")
    p.add_argument("--before-sources", default=None, help="sources timed with --before (default: all)")
    p.add_argument("--cluster", default="", help="worker counts for lazyastro.cluster() rows, e.g. 1,2")
    p.add_argument("--workdir", default=None, help="where to write the data (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the data")
    p.add_argument("--json", default=None, help="also write the rows as JSON here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_one(*json.loads(args.child))))
        return 0

    frames = args.frames or (64 if args.quick else 200)
    size = args.size or (1024 if args.quick else 2048)
    series_bytes = frames * size * size * 2
    budget = args.budget or f"{series_bytes // 4}"
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="lazyastro-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from lazyastro.core.config import format_bytes, parse_bytes

    sources = args.sources.split(",")
    print(f"series {frames} x {size} x {size} uint16 = {format_bytes(series_bytes)}, "
          f"memory budget {format_bytes(parse_bytes(budget))} "
          f"({series_bytes / parse_bytes(budget):.1f}x), {args.threads} threads, best of {args.repeat} "
          f"(median {args.median_repeat or args.repeat}); "
          f"{os.cpu_count()} CPUs, load average {_load()}; data in {workdir}", flush=True)
    t0 = time.perf_counter()
    paths = make_data(workdir, frames, size, budget, args.threads,
                      list(dict.fromkeys(["hdf5"] + sources)))
    rows = []
    for stat in args.stats.split(","):
        repeat = args.median_repeat or args.repeat if stat == "median" else args.repeat
        base = {m: _child(m, stat, paths["hdf5"], budget, args.threads, repeat) for m in ("numpy-RAM", "legacy")}
        print(f"  {stat} numpy-RAM: {base['numpy-RAM']['seconds']:.2f} s, legacy: {base['legacy']['seconds']:.2f} s",
              flush=True)
        runs = [("lazyastro", src, ROOT) for src in sources]
        if args.before:
            old = (args.before_sources or ",".join(sources)).split(",")
            runs = [r for src in sources for r in ((("before", src, Path(args.before)),) if src in old else ())
                    + (("lazyastro", src, ROOT),)]
        if stat in ("mean", "median"):
            runs += [(f"cluster-{n}", "hdf5", ROOT) for n in args.cluster.split(",") if n]
        for method, src, root in runs:
            r = _child(method, stat, paths[src], budget, args.threads, repeat, root)
            for ref in base.values():
                exact = stat != "mean"
                if exact and ref["digest"] != r["digest"] or \
                        abs(ref["checksum"] - r["checksum"]) > 1e-6 * max(1.0, abs(ref["checksum"])):
                    raise SystemExit(f"{stat}: {method} result differs from the baseline")
            rows.append({"stat": stat, "method": f"{method}/{src}", **r,
                         "x_numpy": base["numpy-RAM"]["seconds"] / r["seconds"],
                         "x_legacy": base["legacy"]["seconds"] / r["seconds"]})
            print(f"  {stat} {method} {src}: {r['seconds']:.2f} s", flush=True)
        for m, r in base.items():
            rows.append({"stat": stat, "method": f"{m}/hdf5", **r, "x_numpy": None, "x_legacy": None})
    budget_mib = parse_bytes(budget) / 2**20
    print(f"\nload average at the end {_load()}; total {time.perf_counter() - t0:.0f} s; "
          f"budget {budget_mib:.0f} MiB")
    hdr = f"{'stat':<7} {'method':<22} {'time s':>8} {'MB/s':>8} {'peak RSS MiB':>13} {'RSS+ MiB':>9} " \
          f"{'RSS+/budget':>11} {'x numpy':>8} {'x legacy':>9}"
    print(hdr)
    print("-" * len(hdr))

    def fmt(v):
        return f"{v:8.2f}" if v is not None else f"{'':>8}"

    for r in rows:
        plus = r["peak_rss_mib"] - r["base_rss_mib"]
        print(f"{r['stat']:<7} {r['method']:<22} {r['seconds']:8.2f} {r['bytes'] / r['seconds'] / 1e6:8.0f} "
              f"{r['peak_rss_mib']:13.0f} {plus:9.0f} {plus / budget_mib:11.2f} "
              f"{fmt(r['x_numpy'])} {fmt(r['x_legacy']):>9}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
