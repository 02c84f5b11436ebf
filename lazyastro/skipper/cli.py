"""``lazyastro skipper``: the legacy ``image_preproc.py`` command (thin: parse, call, report).

The work is :func:`lazyastro.skipper.run_directory`: files are selected per directory by
regex (legacy, start-anchored) or glob, sorted "human" alphanumerically; files already in
the directory's output table are skipped unless ``-a``; the rest are computed in batches and
the table is rewritten atomically after each batch, so an interrupted run resumes.

Example::

    lazyastro skipper -d run42 -r --format ecsv --plot plots --seed 1
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..cli.options import int_option

__all__ = ["register", "handler", "DEFAULT_PATTERN"]

DEFAULT_PATTERN = r"Img_[0-9]+.fits"
DEFAULT_OUTPUT = "img_preproc_out"
DEFAULT_SEED = 20191012  # lazyastro.skipper.stats.DEFAULT_SEED (kept here: --help imports nothing heavy)


def __getattr__(name: str):  # select_files / human_key moved to lazyastro.skipper.directory
    if name in ("select_files", "human_key"):
        from . import directory

        return getattr(directory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``skipper`` subcommand."""
    p = subparsers.add_parser(
        "skipper", help="Skipper-CCD quick-look statistics (legacy image_preproc)",
        description="Quick-look statistics of skipper-CCD images (DAMIC-M image preprocessing): "
        "entropy, noise, variances, tail ratio, dark current and gain from a Poisson (x) Gaussian fit.",
    )
    p.add_argument("-f", "--filenames", nargs="+", default=[DEFAULT_PATTERN], metavar="PAT",
                   help=f"file name patterns (regex matched at the start by default; default {DEFAULT_PATTERN})")
    sel = p.add_mutually_exclusive_group()
    sel.add_argument("--regex", dest="glob", action="store_false", help="patterns are regular expressions (default)")
    sel.add_argument("--glob", dest="glob", action="store_true", help="patterns are shell globs")
    p.add_argument("-o", "--output", default=None,
                   help=f"output table, inside each searched directory (default {DEFAULT_OUTPUT}.ecsv/.csv/.txt)")
    p.add_argument("-d", "--directory", default=".", help="directory to search (default: current)")
    p.add_argument("-a", "--all", action="store_true", help="reprocess every file and rewrite the output")
    p.add_argument("-r", "--recursive", action="store_true", help="also search subdirectories (each has its own output)")
    p.add_argument("-p", "--print", dest="print_only", action="store_true", help="print the table instead of writing it")
    p.add_argument("--format", choices=("ecsv", "csv", "legacy"), default=None,
                   help="table format (default: from the output extension, else ecsv)")
    p.add_argument("--variables", choices=("2019", "2021"), default="2021",
                   help="legacy variable definitions and legacy-format columns (default 2021)")
    p.add_argument("--legacy", action="store_true", help="reproduce the legacy formulas exactly (1.4826 MAD, bin offsets, fit starts, degenerate fits "
                   "reported as fitted); the default gives NaN with a reason (skNoise_reason) for unresolved fits")
    p.add_argument("--exact", action="store_true", help="pixVar: median over all pixels instead of a seeded sample")
    p.add_argument("--seed", type=int_option(min=0), default=DEFAULT_SEED, help=f"seed of the sampled statistics (default {DEFAULT_SEED})")
    p.add_argument("--plot", metavar="DIR", default=None, help="write a PNG of each histogram and fitted model to DIR")
    p.add_argument("--batch", type=int_option(min=1), default=16, help="files computed together before the table is updated (default 16)")
    p.set_defaults(func=handler, glob=False)
    return p


def handler(args: argparse.Namespace) -> int:
    """Run the ``skipper`` subcommand; returns the exit code (1 if some files were bad)."""
    from .directory import run_directory
    from .tables import LEGACY_COLUMNS, format_for, format_legacy, to_table

    def report(path: str, message: str) -> None:
        print(f"lazyastro: error: {path}: {message}", file=sys.stderr)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            run = run_directory(
                args.directory, patterns=args.filenames, glob=args.glob, output=args.output, fmt=args.format,
                recursive=args.recursive, redo=args.all, write=not args.print_only, seed=args.seed,
                version=args.variables, legacy=args.legacy, exact=args.exact, plot_dir=args.plot,
                batch=args.batch, on_error=report,
            )
        finally:
            for w in caught:
                print(f"lazyastro: warning: {w.message}", file=sys.stderr)
    if not run.rows and not run.errors:
        print(f"skipper: all {run.matched} matching files are already in the output (use -a to redo)",
              file=sys.stderr)
        return 0
    if args.print_only and run.rows:
        fmt = format_for(args.output or "x.ecsv", args.format)
        if fmt == "legacy":
            print("\n".join(format_legacy(run.rows, LEGACY_COLUMNS[args.variables])))
        else:
            import io

            from .units import enabled_units

            buf = io.StringIO()
            with enabled_units():
                to_table(run.rows).write(buf, format="ascii.ecsv" if fmt == "ecsv" else "ascii.csv")
            print(buf.getvalue(), end="")
    elif not args.print_only:
        print(f"skipper: {len(run.rows)} file(s) written to {', '.join(str(t) for t in run.tables) or 'no table'}",
              file=sys.stderr)
    return 1 if run.errors else 0
