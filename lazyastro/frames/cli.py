"""``lazyastro frames stats|convert``: thin command-line wrappers around :mod:`lazyastro.frames`.

Examples::

    lazyastro frames stats scan.h5 --stat max,mean,median,percentile:99.5 --out stats.fits
    lazyastro frames convert cache.npz series.zarr
    lazyastro frames convert series.zarr cache.fch5 --threshold 20
"""

from __future__ import annotations

import argparse
import sys

from ..core.errors import ParameterError

__all__ = ["register", "stats_command", "convert_command"]


def _split_stats(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ParameterError("--stat needs at least one statistic, e.g. max,mean,percentile:99.5")
    if len(set(names)) != len(names):
        raise ParameterError(f"--stat lists a statistic twice: {text!r}")
    return names


def _open_args(args) -> dict:
    kw = {}
    if getattr(args, "group", None):
        kw["group"] = args.group
    return kw


def stats_command(args: argparse.Namespace) -> int:
    """Compute statistics over frames and write one image per stat."""
    from . import open_series
    from .formats.results import result_kind, write_results
    from .stats import compute_stats

    names = _split_stats(args.stat)
    result_kind(args.out)
    series = open_series(args.series, format=args.format, **_open_args(args))
    results = compute_stats(series, names, nframes=args.nframes, legacy=args.legacy, desc="frames stats")
    out = {name.replace(":", "_"): value for name, value in results.items()}
    nf = series.shape[0] if not args.nframes else min(series.shape[0], args.nframes)
    attrs = {"source": str(args.series), "nframes": int(nf), "legacy": int(bool(args.legacy))}
    path = write_results(out, args.out, attrs=attrs, overwrite=args.overwrite)
    print(f"{path}: {', '.join(out)} over {nf} frames of {series.shape[1]}x{series.shape[2]}", file=sys.stderr)
    return 0


def convert_command(args: argparse.Namespace) -> int:
    """Convert a series between formats (streamed, atomic)."""
    from . import open_series, write_series

    series = open_series(args.source, format=args.format, **_open_args(args))
    if args.nframes:
        series = series.isel(frame=slice(0, args.nframes))
    kw: dict = {"overwrite": args.overwrite}
    if args.threshold is not None:
        kw["threshold"] = args.threshold
    path = write_series(series, args.dest, format=args.to, **kw)
    print(f"{path}: {series.shape[0]} frames of {series.shape[1]}x{series.shape[2]} {series.dtype}",
          file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add the ``frames`` command with its ``stats`` and ``convert`` subcommands."""
    frames = subparsers.add_parser("frames", help="image series (frame stacks): statistics and conversion",
                                   description="Image series (hexrd imageseries) tools.")
    sub = frames.add_subparsers(dest="frames_command", metavar="SUBCOMMAND")
    frames.set_defaults(func=lambda args: (frames.print_help(), 2)[1])

    st = sub.add_parser("stats", help="aggregate images over frames (max, min, mean, median, percentile:Q...)")
    st.add_argument("series", help="series file (hdf5, frame cache, image-files yml, fits, zarr, ...)")
    st.add_argument("--stat", default="max,min,mean,median",
                    help="comma-separated stats: max,min,sum,mean,std,median,percentile:Q and nan-variants "
                    "(default: %(default)s)")
    st.add_argument("--nframes", type=int, default=0, help="use the first N frames (0 = all)")
    st.add_argument("--format", default=None, help="input format (default: detect)")
    st.add_argument("--group", default=None, help="HDF5 group of a legacy hexrd series")
    st.add_argument("--legacy", action="store_true", help="reproduce the legacy float32 mean accumulation")
    st.add_argument("--out", required=True, help="output file: RESULT.fits, RESULT.zarr or RESULT.h5")
    st.add_argument("--overwrite", action="store_true", help="replace an existing output")
    st.set_defaults(func=stats_command)

    cv = sub.add_parser("convert", help="convert a series between formats (e.g. frame-cache to Zarr)")
    cv.add_argument("source", help="input series")
    cv.add_argument("dest", help="output (.zarr, .h5 legacy hdf5, .npz / .fch5 frame cache, .fits cube)")
    cv.add_argument("--format", default=None, help="input format (default: detect)")
    cv.add_argument("--group", default=None, help="HDF5 group of a legacy hexrd series")
    cv.add_argument("--to", default=None,
                    help="output format: zarr, hdf5, frame-cache, frame-cache-fch5, fits (default: extension)")
    cv.add_argument("--threshold", type=float, default=None,
                    help="frame caches keep pixels strictly above this value (required for them)")
    cv.add_argument("--nframes", type=int, default=0, help="convert only the first N frames")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing output")
    cv.set_defaults(func=convert_command)
