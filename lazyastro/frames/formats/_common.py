"""Helpers shared by the series readers and writers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xarray as xr

from ...core.chunking import chunk_bytes_for_budget
from ...core.errors import FormatError, InputNotFoundError
from ...core.execution import compute

__all__ = ["iter_frame_batches", "series_to_meta", "require_file", "to_bytes_meta"]


def require_file(path) -> Path:
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputNotFoundError("no such file or directory", p)
    return p


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


_H5_CACHE: dict = {}
_H5_LOCK = __import__("threading").Lock()
_H5_MAX = 8


def cached_h5(path: str):
    """A read-only ``h5py.File`` for ``path``, kept open per process (LRU of 8).

    Tasks still open files by path (nothing is pickled); re-opening an HDF5 file
    for every small block read costs milliseconds, so handles are reused and
    replaced when the file's mtime or size changes.
    """
    import h5py
    import hdf5plugin  # noqa: F401  (registers Blosc and other filters)

    st = os.stat(path)
    key = (os.fspath(path), st.st_mtime_ns, st.st_size)
    with _H5_LOCK:
        h5 = _H5_CACHE.pop(key, None)
        if h5 is None or not h5.id.valid:
            h5 = h5py.File(path, "r")
        _H5_CACHE[key] = h5
        while len(_H5_CACHE) > _H5_MAX:
            old = _H5_CACHE.pop(next(iter(_H5_CACHE)))
            old.close()
        return h5


def sniff_yaml_mapping(path: Path) -> dict | None:
    """The top-level mapping of a ``.yml``/``.yaml`` file (``yaml.safe_load``), or ``None``."""
    import yaml

    if path.suffix.lower() not in (".yml", ".yaml") or not path.is_file():
        return None
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return None
    return doc if isinstance(doc, dict) else None
