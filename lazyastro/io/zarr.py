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

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr

from ..core.atomic import DoneRecord, check_output, finalize, partial_path, remove_path
from ..core.backend import to_numpy
from ..core.chunking import grow_chunks, normalize_chunks
from ..core.errors import FormatError, IncompleteOutputError, InputNotFoundError, ParameterError
from ..core.metadata import json_attrs
from .common import as_dask, block_slices, default_dims, wrap

__all__ = ["open_zarr", "open_zarr_array", "to_zarr", "sniff_zarr", "make_codecs"]


def sniff_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("zarr.json", ".zarray", ".zgroup"))


def open_zarr_array(path: str | os.PathLike, name: str | None = None):
    """The ``zarr.Array`` at ``path`` (or the one named/only array of a group), with clear errors."""
    path = Path(path)
    if not path.exists():
        if partial_path(path).exists():
            raise IncompleteOutputError(
                "only an unfinished write exists (rerun the writer to resume it)", partial_path(path)
            )
        raise InputNotFoundError("no such Zarr store", path)
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for non-stores
        raise FormatError(f"not a Zarr store ({exc})", path) from None
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
    attrs = dict(arr.attrs)
    dims = getattr(arr.metadata, "dimension_names", None) or attrs.pop("_ARRAY_DIMENSIONS", None)
    if not dims or any(d is None for d in dims):
        dims = default_dims(arr.ndim)
    if chunks is None:
        # Several storage blocks per task: fewer, larger reads (zarr fetches them concurrently).
        chunk_shape = grow_chunks(getattr(arr, "shards", None) or arr.chunks, arr.shape, arr.dtype)
    else:
        chunk_shape = normalize_chunks(chunks, arr.shape, arr.dtype, dims)
    data = da.from_zarr(arr, chunks=chunk_shape)
    attrs.update({"source": str(path), "format": "zarr"})
    return wrap(data, tuple(dims), attrs)


def make_codecs(codec: str | Any = "lz4", clevel: int = 5) -> list:
    """Compressor list for a codec name: ``lz4`` (Blosc LZ4 + shuffle), ``zstd``, ``none``."""
    from zarr.codecs import BloscCodec

    if not isinstance(codec, str):
        return list(codec) if isinstance(codec, list | tuple) else [codec]
    if codec in ("lz4", "blosc-lz4"):
        return [BloscCodec(cname="lz4", clevel=clevel, shuffle="shuffle")]
    if codec in ("zstd", "blosc-zstd"):
        return [BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle")]
    if codec in ("none", None):
        return []
    raise ParameterError(f"unknown codec {codec!r}; use lz4, zstd or none")


def _write_block(block: np.ndarray, tmp: str, slices, key: str, record_dir: str) -> int:
    block = to_numpy(block)
    if block.shape != tuple(s.stop - s.start for s in slices):
        raise ValueError(f"a block of shape {block.shape} does not fit its region {slices}")
    arr = zarr.open_array(store=tmp, mode="r+")
    arr[slices] = block
    DoneRecord(record_dir).mark_done(key)
    return 1


def _finish(tmp: str, path: str, record_dir: str, written) -> str:
    DoneRecord(record_dir).remove()
    return finalize(tmp, path)


def to_zarr(
    array: Any,
    path: str | os.PathLike,
    chunks: Any = None,
    shards: Any = None,
    codec: str | Any = "lz4",
    clevel: int = 5,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Stream an array to a Zarr v3 array, resumably and atomically.

    ``chunks`` is the zarr chunk shape (default: the dask chunks); ``shards`` an
    optional shard shape that must be a whole multiple of ``chunks``. The dask
    array is rechunked so each task writes whole shards (or chunks). ``codec``:
    ``"lz4"`` (Blosc LZ4 + byte shuffle, default), ``"zstd"``, ``"none"`` or zarr
    codec objects. If an interrupted write of the same data is found, only the
    missing blocks are written.

    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_zarr(da.ones((256, 256)), "/tmp/ones.zarr", overwrite=True, progress=False)
    '/tmp/ones.zarr'
    """
    data, dims, attrs = as_dask(array)
    target = Path(path)
    tmp = partial_path(target)
    record = DoneRecord(str(tmp) + ".done")
    if target.exists() and not overwrite:
        check_output(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    if chunks is None:
        chunk_shape = tuple(c[0] if c else 1 for c in data.chunks)
        chunk_shape = normalize_chunks(chunk_shape, data.shape, data.dtype)
    else:
        chunk_shape = normalize_chunks(chunks, data.shape, data.dtype, dims)
    shard_shape = None
    if shards is not None:
        shard_shape = normalize_chunks(shards, data.shape, data.dtype, dims)
        for s, c, n in zip(shard_shape, chunk_shape, data.shape):
            if s % c and s != n:
                raise ParameterError(f"shards {shard_shape} must be whole multiples of chunks {chunk_shape}")
        # A shard holding a partial edge chunk must still be a multiple of the chunk.
        shard_shape = tuple(-(-s // c) * c for s, c in zip(shard_shape, chunk_shape))
    write_shape = tuple(min(w, n) if n else 1 for w, n in zip(shard_shape or chunk_shape, data.shape))
    data = data.rechunk(write_shape)
    codecs = make_codecs(codec, clevel)
    fingerprint = {
        "source": data.name, "shape": list(data.shape), "dtype": data.dtype.str,
        "chunks": list(chunk_shape), "shards": list(shard_shape) if shard_shape else None,
        "codecs": [repr(c) for c in codecs], "dims": list(dims),
    }
    resuming = tmp.exists() and record.open(fingerprint)
    if not resuming:
        remove_path(tmp)
        record.remove()
        record.open(fingerprint)
        zarr.create_array(
            store=str(tmp), shape=data.shape, dtype=data.dtype, chunks=chunk_shape,
            shards=shard_shape, compressors=codecs, dimension_names=list(dims),
            attributes=json_attrs(attrs), fill_value=0, overwrite=True,
        )
    done = record.done_keys()
    blocks = data.to_delayed().ravel()
    writes = []
    for blk, (idx, slices) in zip(blocks, block_slices(data.chunks)):
        key = "_".join(map(str, idx))
        if key in done:
            continue
        writes.append(dask.delayed(_write_block, pure=False)(blk, str(tmp), slices, key, record.dir))
    result = dask.delayed(_finish, pure=False)(str(tmp), str(target), str(record.dir), writes)
    if not compute:
        return result
    from ..core.execution import compute as run

    (out,) = run(result, scheduler=scheduler, progress=progress, desc=f"write {target.name}")
    return out
