"""Zarr v3 output through the streaming engine: whole shards per task, resumable, atomic.

A DataArray becomes one array; a Dataset one group with an array per variable
(``dimension_names`` from the dims, attributes from the attrs). Dask blocks are
aligned to whole shards (or whole chunks without shards), so no two tasks ever
write the same zarr object, and an interrupted write (even ``kill -9``) resumes
to identical bytes; temporary files an interrupted zarr write left inside the
store are removed before resuming.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.chunking import auto_chunks, normalize_chunks
from ..core.errors import ParameterError
from ..core.metadata import json_attrs
from ..core.stream import StreamTarget, Variable, store

__all__ = ["ZarrTarget", "to_zarr", "make_codecs"]


def make_codecs(codec: str | Any = "lz4", clevel: int = 5) -> list:
    """Compressor list for a codec name: ``lz4`` (Blosc LZ4 + shuffle), ``zstd``, ``none``.

    >>> [type(c).__name__ for c in make_codecs("zstd")], make_codecs("none")
    (['BloscCodec'], [])
    """
    from zarr.codecs import BloscCodec

    if not isinstance(codec, str | None):
        return list(codec) if isinstance(codec, list | tuple) else [codec]
    if codec in ("lz4", "blosc-lz4"):
        return [BloscCodec(cname="lz4", clevel=clevel, shuffle="shuffle")]
    if codec in ("zstd", "blosc-zstd"):
        return [BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle")]
    if codec in ("none", None):
        return []
    raise ParameterError(f"unknown codec {codec!r}; use lz4, zstd or none")


def _is_store(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("zarr.json", ".zarray", ".zgroup"))


class ZarrTarget(StreamTarget):
    """A Zarr v3 store: one array (DataArray) or one group of arrays (Dataset).

    Parameters
    ----------
    path : path-like
        Output directory store.
    chunks, shards : tuple or dict, optional
        Zarr chunk and shard shapes (default: the dask chunks; no shards).
        Shards must be whole multiples of the chunks.
    codec : str or zarr codecs
        ``"lz4"`` (Blosc LZ4 + shuffle, default), ``"zstd"``, ``"none"``.
    group_attrs : dict, optional
        Attributes of the group (Datasets).
    """

    format = "zarr"

    def __init__(self, path, *, chunks=None, shards=None, codec="lz4", clevel: int = 5,
                 group: bool = False, group_attrs: dict | None = None):
        super().__init__(path)
        self.user_chunks = chunks
        self.user_shards = shards
        self.codecs = make_codecs(codec, clevel)
        self.group = group
        self.group_attrs = dict(group_attrs or {})
        self.layout: list[dict] = []

    # -- layout
    def _layout(self, shape, dtype, dims, dask_chunks=None) -> dict:
        if self.user_chunks is None:
            chunk = tuple(c[0] if c else 1 for c in dask_chunks) if dask_chunks else auto_chunks(shape, dtype)
            chunk = normalize_chunks(chunk, shape, dtype)
        else:
            chunk = normalize_chunks(self.user_chunks, shape, dtype, dims)
        shard = None
        if self.user_shards is not None:
            shard = normalize_chunks(self.user_shards, shape, dtype, dims)
            for s, c, n in zip(shard, chunk, shape):
                if s % c and s != n:
                    raise ParameterError(f"shards {shard} must be whole multiples of chunks {chunk}")
            # a shard spanning a whole axis whose length is not a multiple of the chunk
            shard = tuple(-(-s // c) * c for s, c in zip(shard, chunk))
        write = tuple(min(w, n) if n else 1 for w, n in zip(shard or chunk, shape))
        return {"chunks": list(chunk), "shards": list(shard) if shard else None, "write": list(write)}

    def memory_chunks(self, shape, dtype):
        return tuple(self._layout(shape, dtype, None)["write"])

    def check(self, variables: list[Variable]) -> None:
        self.group = self.group or len(variables) > 1
        names = [v.name or f"var{i}" for i, v in enumerate(variables)]
        if self.group and len(set(names)) != len(names):
            raise ParameterError(f"variable names must be unique, got {names}")
        self.names = names
        self.layout = [self._layout(v.shape, v.dtype, v.dims, v.data.chunks) for v in variables]

    def chunks(self, var_index: int, var: Variable):
        from dask.array.core import normalize_chunks as dask_chunks

        return dask_chunks(tuple(self.layout[var_index]["write"]), var.shape)

    def params(self) -> dict:
        return {"layout": self.layout, "codecs": [repr(c) for c in self.codecs], "group": self.group,
                "names": self.names}

    def is_own_output(self, path: Path) -> bool:
        return _is_store(path)

    def _array_path(self, tmp: Path, var_index: int) -> str:
        return str(tmp / self.names[var_index]) if self.group else str(tmp)

    # -- writing
    def create(self, tmp: Path, variables: list[Variable]) -> None:
        import zarr

        if self.group:
            zarr.open_group(str(tmp), mode="w", attributes=json_attrs(self.group_attrs))
        for i, (v, lay) in enumerate(zip(variables, self.layout)):
            zarr.create_array(
                store=self._array_path(tmp, i), shape=v.shape, dtype=v.dtype, chunks=tuple(lay["chunks"]),
                shards=tuple(lay["shards"]) if lay["shards"] else None, compressors=self.codecs,
                dimension_names=list(v.dims), attributes=json_attrs(v.attrs), fill_value=0,
                overwrite=True,
            )

    def reopen(self, tmp: Path, variables: list[Variable]) -> bool:
        if not _is_store(tmp):
            return False
        # an interrupted chunk write leaves zarr's own "<key>.<uuid>.partial" temporary files
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                if name.endswith(".partial"):
                    os.unlink(os.path.join(root, name))
        return True

    def write(self, tmp: Path, var_index: int, region, block: np.ndarray) -> None:
        import zarr

        arr = zarr.open_array(store=self._array_path(tmp, var_index), mode="r+")
        arr[region] = block


def to_zarr(
    array: Any,
    path: str | os.PathLike,
    *,
    chunks: Any = None,
    shards: Any = None,
    codec: str | Any = "lz4",
    clevel: int = 5,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Stream an array (or every variable of a Dataset) to a Zarr v3 store, resumably.

    Parameters
    ----------
    array : array-like, DataArray or Dataset
        The data; a Dataset becomes a group with one array per variable.
    path : path-like
        Output directory store (written as ``<path>.partial``, renamed at the end).
    chunks : tuple or dict, optional
        Zarr chunk shape (default: the dask chunks).
    shards : tuple or dict, optional
        Shard shape, a whole multiple of ``chunks`` (a shard spanning a whole axis
        is rounded up to whole chunks).
    codec : {"lz4", "zstd", "none"} or zarr codecs
        Blosc LZ4 + byte shuffle by default.
    overwrite : bool
        Replace an existing Zarr store (never another kind of directory or file).
    compute : bool
        ``False`` returns the lazy store (a ``dask.delayed``).
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str or dask.delayed.Delayed

    Examples
    --------
    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_zarr(da.ones((256, 256)), "/tmp/ones.zarr", overwrite=True, progress=False)
    '/tmp/ones.zarr'
    """
    import xarray as xr

    target = ZarrTarget(path, chunks=chunks, shards=shards, codec=codec, clevel=clevel,
                        group=isinstance(array, xr.Dataset),
                        group_attrs=dict(array.attrs) if isinstance(array, xr.Dataset) else None)
    return store(array, target, overwrite=overwrite, compute=compute, scheduler=scheduler,
                 progress=progress, desc=f"write {Path(path).name}")
