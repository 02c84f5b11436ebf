"""Zarr v3: the native store. Lazy reading, resumable streaming writes.

Writes go to ``<path>.partial`` and every finished dask block is recorded in
``<path>.partial.done/``; a rerun after an interruption (even ``kill -9``) with
the same inputs writes only the missing blocks, then renames the store into
place. Dask blocks are aligned to whole shards (or whole chunks when there are
no shards), so no two tasks ever write the same zarr object.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask.base import tokenize

from ..core.atomic import partial_path
from ..core.chunking import grow_chunks, normalize_chunks
from ..core.errors import (
    FormatError,
    IncompleteOutputError,
    InputNotFoundError,
    ParameterError,
    block_text,
    reading,
)
from ..core.paths import is_regular_file, require_input
from .common import default_dims, wrap

__all__ = ["open_zarr", "open_zarr_array", "to_zarr", "ZarrTarget", "sniff_zarr", "make_codecs"]


def sniff_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("zarr.json", ".zarray", ".zgroup"))


def open_zarr_array(path: str | os.PathLike, name: str | None = None):
    """The ``zarr.Array`` at ``path`` (or the one named/only array of a group), with clear errors."""
    path = Path(path)
    if not os.path.lexists(path):
        if partial_path(path).exists():
            raise IncompleteOutputError(
                "only an unfinished write exists (rerun the writer to resume it)", partial_path(path)
            )
        raise InputNotFoundError("no such Zarr store", path)
    if is_regular_file(path):
        raise FormatError("not a Zarr store (this is a file; a Zarr store is a directory)", path)
    require_input(path, kind="dir")  # refuses FIFOs, devices, link loops, unreadable directories
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for non-stores
        raise FormatError(f"not a Zarr store ({' '.join(str(exc).split())})", path) from None
    if isinstance(node, zarr.Group):
        arrays = dict(node.arrays())
        if name is None:
            if len(arrays) != 1:
                raise ParameterError(
                    f"group holds {len(arrays)} arrays {sorted(arrays)}; pass name=...", path
                )
            name = next(iter(arrays))
        if name not in arrays:
            raise InputNotFoundError(f"array {name!r} not in group (has {sorted(arrays)})", path)
        return arrays[name]
    return node


class _ZarrReader:
    """A ``zarr.Array`` seen by ``da.from_array``: reads turn errors into lazyastro errors."""

    def __init__(self, arr, source: str):
        self.arr, self.source = arr, source
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        what = block_text(key) if isinstance(key, tuple) and all(isinstance(k, slice) for k in key) else f"{key}"
        with reading(self.source, what):
            return np.asarray(self.arr[key])


def open_zarr(
    path: str | os.PathLike, name: str | None = None, chunks: Any = None
) -> xr.DataArray:
    """Open a Zarr array (or the one array of a group) lazily as a DataArray.

    Dims come from the store's ``dimension_names`` (v3) or ``_ARRAY_DIMENSIONS``
    attribute; attributes go to ``attrs``.

    >>> import lazyastro
    >>> series = lazyastro.open_zarr("series.zarr")  # doctest: +SKIP
    """
    path = Path(path)
    arr = open_zarr_array(path, name)
    if 0 in arr.shape:
        raise FormatError(f"array holds no data (shape {arr.shape})", path)
    attrs = dict(arr.attrs)
    dims = getattr(arr.metadata, "dimension_names", None) or attrs.pop("_ARRAY_DIMENSIONS", None)
    if not dims or any(d is None for d in dims):
        dims = default_dims(arr.ndim)
    if chunks is None:
        # Several storage blocks per task: fewer, larger reads (zarr fetches them concurrently).
        chunk_shape = grow_chunks(getattr(arr, "shards", None) or arr.chunks, arr.shape, arr.dtype)
    else:
        chunk_shape = normalize_chunks(chunks, arr.shape, arr.dtype, dims)
    # da.from_zarr's tasks, with read errors (corrupt chunks, codec failures) naming the store
    reader = _ZarrReader(arr, str(path))
    data = da.from_array(
        reader, chunks=chunk_shape, name="open-zarr-" + tokenize(arr, chunk_shape), lock=False,
        asarray=False, meta=np.empty((0,) * arr.ndim, dtype=arr.dtype),
    )
    attrs.update({"source": str(path), "format": "zarr"})
    return wrap(data, tuple(dims), attrs)


# The writer lives in ``zarr_write`` (the streaming engine's Zarr target).
from .zarr_write import ZarrTarget, make_codecs, to_zarr  # noqa: E402
