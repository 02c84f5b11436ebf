"""``lazyastro demo``: an end-to-end out-of-core run on synthetic deep-field data.

Synthesises a series larger than the memory budget, streams it to Zarr,
converts it to FITS, reduces it lazily, and prints time, throughput and peak RSS
for each step.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.chunking import reduction_chunks
from ..core.config import format_bytes, memory_budget, parse_bytes, set_options
from ..core.errors import ParameterError
from ..core.memory import peak_rss, reset_peak_rss

SIZES = {"full": (64, 4096, 4096), "medium": (16, 4096, 4096), "small": (8, 1024, 1024)}

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
        width = max([44, *(len(label) for label, *_ in self.rows)])
        print(f"\n{'step':{width}s} {'time (s)':>9s} {'MiB/s':>9s} {'peak RSS':>11s}")
        print("-" * (width + 32))
        for label, secs, nbytes, rss in self.rows:
            rate = nbytes / 2**20 / secs if secs > 0 and nbytes else float("nan")
            print(f"{label:{width}s} {secs:9.2f} {rate:9.1f} {format_bytes(rss):>11s}")


#: Entry-point group through which other packages add demo steps.
ENTRY_POINT_GROUP = "lazyastro.demo_steps"


@dataclass
class DemoContext:
    """What a demo step gets: the output directory, the synthetic series, the step table."""

    out: Path
    series_zarr: Path
    nbytes: int
    table: StepTable
    seed: int
    args: argparse.Namespace


def demo_steps() -> list[tuple[str, Callable[[DemoContext], None]]]:
    """Demo steps declared by the task packages, in order.

    Every subpackage of lazyastro with a ``demo`` module contributes its
    ``DEMO_STEPS`` (a list of ``(order, label, function)``); other packages add
    steps through the ``lazyastro.demo_steps`` entry-point group (each entry
    point loads to such a list).
    """
    import importlib
    import pkgutil
    from importlib.metadata import entry_points

    import lazyastro

    found: list[tuple[int, str, Callable]] = []
    for info in pkgutil.iter_modules(lazyastro.__path__):
        if not info.ispkg:
            continue
        try:
            mod = importlib.import_module(f"lazyastro.{info.name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name != f"lazyastro.{info.name}.demo":
                raise
            continue
        found += list(getattr(mod, "DEMO_STEPS", []))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found += list(ep.load())
    return [(label, fn) for _order, label, fn in sorted(found, key=lambda s: (s[0], s[1]))]


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
        ctx = DemoContext(out=out, series_zarr=zpath, nbytes=nbytes, table=table, seed=args.seed, args=args)
        outputs = []
        for _label, step in demo_steps():
            outputs += list(step(ctx) or [])
    table.print()
    import numpy as np

    std_img = lazyastro.open_fits(out / "stack_std.fits")
    noise = float(np.median(std_img[: min(ny, 256)].values))
    print(f"\nmedian per-pixel std over frames {noise:.2f} (simulated noise sigma 5.0, plus a small sky drift); "
          f"the mean image is {math.sqrt(nframes):.1f}x less noisy")
    peak = max(r[3] for r in table.rows) - start_rss
    print(f"data per step: {format_bytes(nbytes)}; peak RSS above start-up ({format_bytes(start_rss)}): "
          f"{format_bytes(peak)} -> {'within' if peak <= budget else 'ABOVE'} the {format_bytes(budget)} budget")
    print(f"outputs: {zpath}, {fpath}, {out}/stack_{{mean,max,std}}.fits" + "".join(f", {p}" for p in outputs))
    return 0


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the end-to-end out-of-core demo on synthetic data")
    p.add_argument("--out", default="lazyastro-demo", help="output directory (default: ./lazyastro-demo)")
    p.add_argument("--size", default="full",
                   help="full (64x4096x4096, 4 GiB), medium, small, or FRAMES,NY,NX (default: full)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the synthetic field")
    p.set_defaults(func=cmd_demo)
