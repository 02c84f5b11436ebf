"""Legacy hexrd HDF5 image series: group ``path`` holding dataset ``images``.

The dataset is ``(nframes, rows, cols)`` (or 2-D for one frame); metadata are the
attributes of the group.

>>> s = open_hexrd_hdf5("series.h5", group="imageseries")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import mmap
import os
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from ...core.atomic import atomic_output
from ...core.errors import FormatError, ParameterError, reading
from ...core.filecache import cached_fd, pread_into
from ...core.filecache import cached_h5 as open_cached_h5
from ...core.paths import is_regular_file
from ...io.hdf5 import open_h5file, storage_layout
from ..series import Backend, as_series, from_backend
from ._common import iter_frame_batches, require_file, series_to_meta, to_bytes_meta

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
    if not is_regular_file(path) or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as h5:
        if "HEXRD_FRAMECACHE_VERSION" in h5.attrs:
            return False
        return bool(find_image_groups(h5))


def raw_layout(ds: h5py.Dataset) -> tuple[int, np.ndarray] | None:
    """Byte offsets of an unfiltered dataset's storage, for direct ``pread`` reads.

    Returns ``(rows_per_chunk, offsets)`` with ``offsets[frame, row_chunk]`` the file
    offset of ``rows_per_chunk`` full-width rows of that frame, or ``None`` when
    the data are filtered (compressed), not native-endian, not 2-D/3-D, chunked
    other than ``(1, rows, cols)`` with full-width rows, or not fully allocated.
    The storage itself is described by :func:`lazyastro.io.hdf5.storage_layout`.
    """
    if ds.ndim not in (2, 3):
        return None
    lay = storage_layout(ds)
    if lay is None or (lay["kind"] == "chunked" and lay["codec"] is not None):
        return None
    shape = (1,) + ds.shape if ds.ndim == 2 else ds.shape
    nf, ny, nx = shape
    if lay["kind"] == "contiguous":
        offsets = lay["offset"] + (np.arange(nf, dtype=np.int64) * ny * nx * ds.dtype.itemsize)[:, None]
        return ny, offsets
    chunks = (1,) + lay["chunks"] if ds.ndim == 2 else lay["chunks"]
    if chunks[0] != 1 or chunks[2] != nx:
        return None
    offsets = lay["offsets"]
    offsets = offsets[None] if ds.ndim == 2 else offsets
    return chunks[1], np.ascontiguousarray(offsets[:, :, 0])


def _cached_fd(path: str):
    """``with _cached_fd(path) as fd:`` a read-only descriptor from the shared file cache.

    One descriptor per file version serves every thread (``pread`` is positional);
    see :mod:`lazyastro.core.filecache`.
    """
    return cached_fd(path)


_pread_into = pread_into


def _mapped(fd, offsets, rc, row_bytes, start, stop, r0, r1, dtype, nx):
    """Frames ``start:stop``, rows ``r0:r1`` as a copy-on-write memory map, if evenly strided.

    The file's pages are used in place (no copy, no fresh memory to fault in);
    the array is writable (private pages are made on write) and the mapping is
    released with the array. ``None`` when the storage is not evenly strided.
    """
    c0, c1 = r0 // rc, (r1 - 1) // rc
    offs = offsets[start:stop, c0 : c1 + 1]
    first = int(offs[0, 0]) + (r0 - c0 * rc) * row_bytes
    fstride = int(offs[1, 0] - offs[0, 0]) if stop - start > 1 else 0
    expect = offs[0, 0] + np.arange(stop - start)[:, None] * fstride + np.arange(c1 - c0 + 1)[None, :] * rc * row_bytes
    if not np.array_equal(offs, expect) or fstride < 0:
        return None
    n = stop - start
    end = first + (n - 1) * fstride + (r1 - r0) * row_bytes
    base = first - first % mmap.ALLOCATIONGRANULARITY
    try:
        mm = mmap.mmap(fd, end - base, offset=base, access=mmap.ACCESS_COPY)
    except (OSError, ValueError):
        return None
    return np.ndarray((n, r1 - r0, nx), dtype, buffer=mm, offset=first - base,
                      strides=(fstride, row_bytes, dtype.itemsize))


class HexrdHDF5Backend(Backend):
    """Reads frames of ``group/dataname``.

    Unfiltered data (the legacy writer with ``gzip=0``, or contiguous datasets) are
    read with ``pread`` straight into the output at the byte offsets HDF5 reports:
    no HDF5 library call per read, so reads run in parallel in threads (h5py holds
    a global lock). Compressed data go through h5py (hyperslab reads, serialised).
    """

    def __init__(self, path, group: str, dataname: str, shape, dtype, two_d: bool, raw=None):
        self.path = os.fspath(path)
        self.group, self.dataname = group, dataname
        self.shape, self.dtype, self.two_d = tuple(shape), np.dtype(dtype), two_d
        self.raw = raw

    def read_region(self, start, stop, rows, cols):
        if self.raw is not None:
            return self._read_raw(start, stop, rows, cols)
        with open_cached_h5(self.path) as h5:
            ds = h5[self.group][self.dataname]
            if self.two_d:
                return ds[rows, cols][None]
            return ds[start:stop, rows, cols]

    def _read_raw(self, start, stop, rows, cols):
        _, ny, nx = self.shape
        r0, r1, rstep = rows.indices(ny) if isinstance(rows, slice) else (0, ny, 1)
        full_cols = isinstance(cols, slice) and cols.indices(nx) == (0, nx, 1)
        if rstep != 1 or not isinstance(rows, slice):
            return self._read_raw(start, stop, slice(None), cols)[:, rows]
        r1 = builtins.max(r0, r1)
        with _cached_fd(self.path) as fd:
            return self._read_raw_fd(fd, start, stop, r0, r1, cols, full_cols)

    def _read_raw_fd(self, fd, start, stop, r0, r1, cols, full_cols):
        rc, offsets = self.raw
        _, ny, nx = self.shape
        row_bytes = nx * self.dtype.itemsize
        # Whole frames are mapped (every mapped page is used); partial rows are read with pread,
        # since the kernel may map (and count in RSS) far more of the file than a band touches.
        if r0 == 0 and r1 == ny:
            view = _mapped(fd, offsets, rc, row_bytes, start, stop, r0, r1, self.dtype, nx)
            if view is not None:
                return view if full_cols else view[:, :, cols]
        out = np.empty((stop - start, r1 - r0, nx), self.dtype)
        for f in range(start, stop):
            for c in range(r0 // rc, -(-r1 // rc) if r1 > r0 else r0 // rc):
                a, b = builtins.max(r0, c * rc), builtins.min(r1, (c + 1) * rc)
                _pread_into(fd, out[f - start, a - r0 : b - r0], int(offsets[f, c]) + (a - c * rc) * row_bytes,
                            self.path)
        return out if full_cols else out[:, :, cols]

    def read(self, start, stop):
        return self.read_region(start, stop, slice(None), slice(None))


def _attr_value(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        return np.char.decode(v, "utf-8")
    return v


def open_hexrd_hdf5(
    path, group: str | None = None, dataname: str = "images", chunks=None, direct: bool = True
) -> xr.DataArray:
    """Open a legacy hexrd HDF5 series lazily; ``group`` is auto-detected if unique.

    ``direct=True`` reads uncompressed data by byte offset (parallel in threads,
    see :class:`HexrdHDF5Backend`); ``direct=False`` always goes through h5py.

    >>> s = open_hexrd_hdf5("series.h5")  # doctest: +SKIP
    >>> s.dims  # doctest: +SKIP
    ('frame', 'y', 'x')
    """
    p = require_file(path)
    with open_h5file(p) as h5, reading(p, "HDF5 metadata"):
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
        if ds.dtype.kind not in "biuf":
            raise FormatError(f"dataset {group}/{dataname} has dtype {ds.dtype}, not a numeric image dtype", p)
        if 0 in shape:
            raise FormatError(f"dataset {group}/{dataname} holds no data (shape {ds.shape})", p)
        meta = {k: _attr_value(v) for k, v in h5[group].attrs.items()}
        dtype = ds.dtype
        raw = raw_layout(ds) if direct else None
    backend = HexrdHDF5Backend(p, group, dataname, shape, dtype, two_d, raw=raw)
    return from_backend(backend, meta=meta, chunks=chunks, name="hexrd-hdf5")


def _write_into(grp, series, dataname, rows, filters, meta):
    nf, ny, nx = series.shape
    ds = grp.create_dataset(dataname, shape=(nf, ny, nx), dtype=series.dtype, chunks=(1, rows, nx), **filters)
    for key, value in meta.items():
        if isinstance(value, dict):
            continue
        try:
            grp.attrs[key] = to_bytes_meta(value)
        except TypeError as exc:
            raise ParameterError(f"metadata {key!r} cannot be stored as an HDF5 attribute: {exc}") from exc
    for start, block in iter_frame_batches(series, desc="write hdf5"):
        ds[start : start + len(block)] = block


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

    Parameters
    ----------
    series : DataArray or array
        Image series ``(frame, y, x)``; attrs (and ``omega``) become group attributes.
    path : str, path, h5py.File or h5py.Group
        Output file, or an open ``h5py`` file/group to write into (as hexrd
        allows; not atomic, the caller owns and closes it).
    group : str
        Group that holds the dataset (created).
    dataname : str
        Dataset name.
    gzip : int
        gzip level 0..9 (0: no compression).
    shuffle : bool
        HDF5 shuffle filter with gzip.
    chunk_rows : int, optional
        Rows per chunk (default: whole frames).
    compression : mapping, optional
        ``create_dataset`` filter keywords used as they are.
    overwrite : bool
        Replace an existing output file.

    Returns
    -------
    str
        The output path (``file:group`` for an open HDF5 target).

    Raises
    ------
    ParameterError
        Bad gzip level, an existing group in an open target, or metadata HDF5 cannot store.

    Examples
    --------
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
    rows = min(ny, int(chunk_rows)) if chunk_rows and int(chunk_rows) > 0 else ny
    meta = series_to_meta(series)
    if isinstance(path, h5py.Group):
        if group in path:
            raise ParameterError(f"group {group!r} already exists in {path.file.filename}:{path.name}")
        grp = path.create_group(group)
        _write_into(grp, series, dataname, rows, filters, meta)
        return f"{path.file.filename}:{grp.name}"
    from ...io.hdf5_write import new_file

    with atomic_output(path, overwrite) as tmp:
        with new_file(tmp) as h5:  # no object times: the same series gives the same bytes
            # track_order=False: a group h5py's global track_order would time-stamp
            grp = h5.require_group(group) if group.strip("/") == "" else h5.create_group(group, track_order=False)
            _write_into(grp, series, dataname, rows, filters, meta)
    return os.fspath(path)
