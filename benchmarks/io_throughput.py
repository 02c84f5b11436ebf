#!/usr/bin/env python
"""Write/read throughput and peak RSS of FITS, Zarr (two codecs) and HDF5.

The array (default 32 x 2048 x 2048 float32 = 512 MiB) is larger than the
memory budget (default 128 MiB). Every measurement runs in a fresh process so
its peak RSS is its own. The same-run baseline is raw ``ndarray.tofile`` /
``np.fromfile`` of the same bytes, which holds the whole array in RAM.

Readers with a direct path (Zarr chunk files read and Blosc-decompressed by
lazyastro, HDF5 read by byte offset) are read twice: ``direct`` (the default,
``direct="auto"``) and through the library (``direct=False``).

A second table writes an in-RAM array (default 1 GiB) with lazyastro and with
its peers: astropy ``fits.writeto``, ``dask.array.to_zarr`` and plain zarr
assignment ``z[...] = arr`` (same chunks and codec), with the time, the
throughput, the ratio to the peer and the peak RSS above the array itself.

    python benchmarks/io_throughput.py                       # default size
    python benchmarks/io_throughput.py --size 64,4096,4096 --memory-budget 512MiB
    python benchmarks/io_throughput.py --peer-size 64,2048,2048 --only peers
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

import numpy as np

CASES = [  # (label, format, writer kwargs, read variants: (label suffix, open kwargs))
    ("raw numpy tofile/fromfile (in RAM)", "raw", {}, [("", {})]),
    ("FITS", "fits", {}, [("", {})]),
    ("Zarr blosc-lz4+shuffle", "zarr", {"codec": "lz4"},
     [(" [direct]", {"direct": "auto"}), (" [zarr]", {"direct": False})]),
    ("Zarr blosc-zstd+shuffle", "zarr", {"codec": "zstd"},
     [(" [direct]", {"direct": "auto"}), (" [zarr]", {"direct": False})]),
    ("HDF5 blosc-lz4", "hdf5", {"compression": "blosc-lz4"},
     [(" [direct]", {"direct": "auto"}), (" [h5py]", {"direct": False})]),
    ("HDF5 uncompressed", "hdf5", {"compression": None},
     [(" [direct]", {"direct": "auto"}), (" [h5py]", {"direct": False})]),
]
#: In-RAM writes against their peers: (label, case, peer case)
PEERS = [
    ("to_fits", "to_fits", "astropy"),
    ("astropy fits.writeto", "astropy", None),
    ("to_zarr", "to_zarr", "plain_zarr"),
    ("dask.array.to_zarr", "da_to_zarr", None),
    ("plain zarr z[...] = arr", "plain_zarr", None),
]
EXT = {"raw": ".raw", "fits": ".fits", "zarr": ".zarr", "hdf5": ".h5"}


def lazy_raw(path: str, shape, chunks):
    """A lazy view of a raw float32 file (each task reads its bytes)."""
    import dask.array as da

    def block(block_info=None):
        (f0, f1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        assert (x0, x1) == (0, shape[2]), "blocks span whole rows"
        out = np.empty((f1 - f0, y1 - y0, shape[2]), np.float32)
        with open(path, "rb") as f:
            for k, fr in enumerate(range(f0, f1)):
                offset = ((fr * shape[1]) + y0) * shape[2] * 4
                out[k] = np.fromfile(f, np.float32, count=out[k].size, offset=offset).reshape(out[k].shape)
        return out

    from dask.base import tokenize

    chunks = da.core.normalize_chunks(chunks, shape)
    return da.map_blocks(block, chunks=chunks, dtype=np.float32, meta=np.empty((0, 0, 0), np.float32),
                         name="raw-" + tokenize(path, chunks))


def _open(lazyastro, fmt: str, out: str, kwargs: dict):
    if fmt == "zarr":
        return lazyastro.open_zarr(out, **kwargs)
    if fmt == "hdf5":
        return lazyastro.open_hdf5(out, **kwargs)
    return lazyastro.open(out, **kwargs)


def _warm_imports() -> None:
    """Import what the timed code imports lazily (one-time costs stay out of the timed region)."""
    import importlib

    for name in ("xarray", "dask.array", "lazyastro.core.execution", "lazyastro.io.fits", "lazyastro.io.zarr",
                 "lazyastro.io.hdf5"):
        try:
            importlib.import_module(name)
        except ImportError:  # an older lazyastro without one of them
            pass


def peer_child(case: str, out: str, shape, budget: str, scheduler: str) -> dict:
    """Write an in-RAM array with lazyastro or a peer library (fresh process)."""
    import astropy.io.fits as fits
    import dask.array as da
    import zarr

    import lazyastro
    from lazyastro.core.chunking import auto_chunks
    from lazyastro.core.memory import peak_rss, reset_peak_rss

    _warm_imports()
    rng = np.random.default_rng(7)
    arr = np.empty(shape, np.float32)
    for f in range(shape[0]):  # noise on a smooth background, made frame by frame (untimed)
        arr[f] = rng.standard_normal(shape[1:], dtype=np.float32) + np.float32(100 + f)
    with lazyastro.set_options(memory_budget=budget, scheduler=scheduler, progress=False):
        chunks = auto_chunks(shape, arr.dtype)  # what to_zarr/to_fits choose for in-memory input
        codec = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")  # to_zarr's default
        reset_peak_rss()
        start = peak_rss()
        t0 = time.perf_counter()
        if case == "to_fits":
            lazyastro.to_fits(arr, out)
        elif case == "astropy":
            fits.writeto(out, arr)
        elif case == "to_zarr":
            lazyastro.to_zarr(arr, out)
        elif case == "da_to_zarr":
            da.to_zarr(da.from_array(arr, chunks=chunks), out, compressors=[codec])
        elif case == "plain_zarr":
            z = zarr.create_array(out, shape=shape, dtype=arr.dtype, chunks=chunks, compressors=[codec],
                                  fill_value=0)
            z[...] = arr
        os.sync()
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak": peak_rss() - start, "chunks": list(chunks)}


def child(op: str, fmt: str, src: str, out: str, shape, kwargs: dict, budget: str, scheduler: str) -> dict:
    """Run one measurement in this (fresh) process and return time and peak RSS."""
    from lazyastro.core.memory import peak_rss, reset_peak_rss

    reset_peak_rss()  # the mark is inherited from the parent through fork
    import astropy.io.fits  # noqa: F401  (one-time imports stay out of the timed region)
    import h5py  # noqa: F401
    import zarr  # noqa: F401

    import lazyastro

    _warm_imports()
    start = peak_rss()
    with lazyastro.set_options(memory_budget=budget, scheduler=scheduler, progress=False):
        from lazyastro.core.chunking import auto_chunks

        if fmt == "raw":
            if op == "write":
                data = np.fromfile(src, np.float32).reshape(shape)  # load (untimed), then write
                t0 = time.perf_counter()
                data.tofile(out)
                os.sync()
            else:
                t0 = time.perf_counter()
                float(np.fromfile(out, np.float32).sum(dtype=np.float64))
        elif op == "write":
            chunks = auto_chunks(shape, np.float32)
            data = lazy_raw(src, shape, chunks)
            t0 = time.perf_counter()
            lazyastro.write(data, out, format=fmt, **kwargs)
            os.sync()
        elif op == "check":  # correctness of what was written (untimed)
            arr = _open(lazyastro, fmt, out, kwargs)
            src_arr = lazy_raw(src, shape, arr.data.chunks)
            equal = bool(lazyastro.compute((arr.data == src_arr).all())[0])
            return {"equal": equal}
        else:
            t0 = time.perf_counter()
            arr = _open(lazyastro, fmt, out, kwargs)
            lazyastro.compute(arr.data.sum(dtype=np.float64))
    return {"seconds": time.perf_counter() - t0, "peak": peak_rss(), "start": start}


def run_child(*args, flag: str = "--child") -> dict:
    res = subprocess.run([sys.executable, __file__, flag, json.dumps(args)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"benchmark step failed: {args[:2]}\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def size_on_disk(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="32,2048,2048", help="FRAMES,NY,NX of the float32 array")
    p.add_argument("--memory-budget", default="128MiB")
    p.add_argument("--scheduler", default="threads")
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    p.add_argument("--peer-size", default="64,2048,2048", help="FRAMES,NY,NX of the in-RAM peer array (1 GiB)")
    p.add_argument("--repeat", type=int, default=1,
                   help="peer table: run the writers this many times in turn and report each one's median")
    p.add_argument("--only", choices=("io", "peers"), default=None, help="run one of the two tables")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peer-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    if args.peer_child:
        print(json.dumps(peer_child(*json.loads(args.peer_child))))
        return
    if args.only != "peers":
        io_table(args)
    if args.only != "io":
        peer_table(args)


def peer_table(args) -> None:
    """In-RAM array written by lazyastro and by its peers (same chunks and codec)."""
    shape = tuple(int(v) for v in args.peer_size.split(","))
    nbytes = int(np.prod(shape)) * 4
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="lazyastro-peers-"))
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"\nin-RAM array {shape} float32 = {nbytes / 2**20:.0f} MiB written to disk (os.sync included); "
          f"memory budget {args.memory_budget}; scheduler {args.scheduler}")
    head = f"{'writer':26s} {'seconds':>8s} {'MiB/s':>7s} {'vs peer':>8s} {'peak RSS above the array':>25s} " \
           f"{'x budget':>9s}"
    print(head)
    print("-" * len(head))
    from lazyastro.core.config import parse_bytes

    budget = parse_bytes(args.memory_budget)
    runs: dict[str, list] = {case: [] for _label, case, _peer in PEERS}
    for _ in range(max(1, args.repeat)):  # in turn, so a busy moment of the machine hits every writer
        for _label, case, _peer in PEERS:
            out = scratch / ("peer.fits" if case in ("to_fits", "astropy") else "peer.zarr")
            runs[case].append(run_child(case, str(out), shape, args.memory_budget, args.scheduler,
                                        flag="--peer-child"))
            shutil.rmtree(out) if out.is_dir() else out.unlink()
    results = {case: {"seconds": float(np.median([r["seconds"] for r in rs])),
                      "peak": max(r["peak"] for r in rs)} for case, rs in runs.items()}
    for label, case, peer in PEERS:
        res = results[case]
        rate = nbytes / 2**20 / res["seconds"]
        vs = f"{results[peer]['seconds'] / res['seconds']:8.2f}" if peer else f"{'':8s}"
        print(f"{label:26s} {res['seconds']:8.2f} {rate:7.0f} {vs} {res['peak'] / 2**20:21.0f} MiB "
              f"{res['peak'] / budget:9.2f}")
    print(f"vs peer: the peer's time / lazyastro's (>= 1: at least as fast); to_fits vs astropy, "
          f"to_zarr vs plain zarr; median of {max(1, args.repeat)} run(s) each, the largest peak")
    if not args.dir:
        shutil.rmtree(scratch)


def io_table(args) -> None:

    import lazyastro
    from lazyastro.synthetic import deep_field_series

    shape = tuple(int(v) for v in args.size.split(","))
    nbytes = int(np.prod(shape)) * 4
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="lazyastro-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    src = scratch / "source.raw"
    series = deep_field_series(*shape, seed=7)
    mm = np.lib.format.open_memmap(scratch / "tmp.npy", mode="w+", dtype=np.float32, shape=shape)
    for f in range(shape[0]):  # realistic, compressible-ish content; generated frame by frame
        mm[f] = series[f].values
    mm.flush()
    del mm
    raw = np.load(scratch / "tmp.npy", mmap_mode="r")
    raw.tofile(src)
    del raw
    os.remove(scratch / "tmp.npy")
    import_rss = run_child("read", "raw", str(src), str(src), shape, {}, args.memory_budget, args.scheduler)["start"]

    print(f"array {shape} float32 = {nbytes / 2**20:.0f} MiB; memory budget {args.memory_budget}; "
          f"scheduler {args.scheduler}; {os.cpu_count()} CPUs; files in page cache")
    print(f"start-up RSS of a fresh process (imports): {import_rss / 2**20:.0f} MiB\n")
    head = f"{'format':44s} {'write MiB/s':>11s} {'vs raw':>7s} {'read MiB/s':>11s} {'vs raw':>7s} " \
           f"{'ratio':>6s} {'peak RSS write':>15s} {'peak RSS read':>14s}"
    print(head)
    print("-" * len(head))
    base = None
    for label, fmt, kwargs, variants in CASES:
        out = scratch / f"out{EXT[fmt]}"
        w = run_child("write", fmt, str(src), str(out), shape, kwargs, args.memory_budget, args.scheduler)
        wr = nbytes / 2**20 / w["seconds"]
        ratio = nbytes / size_on_disk(out)
        for k, (suffix, read_kwargs) in enumerate(variants):
            r = run_child("read", fmt, str(src), str(out), shape, read_kwargs, args.memory_budget, args.scheduler)
            rr = nbytes / 2**20 / r["seconds"]
            base = base or (wr, rr)
            wcols = f"{wr:11.0f} {wr / base[0]:7.2f}" if k == 0 else f"{'':11s} {'':7s}"
            wpeak = f"{w['peak'] / 2**20:11.0f} MiB" if k == 0 else f"{'':15s}"
            print(f"{label + suffix:44s} {wcols} {rr:11.0f} {rr / base[1]:7.2f} {ratio:6.2f} "
                  f"{wpeak} {r['peak'] / 2**20:10.0f} MiB", flush=True)
            if fmt != "raw":
                check = run_child("check", fmt, str(src), str(out), shape, read_kwargs, args.memory_budget,
                                  args.scheduler)
                if not check["equal"]:
                    raise SystemExit(f"{label + suffix}: data read back differs from the source")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    if not args.dir:
        shutil.rmtree(scratch)
    _ = lazyastro


if __name__ == "__main__":
    main()
