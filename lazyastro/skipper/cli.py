"""``lazyastro skipper``: the legacy ``image_preproc.py`` command on lazy statistics.

Files are selected per directory by regex (legacy, start-anchored) or glob, sorted
"human" alphanumerically; files already in the directory's output table are skipped
unless ``-a``. Files are computed together through the scheduler in batches; after each
batch the table is rewritten atomically, so an interrupted run resumes where it stopped.

Example::

    lazyastro skipper -d run42 -r --format ecsv --plot plots --seed 1
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import re
import sys
from pathlib import Path

from ..cli.options import int_option
from ..core.errors import InputNotFoundError, ParameterError
from ..core.execution import cluster, resolve_scheduler
from .stats import DEFAULT_SEED, compute_statistics
from .tables import LEGACY_COLUMNS, format_for, format_legacy, read_done, to_table, write_rows

__all__ = ["register", "handler", "select_files", "human_key", "DEFAULT_PATTERN"]

DEFAULT_PATTERN = r"Img_[0-9]+.fits"
DEFAULT_OUTPUT = "img_preproc_out"


def human_key(name: str) -> list:
    """Sort key for "human" alphanumeric order (``Img_2`` before ``Img_10``)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def select_files(directory: Path, patterns: list[str], glob: bool = False) -> list[str]:
    """Bare names in ``directory`` matching any pattern (regex ``re.match`` or glob), human-sorted."""
    names = [e.name for e in os.scandir(directory) if e.is_file()]
    if glob:
        hits = {n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    else:
        try:
            regs = [re.compile(p) for p in patterns]
        except re.error as exc:
            raise ParameterError(f"bad regular expression in -f/--filenames: {exc}") from None
        hits = {n for n in names if any(r.match(n) for r in regs)}
    return sorted(hits, key=human_key)


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
    p.add_argument("--legacy", action="store_true", help="reproduce legacy numerical quirks (1.4826 MAD, bin offsets)")
    p.add_argument("--exact", action="store_true", help="pixVar: median over all pixels instead of a seeded sample")
    p.add_argument("--seed", type=int_option(min=0), default=DEFAULT_SEED, help=f"seed of the sampled statistics (default {DEFAULT_SEED})")
    p.add_argument("--plot", metavar="DIR", default=None, help="write a PNG of each histogram and fitted model to DIR")
    p.add_argument("--batch", type=int_option(min=1), default=16, help="files computed together before the table is updated (default 16)")
    p.set_defaults(func=handler, glob=False)
    return p


def _directories(root: Path, recursive: bool) -> list[Path]:
    if not root.exists():
        raise InputNotFoundError("no such directory", root)
    if not root.is_dir():
        raise ParameterError("-d/--directory must be a directory", root)
    if not recursive:
        return [root]
    dirs = [Path(d) for d, _sub, _files in os.walk(root)]
    return sorted(dirs, key=lambda d: human_key(str(d)))


def handler(args: argparse.Namespace) -> int:
    """Run the ``skipper`` subcommand; returns the exit code (1 if some files were bad)."""
    if args.batch < 1:
        raise ParameterError(f"--batch must be >= 1, got {args.batch}")
    fmt = format_for(args.output or "x.ecsv", args.format)
    out_name = args.output or DEFAULT_OUTPUT + {"ecsv": ".ecsv", "csv": ".csv", "legacy": ".txt"}[fmt]
    root = Path(args.directory).resolve()
    jobs: list[tuple[Path, str]] = []  # (output table, file)
    matched = 0
    for d in _directories(root, args.recursive):
        names = select_files(d, args.filenames, args.glob)
        matched += len(names)
        out = d / out_name
        done = {} if (args.all or args.print_only) else read_done(out, fmt)
        for n in names:
            path = str(d / n)
            old = done.get(path)
            if old is not None:
                st = os.stat(path)
                unchanged = old == (None, None) or (int(old[0]) == st.st_size and float(old[1]) == st.st_mtime)
                if unchanged:
                    continue
            jobs.append((out, path))
    if matched == 0:
        raise InputNotFoundError(
            f"no files match {' '.join(args.filenames)} ({'glob' if args.glob else 'regex'})"
            + (" in it or its subdirectories" if args.recursive else ""), root)
    if not jobs:
        print(f"skipper: all {matched} matching files are already in the output (use -a to redo)", file=sys.stderr)
        return 0
    opts = {"seed": args.seed, "version": args.variables, "legacy": args.legacy, "exact": args.exact}
    # one local cluster for all batches (compute() would start one per call)
    ctx = cluster() if resolve_scheduler() == "distributed" else contextlib.nullcontext()
    with ctx:
        return _run(args, jobs, fmt, opts)


def _run(args: argparse.Namespace, jobs: list[tuple[Path, str]], fmt: str, opts: dict) -> int:
    bad, printed, rewritten = 0, [], set()
    for b0 in range(0, len(jobs), args.batch):
        batch = jobs[b0 : b0 + args.batch]
        rows = compute_statistics([p for _o, p in batch], errors="return", **opts)
        by_out: dict[Path, list[dict]] = {}
        for (out, _p), row in zip(batch, rows):
            if "error" in row:
                bad += 1
                print(f"lazyastro: error: {row['filename']}: {row['error']}", file=sys.stderr)
                continue
            by_out.setdefault(out, []).append(row)
            if args.plot:
                from .plot import plot_fit

                plot_fit(row, Path(args.plot) / (Path(row["filename"]).stem + ".png"))
        for out, rs in by_out.items():
            if args.print_only:
                printed.extend(rs)
            else:
                write_rows(out, rs, fmt, rewrite=args.all and out not in rewritten, variables=args.variables)
                rewritten.add(out)
    if args.print_only and printed:
        if fmt == "legacy":
            print("\n".join(format_legacy(printed, LEGACY_COLUMNS[args.variables])))
        else:
            import io

            buf = io.StringIO()
            to_table(printed).write(buf, format="ascii.ecsv" if fmt == "ecsv" else "ascii.csv")
            print(buf.getvalue(), end="")
    elif not args.print_only:
        n_ok = len(jobs) - bad
        print(f"skipper: {n_ok} file(s) written to {', '.join(sorted({str(o) for o, _ in jobs}))}", file=sys.stderr)
    return 1 if bad else 0
