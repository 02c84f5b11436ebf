"""HDF5 output through the streaming engine: one writer process, resumable, atomic.

HDF5 is not safe to write from several processes, so blocks are computed by
any scheduler and written in turn by the process that runs
:func:`lazyastro.core.stream.store` (``single_writer``). Each block is flushed
before it is recorded as done, and blocks are always written in the same order,
so an interrupted write (even ``kill -9``) resumes to identical bytes. Before
each block the free space is checked, so a full disk is a clear error instead
of a failure inside the HDF5 library.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..core.chunking import normalize_chunks
from ..core.errors import ParameterError, UnsupportedDtypeError
from ..core.stream import StreamTarget, Variable, store

__all__ = ["HDF5Target", "to_hdf5", "hdf5_compression", "fixed_dataset"]

#: Room kept free on the output's file system beyond each block (HDF5 metadata, other writers).
FREE_SPACE_MARGIN = 16 * 2**20


def hdf5_compression(compression: str | None, level: int | None = None) -> dict[str, Any]:
    """h5py dataset keywords for ``gzip``, ``lzf``, ``blosc-lz4``, ``blosc-zstd`` or ``None``.

    >>> hdf5_compression("gzip")["compression"]
    'gzip'
    """
    import hdf5plugin

    if compression in (None, "none"):
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4 if level is None else level, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    if compression in ("blosc-lz4", "blosc-zstd", "blosc"):
        cname = "zstd" if compression == "blosc-zstd" else "lz4"
        return dict(hdf5plugin.Blosc(cname=cname, clevel=5 if level is None else level,
                                     shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise ParameterError(
        f"unknown HDF5 compression {compression!r}; use gzip, lzf, blosc-lz4, blosc-zstd or none"
    )



def new_file(path: str | os.PathLike):
    """A new HDF5 file (truncating) whose bytes depend only on what is written into it.

    Links and attributes keep their creation order, and no object records creation or
    modification times (HDF5 stamps the root group by default, so two runs a second apart, or
    a run resumed after ``kill -9``, would otherwise differ in those bytes).
    """
    import h5py

    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    order = h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED
    fcpl.set_link_creation_order(order)
    fcpl.set_attr_creation_order(order)
    fcpl.set_obj_track_times(False)
    return h5py.File(h5py.h5f.create(os.fsencode(path), h5py.h5f.ACC_TRUNC, fcpl=fcpl))


def fixed_dataset(group, name: str, shape, dtype, data=None):
    """A contiguous dataset whose file space is allocated now, at creation (``ALLOC_TIME_EARLY``).

    HDF5 gives a contiguous dataset its space only when it is first written, so the file
    layout would depend on the order and the sessions of the writes: a job interrupted and
    resumed would place its datasets at other offsets than an uninterrupted one (same
    contents, other bytes). Created this way, every later write only fills raw bytes at fixed
    offsets and changes no metadata, so the bytes do not depend on when or in how many
    sessions (even after ``kill -9``) the data are written. ``data``, if given, is written at
    once. No fill value is written (unwritten space reads as zeros).

    >>> import numpy as np, tempfile, os
    >>> with new_file(os.path.join(tempfile.mkdtemp(), "f.h5")) as f:
    ...     ds = fixed_dataset(f, "a", (2, 3), "f8")
    ...     ds.id.get_offset() is not None
    True
    """
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    # the high-level call keeps h5py's defaults (no object times) on top of this property list
    return group.create_dataset(name, shape=shape, dtype=dtype, data=data, dcpl=dcpl)


class HDF5Target(StreamTarget):
    """An HDF5 file: one dataset (DataArray) or one dataset per variable (Dataset).

    Parameters
    ----------
    path : path-like
        Output file.
    dataset : str
        Dataset path of a single array; for a Dataset, the group that holds one
        dataset per variable (``""`` = the root).
    compression : str or None
        ``blosc-lz4`` (default), ``blosc-zstd``, ``gzip``, ``lzf`` or ``none``.
    chunks : tuple or dict, optional
        HDF5 chunk shape (default: the dask chunks, at most 64 MiB).
    """

    format = "hdf5"
    single_writer = True

    def __init__(self, path, *, dataset: str = "data", compression: str | None = "blosc-lz4",
                 level: int | None = None, chunks=None, group: bool = False):
        super().__init__(path)
        self.dataset = dataset.strip("/")
        self.compression = compression
        self.level = level
        self.opts = hdf5_compression(compression, level)
        self.user_chunks = chunks
        self.group = group
        self._file = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"] = None  # open handles stay in their process
        return state

    def check(self, variables: list[Variable]) -> None:
        for v in variables:
            if v.dtype.kind not in "biuf":
                raise UnsupportedDtypeError(f"dtype {v.dtype} cannot be written to HDF5 by lazyastro", self.path)
        self.group = self.group or len(variables) > 1
        if self.group:
            names = [v.name or f"var{i}" for i, v in enumerate(variables)]
            if len(set(names)) != len(names):
                raise ParameterError(f"variable names must be unique, got {names}")
            prefix = f"{self.dataset}/" if self.dataset and self.dataset != "data" else ""
            self.names = [prefix + n for n in names]
        else:
            self.names = [self.dataset or "data"]
        self.h5chunks = [self._h5chunks(v) for v in variables]

    def _h5chunks(self, v: Variable):
        if not v.shape or not math.prod(v.shape):
            return None
        if self.user_chunks is not None:
            chunks = normalize_chunks(self.user_chunks, v.shape, v.dtype, v.dims)
        else:
            chunks = tuple(max(1, min(c[0], 2**31)) for c in v.data.chunks)
        # HDF5 chunks must stay below 4 GiB; keep them modest for compression speed.
        while math.prod(chunks) * v.dtype.itemsize > 64 * 2**20 and max(chunks) > 1:
            ax = int(np.argmax(chunks))
            chunks = chunks[:ax] + (max(1, chunks[ax] // 2),) + chunks[ax + 1 :]
        return list(chunks)

    def params(self) -> dict:
        return {"names": self.names, "chunks": self.h5chunks, "compression": self.compression,
                "level": self.level}

    def create(self, tmp: Path, variables: list[Variable]) -> None:
        from .hdf5 import _write_attrs

        with new_file(tmp) as f:
            for name, v, chunks in zip(self.names, variables, self.h5chunks):
                ds = f.create_dataset(name, shape=v.shape, dtype=v.dtype,
                                      chunks=tuple(chunks) if chunks else None,
                                      **(self.opts if chunks else {}))
                _write_attrs(ds, v.attrs, v.dims)

    def reopen(self, tmp: Path, variables: list[Variable]) -> bool:
        import h5py

        try:
            with h5py.File(tmp, "r") as f:
                return all(name in f and f[name].shape == v.shape for name, v in zip(self.names, variables))
        except OSError:
            return False  # an interrupted file HDF5 cannot open: start over

    def _handle(self, tmp: Path):
        import h5py

        if self._file is None or not self._file.id.valid:
            self._file = h5py.File(tmp, "r+")
        return self._file

    def write(self, tmp: Path, var_index: int, region, block: np.ndarray) -> None:
        free = shutil.disk_usage(tmp.parent).free
        if free < block.nbytes + FREE_SPACE_MARGIN:
            raise OSError(errno.ENOSPC, "no space left on device", str(tmp))
        f = self._handle(tmp)
        f[self.names[var_index]][region] = block
        f.flush()

    def finalize(self, tmp: Path) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def to_hdf5(
    array: Any,
    path: str | os.PathLike,
    dataset: str = "data",
    *,
    compression: str | None = "blosc-lz4",
    level: int | None = None,
    chunks: Any = None,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Stream an array (or every variable of a Dataset) into an HDF5 file, resumably.

    Blocks are computed in batches that fit the memory budget (any scheduler)
    and written by this process; the file appears under ``path`` only when
    complete, and an interrupted write resumes when rerun.

    Parameters
    ----------
    array : array-like, DataArray or Dataset
        The data; a Dataset gives one HDF5 dataset per variable.
    path : path-like
        Output file.
    dataset : str
        Dataset name (for a Dataset: the group of its variables; default root).
    compression : str or None
        ``blosc-lz4`` (default), ``blosc-zstd``, ``gzip``, ``lzf`` or ``none``.
    level : int, optional
        Compression level.
    chunks : tuple or dict, optional
        HDF5 chunk shape.
    overwrite : bool
        Replace an existing file (never a directory).
    compute : bool
        ``False`` returns the lazy store: a chain of writes, one at a time.
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str or dask.delayed.Delayed

    Examples
    --------
    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_hdf5(da.ones((64, 64)), "/tmp/ones.h5", "img", overwrite=True, progress=False)
    '/tmp/ones.h5'
    """
    import xarray as xr

    target = HDF5Target(path, dataset=dataset, compression=compression, level=level, chunks=chunks,
                        group=isinstance(array, xr.Dataset))
    return store(array, target, overwrite=overwrite, compute=compute, scheduler=scheduler,
                 progress=progress, desc=f"write {Path(path).name}")
