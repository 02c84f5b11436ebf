"""The skipper directory job: select files, skip those already done, compute in batches, write tables.

This is the legacy ``image_preproc.py`` run as a library function (``lazyastro skipper`` is
a thin command line over :func:`run_directory`).

Resume: the output table itself is the completion record. Each row is keyed by the file's
absolute path plus its size and mtime, and after every batch the whole table is rewritten
to a temporary file and renamed into place, so after an interruption (even ``kill -9``) the
table holds every finished batch and a rerun computes only the files not in it (or changed
since). A separate ``RegionRecord`` directory would duplicate that state and could disagree
with the table the user sees, so the table is the one record here.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputNotFoundError, ParameterError
from .stats import DEFAULT_SEED, compute_statistics
from .tables import format_for, read_done, write_rows

__all__ = ["run_directory", "DirectoryRun", "select_files", "human_key", "DEFAULT_PATTERN", "DEFAULT_OUTPUT"]

DEFAULT_PATTERN = r"Img_[0-9]+.fits"
DEFAULT_OUTPUT = "img_preproc_out"
_EXTENSIONS = {"ecsv": ".ecsv", "csv": ".csv", "legacy": ".txt"}


def human_key(name: str) -> list:
    """Sort key for "human" alphanumeric order (``Img_2`` before ``Img_10``).

    Examples
    --------
    >>> sorted(["Img_10", "Img_2"], key=human_key)
    ['Img_2', 'Img_10']
    """
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _is_file(entry: os.DirEntry) -> bool:
    """``entry.is_file()``, with a warning (not a crash) for symlink loops and unreadable links."""
    try:
        return entry.is_file()
    except OSError as exc:
        what = "symlink loop" if exc.errno == errno.ELOOP else (exc.strerror or type(exc).__name__)
        warnings.warn(f"{entry.path}: {what}; skipped", stacklevel=3)
        return False


def select_files(directory: str | os.PathLike, patterns: Sequence[str], glob: bool = False) -> list[str]:
    """Bare names in ``directory`` matching any pattern, sorted "human" alphanumerically.

    Parameters
    ----------
    directory : path
        Directory to list (not recursively).
    patterns : sequence of str
        Regular expressions matched at the start of the name (``re.match``, the legacy rule),
        or shell globs when ``glob``.
    glob : bool, optional
        Patterns are globs.

    Returns
    -------
    list of str

    Raises
    ------
    ParameterError
        For an invalid regular expression.

    Examples
    --------
    >>> select_files("/nonexistent-dir-for-doc", ["Img"])  # doctest: +SKIP
    """
    try:
        entries = list(os.scandir(directory))
    except OSError as exc:
        warnings.warn(f"{directory}: cannot list ({exc.strerror or exc}); skipped", stacklevel=2)
        return []
    names = [e.name for e in entries if _matches_any(e.name, patterns, glob) and _is_file(e)]
    return sorted(names, key=human_key)


def _matches_any(name: str, patterns: Sequence[str], glob: bool) -> bool:
    if glob:
        return any(fnmatch.fnmatchcase(name, p) for p in patterns)
    return any(r.match(name) for r in _regexes(tuple(patterns)))


def _regexes(patterns: tuple[str, ...]) -> list[re.Pattern]:
    try:
        return [re.compile(p) for p in patterns]
    except re.error as exc:
        raise ParameterError(f"bad regular expression in -f/--filenames: {exc}") from None


def _directories(root: Path, recursive: bool) -> list[Path]:
    if not root.exists():
        raise InputNotFoundError("no such directory", root)
    if not root.is_dir():
        raise ParameterError("-d/--directory must be a directory", root)
    if not recursive:
        return [root]
    dirs = [Path(d) for d, _sub, _files in os.walk(root)]
    return sorted(dirs, key=lambda d: human_key(str(d)))


@dataclass
class DirectoryRun:
    """What :func:`run_directory` did.

    Attributes
    ----------
    rows : list of dict
        Statistics of the files computed in this run (good files only).
    errors : list of (str, str)
        ``(file, message)`` of the files that could not be processed.
    tables : list of Path
        Tables written (empty with ``write=False``).
    matched : int
        Files matching the patterns.
    up_to_date : int
        Files skipped because the table already holds them (unchanged).
    """

    rows: list[dict] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    matched: int = 0
    up_to_date: int = 0


def run_directory(
    directory: str | os.PathLike = ".",
    *,
    patterns: Iterable[str] = (DEFAULT_PATTERN,),
    glob: bool = False,
    output: str | None = None,
    fmt: str | None = None,
    recursive: bool = False,
    redo: bool = False,
    write: bool = True,
    seed: int = DEFAULT_SEED,
    version: str = "2021",
    legacy: bool = False,
    exact: bool = False,
    plot_dir: str | os.PathLike | None = None,
    batch: int = 16,
    scheduler: str | None = None,
    progress: bool | None = None,
    on_error: Callable[[str, str], Any] | None = None,
) -> DirectoryRun:
    """Skipper statistics of every matching file of a directory, into a table in that directory.

    Files already in the table (same absolute path, size and mtime) are skipped unless
    ``redo``; the others are computed ``batch`` files at a time, and after each batch the
    table is rewritten atomically, so an interrupted run keeps its finished batches and a
    rerun resumes. A second run with nothing new does nothing (the table is not touched).

    Parameters
    ----------
    directory : path, optional
        Directory to search (default: the current one).
    patterns : iterable of str, optional
        File name patterns (regex matched at the start, the legacy rule; globs with ``glob``).
    glob : bool, optional
        Patterns are shell globs.
    output : str, optional
        Table name inside each searched directory (default ``img_preproc_out.ecsv``, ``.csv``
        or ``.txt`` after ``fmt``).
    fmt : {"ecsv", "csv", "legacy"}, optional
        Table format (default: from the ``output`` extension, else ECSV).
    recursive : bool, optional
        Also search subdirectories; each directory gets its own table.
    redo : bool, optional
        Recompute every file and rewrite the tables (legacy ``-a``).
    write : bool, optional
        Write the tables (``False``: only return the rows, legacy ``-p``).
    seed, version, legacy, exact
        Options of :func:`lazyastro.skipper.statistics`.
    plot_dir : path, optional
        Write a PNG of each file's histogram and fitted model there.
    batch : int, optional
        Files computed together before the tables are updated.
    scheduler, progress : optional
        How to compute (see :func:`lazyastro.compute`); a distributed scheduler starts one
        cluster for all batches.
    on_error : callable, optional
        ``on_error(file, message)`` is called for each bad file as soon as it is known.

    Returns
    -------
    DirectoryRun

    Raises
    ------
    InputNotFoundError
        If the directory does not exist or no file matches.
    ParameterError
        For invalid options.

    Examples
    --------
    >>> from lazyastro import skipper
    >>> _ = skipper.simulate("/tmp/_doc_run/Img_1.fits", nrows=10, ncols=12, nskips=4, seed=1)
    >>> run = skipper.run_directory("/tmp/_doc_run", redo=True, scheduler="sync", progress=False)
    >>> len(run.rows), run.tables[0].name
    (1, 'img_preproc_out.ecsv')
    """
    from ..core.execution import scheduler_session
    from ..core.validate import check_int

    batch = check_int(batch, "batch", min=1)
    patterns = list(patterns)
    fmt = format_for(output or "x.ecsv", fmt)
    out_name = output or DEFAULT_OUTPUT + _EXTENSIONS[fmt]
    root = Path(directory).resolve()
    result = DirectoryRun()
    jobs: list[tuple[Path, str]] = []  # (output table, file)
    for d in _directories(root, recursive):
        names = select_files(d, patterns, glob)
        result.matched += len(names)
        out = d / out_name
        done = {} if (redo or not write) else read_done(out, fmt)
        for n in names:
            path = str(d / n)
            old = done.get(path)
            if old is not None and _unchanged(path, old):
                result.up_to_date += 1
                continue
            jobs.append((out, path))
    if result.matched == 0:
        raise InputNotFoundError(
            f"no files match {' '.join(patterns)} ({'glob' if glob else 'regex'})"
            + (" in it or its subdirectories" if recursive else ""), root)
    if not jobs:
        return result
    opts = {"seed": seed, "version": version, "legacy": legacy, "exact": exact}
    rewritten: set[Path] = set()
    with scheduler_session(scheduler) as sched:
        for b0 in range(0, len(jobs), batch):
            part = jobs[b0 : b0 + batch]
            rows = compute_statistics([p for _o, p in part], errors="return", scheduler=sched,
                                      progress=progress, **opts)
            by_out: dict[Path, list[dict]] = {}
            for (out, _p), row in zip(part, rows):
                if "error" in row:
                    result.errors.append((row["filename"], row["error"]))
                    if on_error is not None:
                        on_error(row["filename"], row["error"])
                    continue
                by_out.setdefault(out, []).append(row)
                result.rows.append(row)
                if plot_dir is not None:
                    from .plot import plot_fit

                    plot_fit(row, Path(plot_dir) / (Path(row["filename"]).stem + ".png"))
            if write:
                for out, rs in by_out.items():
                    write_rows(out, rs, fmt, rewrite=redo and out not in rewritten, variables=version)
                    rewritten.add(out)
                    if out not in result.tables:
                        result.tables.append(out)
    return result


def _unchanged(path: str, old: tuple[Any, Any]) -> bool:
    if old == (None, None):  # legacy text table: the name alone
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    try:
        return int(old[0]) == st.st_size and float(old[1]) == st.st_mtime
    except (TypeError, ValueError):
        return False
