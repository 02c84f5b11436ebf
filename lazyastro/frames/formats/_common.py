"""Helpers shared by the series readers and writers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from ...core.chunking import chunk_bytes_for_budget
from ...core.errors import FormatError, InputNotFoundError
from ...core.execution import compute
from ...core.paths import is_regular_file, require_input

__all__ = ["iter_frame_batches", "series_to_meta", "require_file", "to_bytes_meta", "load_yaml", "yaml_problem",
           "read_text"]


def require_file(path, kind: str = "file") -> Path:
    """``path`` as a ``Path`` if it is an existing regular file (``kind="dir"``: directory).

    FIFOs, devices and symbolic-link loops are refused before anything opens them
    (see :func:`lazyastro.core.paths.require_input`).
    """
    return require_input(path, kind=kind)


def yaml_problem(exc: Exception) -> str:
    r"""A one-line description of a YAML error: ``"line 2, column 2: expected ',' or ']' ..."``.

    Parameters
    ----------
    exc : Exception
        A ``yaml.YAMLError`` (or a decoding error).

    Returns
    -------
    str
        The problem and its position on one line.

    Examples
    --------
    >>> import yaml
    >>> try:
    ...     yaml.safe_load("a: [1, 2\nb: 3")
    ... except yaml.YAMLError as exc:
    ...     print(yaml_problem(exc))
    line 2, column 2: expected ',' or ']', but got ':' (while parsing a flow sequence)
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context = getattr(exc, "context", None)
    return f"{where}{problem}" + (f" ({context})" if context else "")


def load_yaml(text: str, source) -> object:
    """``yaml.safe_load(text)``; a syntax error becomes a one-line :class:`FormatError` naming ``source``.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str or os.PathLike
        The file it came from (for the message).

    Returns
    -------
    object
        The parsed document.

    Raises
    ------
    FormatError
        ``"SOURCE: invalid YAML: line L, column C: problem"``.

    Examples
    --------
    >>> load_yaml("a: 1", "x.yml")
    {'a': 1}
    """
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(f"invalid YAML: {yaml_problem(exc)}", source) from None


def read_text(path: Path) -> str:
    """The text of a regular file (UTF-8), with one-line lazyastro errors."""
    p = require_input(path, kind="file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not a UTF-8 text file ({exc.reason} at byte {exc.start})", p) from None
    except OSError as exc:
        raise FormatError(f"cannot read the file ({exc.strerror or exc})", p) from None


def iter_frame_batches(
    series: xr.DataArray, desc: str = "frames", batch_bytes: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_frame, block)`` of consecutive frames, computed batch by batch.

    Each batch is computed with :func:`lazyastro.core.execution.compute` (the active
    scheduler) and holds at most ``batch_bytes`` (default: a chunk of the budget).
    """
    from tqdm.auto import tqdm

    from ...core.config import get_option

    nf, ny, nx = series.shape
    frame_bytes = max(1, ny * nx * series.dtype.itemsize)
    per = max(1, (batch_bytes or chunk_bytes_for_budget()) // frame_bytes)
    data = series.data
    bar = tqdm(total=nf, desc=desc, unit="frame", disable=not get_option("progress"))
    try:
        for start in range(0, nf, per):
            stop = min(nf, start + per)
            (block,) = compute(data[start:stop], progress=False)
            yield start, np.asarray(block)
            bar.update(stop - start)
    finally:
        bar.close()


def series_to_meta(series: xr.DataArray) -> dict:
    """Legacy metadata dict of a series: attrs plus ``omega`` rebuilt as ``(nframes, 2)``."""
    meta = {k: v for k, v in series.attrs.items() if k != "header"}
    c = series.coords
    if "omega_start" in c and "omega_end" in c:
        meta["omega"] = np.stack([np.asarray(c["omega_start"]), np.asarray(c["omega_end"])], axis=1)
    elif "omega" in c:
        meta["omega"] = np.asarray(c["omega"])
    return meta


def to_bytes_meta(value):
    """Unicode arrays become bytes arrays (HDF5 attributes), other values unchanged."""
    arr = np.asarray(value) if isinstance(value, list | tuple | np.ndarray) else None
    if arr is not None and arr.dtype.kind == "U":
        return np.char.encode(arr, "utf-8")
    return value


def check_not_found(path, exc: Exception):
    if isinstance(exc, FileNotFoundError):
        raise InputNotFoundError("no such file or directory", path) from exc
    raise FormatError(str(exc), path) from exc


def cached_h5(path: str):
    """A read-only ``h5py.File`` for ``path`` from the shared per-process file cache.

    Tasks still open files by path (nothing is pickled); re-opening an HDF5 file
    for every small block read costs milliseconds, so handles are reused
    (:mod:`lazyastro.core.filecache`: an LRU that closes evicted files, with a
    fresh handle when the file's inode, mtime or size changes). Code that holds
    the file for a while should use ``with lazyastro.core.filecache.cached_h5(path)``,
    which keeps it open until the block ends.
    """
    from ...core.filecache import CachedFile

    return CachedFile(path, "h5").get()


def sniff_yaml_mapping(path: Path) -> dict | None:
    """The top-level mapping of a ``.yml``/``.yaml`` file (``yaml.safe_load``), or ``None``."""
    import yaml

    if path.suffix.lower() not in (".yml", ".yaml") or not is_regular_file(path):
        return None
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return None
    return doc if isinstance(doc, dict) else None
