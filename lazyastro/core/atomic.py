"""Atomic outputs and completion records.

Writers never leave a file that looks complete before it is: they write to a
temporary sibling (``<name>.partial``) and rename it into place at the end. Long
jobs record finished pieces in a :class:`DoneRecord` next to the temporary
output, so a rerun after an interruption (even ``kill -9``) skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputExistsError

__all__ = ["partial_path", "check_output", "remove_path", "atomic_output", "finalize", "DoneRecord"]

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


class DoneRecord:
    """A directory of empty marker files, one per finished piece of work.

    Markers are created atomically after the piece is durably written, so a
    marker's presence means the piece is complete. A ``meta.json`` fingerprint
    guards against resuming with different parameters.
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)

    def open(self, fingerprint: dict) -> bool:
        """Create the record or check it matches ``fingerprint``; return True if resuming."""
        meta = self.dir / "meta.json"
        if meta.exists():
            try:
                old = json.loads(meta.read_text())
            except (OSError, ValueError):
                old = None
            if old == json.loads(json.dumps(fingerprint)):
                return True
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_suffix(".tmp")
        tmp.write_text(json.dumps(fingerprint, sort_keys=True))
        os.replace(tmp, meta)
        return False

    def is_done(self, key: str) -> bool:
        return (self.dir / f"{key}.done").exists()

    def mark_done(self, key: str) -> None:
        tmp = self.dir / f"{key}.tmp{os.getpid()}"
        tmp.write_bytes(b"")
        os.replace(tmp, self.dir / f"{key}.done")

    def done_keys(self) -> set[str]:
        if not self.dir.exists():
            return set()
        return {p.name[:-5] for p in self.dir.glob("*.done")}

    def remove(self) -> None:
        remove_path(self.dir)
