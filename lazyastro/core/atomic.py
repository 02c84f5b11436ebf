"""Atomic outputs and completion records.

Writers never leave a file that looks complete before it is: they write to a
temporary sibling (``<name>.partial``) and rename it into place at the end. Long
jobs record finished pieces in a :class:`lazyastro.core.stream.RegionRecord`
next to the temporary output, so a rerun after an interruption (even
``kill -9``) skips them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError

__all__ = ["partial_path", "check_output", "remove_path", "atomic_output", "finalize"]

PARTIAL_SUFFIX = ".partial"


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name an output is written under before it is complete."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL_SUFFIX)


def remove_path(path: str | os.PathLike) -> None:
    """Remove a file or directory tree if it exists."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; create the parent directory."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError("output already exists (use overwrite=True / --overwrite)", p)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def finalize(tmp: str | os.PathLike, path: str | os.PathLike) -> str:
    """Move a finished temporary output into place (replacing any old output)."""
    tmp, path = Path(tmp), Path(path)
    if path.exists() and path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return str(path)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on error remove it.

    >>> with atomic_output("/tmp/_lazyastro_doc.txt", overwrite=True) as tmp:
    ...     _ = tmp.write_text("hello")
    """
    target = check_output(path, overwrite)
    tmp = partial_path(target)
    remove_path(tmp)
    try:
        yield tmp
    except BaseException:
        remove_path(tmp)
        raise
    finalize(tmp, target)
