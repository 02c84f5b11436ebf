"""Legacy hexrd HDF5 image series: group ``path`` holding dataset ``images``.

The dataset is ``(nframes, rows, cols)`` (or 2-D for one frame); metadata are the
attributes of the group.

>>> s = open_hexrd_hdf5("series.h5", group="imageseries")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from ...core.atomic import atomic_output
from ...core.errors import FormatError, ParameterError
from ..series import Backend, as_series, from_backend
from ._common import cached_h5, iter_frame_batches, require_file, series_to_meta, to_bytes_meta

__all__ = ["open_hexrd_hdf5", "write_hexrd_hdf5", "sniff_hexrd_hdf5", "find_image_groups"]


def find_image_groups(h5: h5py.File, dataname: str = "images") -> list[str]:
    """Names of groups (root and up to two levels deep) holding a 2-D/3-D ``dataname``."""
    found = []

    def check(name, grp):
        ds = grp.get(dataname)
        if isinstance(ds, h5py.Dataset) and ds.ndim in (2, 3):
            found.append(name)

    check("/", h5)
    for key, obj in h5.items():
        if isinstance(obj, h5py.Group):
            check(key, obj)
            for key2, obj2 in obj.items():
                if isinstance(obj2, h5py.Group):
                    check(f"{key}/{key2}", obj2)
    return found


def sniff_hexrd_hdf5(path: Path) -> bool:
    """HDF5 file (not a frame cache) with a group holding an ``images`` dataset."""
    if not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as h5:
        if "HEXRD_FRAMECACHE_VERSION" in h5.attrs:
            return False
        return bool(find_image_groups(h5))


class HexrdHDF5Backend(Backend):
    """Reads frames of ``group/dataname`` by hyperslab; opens the file per read."""

    def __init__(self, path, group: str, dataname: str, shape, dtype, two_d: bool):
        self.path = os.fspath(path)
        self.group, self.dataname = group, dataname
        self.shape, self.dtype, self.two_d = tuple(shape), np.dtype(dtype), two_d

    def read_region(self, start, stop, rows, cols):
        ds = cached_h5(self.path)[self.group][self.dataname]
        if self.two_d:
            return ds[rows, cols][None]
        return ds[start:stop, rows, cols]

    def read(self, start, stop):
        return self.read_region(start, stop, slice(None), slice(None))


def _attr_value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return np.char.decode(v, "utf-8")
    return v


def open_hexrd_hdf5(
    path, group: str | None = None, dataname: str = "images", chunks=None
) -> xr.DataArray:
    """Open a legacy hexrd HDF5 series lazily; ``group`` is auto-detected if unique.

    >>> s = open_hexrd_hdf5("series.h5")  # doctest: +SKIP
    >>> s.dims
    ('frame', 'y', 'x')
    """
    import hdf5plugin  # noqa: F401

    p = require_file(path)
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        raise FormatError(f"not a readable HDF5 file ({exc})", p) from exc
    with h5:
        if group is None:
            groups = find_image_groups(h5, dataname)
            if len(groups) != 1:
                what = "no group" if not groups else f"several groups {groups}"
                raise FormatError(f"{what} with a dataset {dataname!r}; pass group=...", p)
            group = groups[0]
        if group not in h5:
            raise FormatError(f"no group {group!r} in the file", p)
        ds = h5[group].get(dataname)
        if not isinstance(ds, h5py.Dataset) or ds.ndim not in (2, 3):
            raise FormatError(f"group {group!r} has no 2-D/3-D dataset {dataname!r}", p)
        two_d = ds.ndim == 2
        shape = (1,) + ds.shape if two_d else ds.shape
        meta = {k: _attr_value(v) for k, v in h5[group].attrs.items()}
        dtype = ds.dtype
    backend = HexrdHDF5Backend(p, group, dataname, shape, dtype, two_d)
    return from_backend(backend, meta=meta, chunks=chunks, name="hexrd-hdf5")


def write_hexrd_hdf5(
    series,
    path,
    group: str = "imageseries",
    dataname: str = "images",
    gzip: int = 1,
    shuffle: bool = True,
    chunk_rows: int | None = None,
    compression: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Write a series in the legacy hexrd HDF5 layout (streamed, atomic).

    Chunks are ``(1, chunk_rows or rows, cols)``; gzip level ``gzip`` with shuffle
    (``gzip=0`` disables); ``compression`` (e.g. ``hdf5plugin.Blosc()``) overrides both.

    >>> write_hexrd_hdf5(np.zeros((2, 3, 4), "u2"), "/tmp/_doc.h5", overwrite=True)  # doctest: +ELLIPSIS
    '/tmp/_doc.h5'
    """
    import hdf5plugin  # noqa: F401

    series = as_series(series)
    if not 0 <= int(gzip) <= 9:
        raise ParameterError(f"gzip level must be in 0..9, got {gzip}")
    nf, ny, nx = series.shape
    if compression is not None:
        filters = dict(compression)
    elif gzip:
        filters = {"compression": "gzip", "compression_opts": int(gzip), "shuffle": bool(shuffle)}
    else:
        filters = {}
    rows = min(ny, int(chunk_rows)) if chunk_rows else ny
    meta = series_to_meta(series)
    with atomic_output(path, overwrite) as tmp:
        with h5py.File(tmp, "w") as h5:
            grp = h5.require_group(group)
            ds = grp.create_dataset(
                dataname, shape=(nf, ny, nx), dtype=series.dtype, chunks=(1, rows, nx), **filters
            )
            for key, value in meta.items():
                if isinstance(value, dict):
                    continue
                try:
                    grp.attrs[key] = to_bytes_meta(value)
                except TypeError as exc:
                    raise ParameterError(f"metadata {key!r} cannot be stored as an HDF5 attribute: {exc}") from exc
            for start, block in iter_frame_batches(series, desc="write hdf5"):
                ds[start : start + len(block)] = block
    return os.fspath(path)
