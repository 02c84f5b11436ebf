"""``lazyastro frames stats|convert``: thin command-line wrappers around :mod:`lazyastro.frames`.

Examples::

    lazyastro frames stats scan.h5 --stat max,mean,median,percentile:99.5 --out stats.fits
    lazyastro frames convert cache.npz series.zarr
    lazyastro frames convert series.zarr cache.fch5 --threshold 20
"""

from __future__ import annotations

import argparse
import os
import sys

from ..cli.options import int_option

__all__ = ["register", "stats_command", "convert_command"]


def _open(args: argparse.Namespace, source: str):
    """Open the input series with ``--format`` and the reader options declared by the formats."""
    from ..cli.commands import format_options
    from ..io import registry
    from .formats import SERIES_KINDS, open_series

    given = format_options(args, None, "open")
    fmt = None
    if args.format:
        fmt = registry.get_format(args.format, kinds=SERIES_KINDS, option="--format")
    elif os.path.exists(source):
        fmt = registry.resolve(source, options=given, kinds=SERIES_KINDS)
    kw = format_options(args, fmt, "open") if fmt is not None else given
    return open_series(source, format=fmt.name if fmt is not None else None, **kw)


def stats_command(args: argparse.Namespace) -> int:
    """Compute statistics over frames and stream them, in one pass, to one output file."""
    from .dataset import parse_stat_list, stats
    from .formats.results import result_kind, write_results

    names = parse_stat_list(args.stat)
    result_kind(args.out)
    series = _open(args, args.series)
    ds = stats(series, names, nframes=args.nframes, legacy=args.legacy)
    ds.attrs["source"] = str(args.series)
    path = write_results(ds, args.out, overwrite=args.overwrite)
    nf = ds.attrs["nframes"]
    print(f"{path}: {', '.join(ds.data_vars)} over {nf} frames of {series.shape[1]}x{series.shape[2]}",
          file=sys.stderr)
    return 0


def convert_command(args: argparse.Namespace) -> int:
    """Convert a series between formats (streamed, atomic)."""
    from ..cli.commands import format_options
    from ..io import registry
    from .formats import SERIES_KINDS, write_series

    if args.to:
        out_fmt = registry.get_format(args.to, kinds=SERIES_KINDS, option="--to")
    else:
        out_fmt = registry.get_format(registry.detect_format(args.dest, for_writing=True, kinds=SERIES_KINDS))
    kw = format_options(args, out_fmt, "write")
    series = _open(args, args.source)
    if args.nframes:
        series = series.isel(frame=slice(0, args.nframes))
    path = write_series(series, args.dest, format=out_fmt.name, overwrite=args.overwrite, **kw)
    print(f"{path}: {series.shape[0]} frames of {series.shape[1]}x{series.shape[2]} {series.dtype}",
          file=sys.stderr)
    return 0


def register(subparsers) -> None:
    """Add the ``frames`` command with its ``stats`` and ``convert`` subcommands.

    Format options (``--group``, ``--threshold``, ``--gzip``...) come from the declarations of
    the registered series formats (:mod:`lazyastro.io.registry`).
    """
    from ..cli.commands import add_format_options
    from ..io import registry
    from .formats import SERIES_KINDS

    inputs = ", ".join(n for n in registry.format_names(SERIES_KINDS) if registry.get_format(n).readable)
    outputs = ", ".join(n for n in registry.format_names(SERIES_KINDS) if registry.get_format(n).writable)
    frames = subparsers.add_parser("frames", help="image series (frame stacks): statistics and conversion",
                                   description="Image series (hexrd imageseries) tools.")
    sub = frames.add_subparsers(dest="frames_command", metavar="SUBCOMMAND")
    frames.set_defaults(func=lambda args: (frames.print_help(), 2)[1])

    st = sub.add_parser("stats", help="aggregate images over frames (max, min, mean, median, percentile:Q...)")
    st.add_argument("series", help="series file (hdf5, frame cache, image-files yml, fits, zarr, ...)")
    st.add_argument("--stat", default="max,min,mean,median",
                    help="comma-separated stats: max,min,sum,mean,std,median,percentile:Q and nan-variants "
                    "(default: %(default)s)")
    st.add_argument("--nframes", type=int_option(min=0), default=0, help="use the first N frames (0 = all)")
    st.add_argument("--format", default=None, metavar="NAME", help=f"input format (default: detect): {inputs}")
    st.add_argument("--legacy", action="store_true", help="reproduce the legacy float32 mean accumulation")
    st.add_argument("--out", required=True, help="output file: RESULT.fits, RESULT.zarr or RESULT.h5")
    st.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_format_options(st, "open", kinds=SERIES_KINDS)
    st.set_defaults(func=stats_command)

    cv = sub.add_parser("convert", help="convert a series between formats (e.g. frame-cache to Zarr)")
    cv.add_argument("source", help="input series")
    cv.add_argument("dest", help="output (.zarr, .h5 legacy hdf5, .npz / .fch5 frame cache, .fits cube)")
    cv.add_argument("--format", default=None, metavar="NAME", help=f"input format (default: detect): {inputs}")
    cv.add_argument("--to", default=None, metavar="NAME",
                    help=f"output format (default: from the extension, series layouts first): {outputs}")
    cv.add_argument("--nframes", type=int_option(min=0), default=0, help="convert only the first N frames")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_format_options(cv, "open", kinds=SERIES_KINDS)
    add_format_options(cv, "write", kinds=SERIES_KINDS)
    cv.set_defaults(func=convert_command)
