"""``lazyastro demo``: an end-to-end out-of-core run on synthetic deep-field data.

Synthesises a series larger than the memory budget, streams it to Zarr,
converts it to FITS, reduces it lazily, and prints time, throughput and peak RSS
for each step.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..core.chunking import reduction_chunks
from ..core.config import format_bytes, memory_budget, parse_bytes, set_options
from ..core.errors import ParameterError
from ..core.memory import peak_rss, reset_peak_rss

SIZES = {"full": (64, 4096, 4096), "medium": (16, 4096, 4096), "small": (8, 1024, 1024)}

# Extra steps added by task packages: fn(out_dir, series_path, args) -> (label, nbytes) list.
EXTRA_STEPS: list[Callable] = []


def parse_size(text: str) -> tuple[int, int, int]:
    if text in SIZES:
        return SIZES[text]
    try:
        shape = tuple(int(v) for v in text.lower().replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) <= 0:
        raise ParameterError(f"--size must be one of {', '.join(SIZES)} or FRAMES,NY,NX, got {text!r}")
    return shape  # type: ignore[return-value]


class StepTable:
    """Collects (step, seconds, bytes) rows and prints them with peak RSS."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, int, int]] = []

    def run(self, label: str, nbytes: int, fn: Callable[[], object]) -> object:
        t0 = time.perf_counter()
        result = fn()
        self.rows.append((label, time.perf_counter() - t0, nbytes, peak_rss()))
        return result

    def print(self) -> None:
        print(f"\n{'step':44s} {'time (s)':>9s} {'MiB/s':>9s} {'peak RSS':>11s}")
        print("-" * 76)
        for label, secs, nbytes, rss in self.rows:
            rate = nbytes / 2**20 / secs if secs > 0 and nbytes else float("nan")
            print(f"{label:44s} {secs:9.2f} {rate:9.1f} {format_bytes(rss):>11s}")


def _frames_step(out: Path, zpath: Path, nbytes: int, table: StepTable) -> None:
    """Exact median over frames (hexrd ``imageseries.stats``), out of core, streamed to FITS."""
    import lazyastro
    from lazyastro import frames

    median = frames.median(frames.open(zpath))
    table.run("frames: exact median over frames (FITS)", nbytes,
              lambda: lazyastro.to_fits(median, out / "median.fits", overwrite=True))


def _skipper_step(out: Path, table: StepTable, seed: int) -> None:
    """Skipper-CCD quick-look statistics on simulated images (1, 25 and 400 skips)."""
    from lazyastro import skipper

    run = out / "skipper"
    paths = []
    for i, nskips in enumerate((1, 25, 400)):
        path = run / f"Img_{i:02d}.fits"
        skipper.simulate(path, nrows=60, ncols=200, nskips=nskips, read_noise=20.0,
                         dark_current=0.3, gain=8.0, seed=seed + i)
        paths.append(path)
    nbytes = sum(p.stat().st_size for p in paths)
    rows = table.run("skipper: quick-look statistics of 3 files", nbytes,
                     lambda: skipper.compute_statistics(paths, seed=seed))
    skipper.write_rows(run / "img_preproc_out.ecsv", rows, "ecsv", rewrite=True)
    print("  skipper truth: read noise 20 ADU per skip (20/sqrt(nskips) on the average), "
          "dark current 0.3 e-/pix, gain 8 ADU/e-", file=sys.stderr)
    for row in rows:
        print(f"  skipper {Path(row['filename']).name}: nskips={row['nskips']}, "
              f"skNoise={row['skNoise']:.3g} ADU, darkCurrent={row['darkCurrent']:.3g} e-/pix, "
              f"aduConversion={row['aduConversion']:.3g} ADU/e-", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    import lazyastro
    from lazyastro.synthetic import deep_field_series

    nframes, ny, nx = parse_size(args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = memory_budget() if args.memory_budget else parse_bytes("512MiB")
    nbytes = nframes * ny * nx * 4
    print(f"lazyastro demo: {nframes} frames of {ny}x{nx} float32 = {format_bytes(nbytes)}, "
          f"memory budget {format_bytes(budget)}, output in {out}/")
    table = StepTable()
    reset_peak_rss()
    start_rss = peak_rss()
    with set_options(memory_budget=budget):
        # Chunks of 256 whole rows per frame: row bands (exact median) then read only what they need.
        series = deep_field_series(nframes, ny, nx, seed=args.seed, chunks=(1, min(256, ny), nx))
        zpath, fpath = out / "series.zarr", out / "series.fits"
        table.run("synthesise + write Zarr (blosc-lz4)", nbytes,
                  lambda: lazyastro.to_zarr(series, zpath, overwrite=True))
        zarr_series = lazyastro.open_zarr(zpath)
        table.run("convert Zarr -> FITS", nbytes, lambda: lazyastro.to_fits(zarr_series, fpath, overwrite=True))
        # Blocks hold every frame of a band of rows, so the reductions need no big partial results.
        chunks = reduction_chunks((nframes, ny, nx), "float32", axes=(0,))
        cube = lazyastro.open_fits(fpath, chunks=chunks)
        # The three stacked images stream to FITS block by block from one shared pass over the data.
        stats = {"mean": cube.mean("frame", skipna=False), "max": cube.max("frame", skipna=False),
                 "std": cube.std("frame", skipna=False)}
        writes = [lazyastro.to_fits(img.astype("float32"), out / f"stack_{name}.fits", overwrite=True,
                                    compute=False) for name, img in stats.items()]
        table.run("reduce FITS -> mean, max, std images (FITS)", nbytes,
                  lambda: lazyastro.compute(*writes, desc="reduce"))
        _frames_step(out, zpath, nbytes, table)
        _skipper_step(out, table, args.seed)
        for step in EXTRA_STEPS:
            step(out, table, args)
    table.print()
    import numpy as np

    std_img = lazyastro.open_fits(out / "stack_std.fits")
    noise = float(np.median(std_img[: min(ny, 256)].values))
    print(f"\nmedian per-pixel std over frames {noise:.2f} (simulated noise sigma 5.0, plus a small sky drift); "
          f"the mean image is {math.sqrt(nframes):.1f}x less noisy")
    peak = max(r[3] for r in table.rows) - start_rss
    print(f"data per step: {format_bytes(nbytes)}; peak RSS above start-up ({format_bytes(start_rss)}): "
          f"{format_bytes(peak)} -> {'within' if peak <= budget else 'ABOVE'} the {format_bytes(budget)} budget")
    print(f"outputs: {zpath}, {fpath}, {out}/stack_{{mean,max,std}}.fits, {out}/median.fits, "
          f"{out}/skipper/img_preproc_out.ecsv")
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end out-of-core demo on synthetic data")
    p.add_argument("--out", default="lazyastro-demo", help="output directory (default: ./lazyastro-demo)")
    p.add_argument("--size", default="full",
                   help="full (64x4096x4096, 4 GiB), medium, small, or FRAMES,NY,NX (default: full)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic field")
    p.set_defaults(func=cmd_demo)
