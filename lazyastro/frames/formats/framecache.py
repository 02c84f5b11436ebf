"""Legacy sparse frame caches: ``.npz`` (default), ``fch5`` (HDF5) and the deprecated ``.yml``.

Frames are stored as the pixels strictly above a threshold, with ``uint16`` row
and column indices. Readers are lazy: each task opens the file by path and
densifies only the frames of its block. Pickled object arrays are refused.

>>> s = open_frame_cache("cache.npz")  # doctest: +SKIP
>>> write_frame_cache(s, "cache.fch5", threshold=10, style="fch5")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import warnings
import zipfile
from pathlib import Path

import h5py
import numpy as np
import xarray as xr

from ...core.atomic import atomic_output
from ...core.errors import FormatError, ParameterError, UnsupportedDtypeError, reading
from ...core.paths import is_regular_file
from ...io.hdf5 import open_h5file
from ..kernels import densify, sparsify
from ..series import Backend, as_series, from_backend
from ._common import (
    cached_h5,
    iter_frame_batches,
    load_yaml,
    read_text,
    require_file,
    series_to_meta,
    sniff_yaml_mapping,
)

__all__ = [
    "open_frame_cache",
    "open_npz_cache",
    "open_fch5_cache",
    "open_yml_cache",
    "write_frame_cache",
    "sniff_npz_cache",
    "sniff_fch5_cache",
    "sniff_yml_cache",
    "FCH5_VERSION",
]

FCH5_VERSION = 1
_FRAME_KEY = re.compile(r"^\d+_(row|col|data)$")
_NUMPY_REF = re.compile(r"^!?\s*load-numpy-array\s+(\S.*)$")


def _dtype_from(value, path) -> np.dtype:
    v = np.asarray(value).item() if not isinstance(value, str | bytes) else value
    if isinstance(v, bytes):
        v = v.decode("utf-8")
    try:
        return np.dtype(str(v))
    except TypeError as exc:
        raise FormatError(f"invalid field 'dtype' {v!r}", path) from exc


def _load_member(z, key, path):
    try:
        return z[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise FormatError(
                f"field {key!r} holds pickled Python objects; refusing to load it "
                "(pickle can run arbitrary code). Re-create the cache without object arrays",
                path,
            ) from exc
        raise FormatError(f"cannot read field {key!r}: {exc}", path) from exc
    except KeyError as exc:
        raise FormatError(f"missing field {key!r}", path) from exc


def _scalar(v):
    v = np.asarray(v)
    if v.ndim == 0 or v.shape == (1,):
        v = v.reshape(()).item()
        return v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return v


# --------------------------------------------------------------------------- npz


def sniff_npz_cache(path: Path) -> bool:
    """Zip (npz) file with the frame-cache keys ``shape``, ``nframes`` and ``dtype``."""
    if not is_regular_file(path) or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    return {"shape.npy", "nframes.npy", "dtype.npy"} <= names


def _place(out, rows, cols, vals, frame_shape, dtype, i: int, path) -> None:
    """Put the sparse pixels of frame ``i`` into the dense frame ``out``.

    The triplets are checked first (equal lengths, indices inside the frame, values
    that fit the cache dtype), so a corrupt cache fails naming the frame instead of
    raising a bare ``IndexError`` inside a dask task.
    """
    rows, cols, vals = np.asarray(rows).ravel(), np.asarray(cols).ravel(), np.asarray(vals).ravel()
    ny, nx = frame_shape
    if not (len(rows) == len(cols) == len(vals)):
        raise FormatError(
            f"frame {i}: {len(rows)} row, {len(cols)} column and {len(vals)} value entries (must be equal)", path
        )
    if rows.dtype.kind not in "iu" or cols.dtype.kind not in "iu":
        raise FormatError(f"frame {i}: indices have dtype {rows.dtype}/{cols.dtype}, not integers", path)
    if len(rows):
        if int(rows.min()) < 0 or int(rows.max()) >= ny or int(cols.min()) < 0 or int(cols.max()) >= nx:
            raise FormatError(
                f"frame {i}: sparse index out of range (rows {int(rows.min())}..{int(rows.max())}, "
                f"columns {int(cols.min())}..{int(cols.max())}) for frames of shape {(ny, nx)}",
                path,
            )
    if vals.dtype.kind in "fc" and np.dtype(dtype).kind in "biu":
        raise FormatError(f"frame {i}: values of dtype {vals.dtype} do not match the cache dtype {dtype}", path)
    out[...] = densify((ny, nx), dtype, rows, cols, vals)


class NpzCacheBackend(Backend):
    """Densifies frames ``{i}_row/_col/_data`` of a frame-cache npz (whole frames).

    A frame's members are decompressed whole whatever rows are asked for, so this
    reader declares no ``read_region``: exact percentiles then decompress each frame
    once and band it within the memory budget (:mod:`lazyastro.frames.bands`).
    """

    def __init__(self, path, shape, dtype):
        self.path, self.shape, self.dtype = os.fspath(path), tuple(shape), np.dtype(dtype)

    def read(self, start, stop):
        out = np.empty((stop - start,) + self.shape[1:], self.dtype)
        with np.load(self.path, allow_pickle=False) as z:
            for k, i in enumerate(range(start, stop)):
                rr = _load_member(z, f"{i}_row", self.path)
                cc = _load_member(z, f"{i}_col", self.path)
                vv = _load_member(z, f"{i}_data", self.path)
                _place(out[k], rr, cc, vv, self.shape[1:], self.dtype, i, self.path)
        return out


def _count(value, name: str, path, *, minimum: int = 0) -> int:
    """A non-negative integer count from a cache field (``nframes``, ``shape``), validated."""
    v = np.asarray(value)
    if v.dtype.kind not in "iu" and not (v.dtype.kind == "f" and np.all(np.mod(v, 1) == 0)):
        raise FormatError(f"field {name!r} must hold integers, got {value!r}", path)
    if v.size != 1:
        raise FormatError(f"field {name!r} must hold one integer, got {v.size} values", path)
    n = int(v.ravel()[0])
    if n < minimum:
        raise FormatError(f"field {name!r} is {n}; it must be >= {minimum}", path)
    return n


def _frame_shape(value, path) -> tuple[int, int]:
    v = np.asarray(value).ravel()
    if v.size != 2:
        raise FormatError(f"field 'shape' must hold 2 values, got {value!r}", path)
    return tuple(_count(s, "shape", path, minimum=1) for s in v)  # type: ignore[return-value]


def open_npz_cache(path, chunks=None) -> xr.DataArray:
    """Open a legacy frame-cache ``.npz`` lazily (``np.load(allow_pickle=False)``).

    The fields are validated before any graph is built: ``shape`` (two positive
    integers), ``nframes`` (a non-negative integer), ``dtype``, and one
    ``{i}_row/_col/_data`` triplet per frame.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    chunks : optional
        Frame chunks (default: sized from the memory budget).

    Returns
    -------
    xarray.DataArray
        The series ``(frame, y, x)``.

    Raises
    ------
    InputNotFoundError
        If the file does not exist.
    FormatError
        If it is not an npz frame cache, holds pickles, or its fields are inconsistent.

    Examples
    --------
    >>> s = open_npz_cache("cache.npz")  # doctest: +SKIP
    """
    p = require_file(path)
    try:
        z = np.load(p, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise FormatError(f"not a readable npz file ({' '.join(str(exc).split())})", p) from exc
    with z, reading(p, "frame-cache fields"):
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise FormatError("not an npz archive", p)
        shape = _frame_shape(_load_member(z, "shape", p), p)
        nframes = _count(_load_member(z, "nframes", p), "nframes", p)
        dtype = _dtype_from(_load_member(z, "dtype", p), p)
        if dtype.kind not in "biuf":
            raise FormatError(f"field 'dtype' is {dtype}, not a numeric image dtype", p)
        names = set(z.files)
        missing = [f"{i}_{s}" for i in range(nframes) for s in ("row", "col", "data") if f"{i}_{s}" not in names]
        if missing:
            raise FormatError(
                f"field 'nframes' is {nframes} but {len(missing)} frame field(s) are missing "
                f"(first: {missing[0]!r})", p,
            )
        meta = {}
        for key in z.files:
            if key in ("shape", "nframes", "dtype") or _FRAME_KEY.match(key):
                continue
            meta[key] = _scalar(_load_member(z, key, p))
        if nframes > 0:
            # refuse pickles early; check the first frame's triplet against the header
            first = [_load_member(z, f"0_{s}", p) for s in ("row", "col", "data")]
            _place(np.empty(shape, dtype), *first, shape, dtype, 0, p)
    return from_backend(NpzCacheBackend(p, (nframes,) + shape, dtype), meta, chunks, "frame-cache")


# --------------------------------------------------------------------------- fch5


def sniff_fch5_cache(path: Path) -> bool:
    """HDF5 file with the root attribute ``HEXRD_FRAMECACHE_VERSION``."""
    if not is_regular_file(path) or not h5py.is_hdf5(path):
        return False
    with h5py.File(path, "r") as h5:
        return "HEXRD_FRAMECACHE_VERSION" in h5.attrs


class Fch5CacheBackend(Backend):
    """Densifies frames of an fch5 frame cache using ``frame_ids`` ranges (whole frames)."""

    def __init__(self, path, group, shape, dtype):
        self.path, self.group = os.fspath(path), group
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def read(self, start, stop):
        out = np.zeros((stop - start,) + self.shape[1:], self.dtype)
        h5 = cached_h5(self.path)
        g = h5[self.group] if self.group else h5
        ids = g["frame_ids"][2 * start : 2 * stop].astype(np.int64)
        data, idx = g["data"], g["indices"]
        for k in range(stop - start):
            a, b = int(ids[2 * k]), int(ids[2 * k + 1])
            if b > a:
                rc = idx[a:b]
                _place(out[k], rc[:, 0], rc[:, 1], data[a:b, 0], self.shape[1:], self.dtype, start + k, self.path)
        return out


def _read_h5_meta(group) -> dict:
    meta = {}
    for key, obj in group.items():
        if isinstance(obj, h5py.Group):
            meta[key] = _read_h5_meta(obj)
        else:
            v = obj[()]
            if isinstance(v, np.ndarray) and v.dtype.kind == "S" and v.shape != (1,):
                v = np.char.decode(v, "utf-8")
            meta[key] = _scalar(v) if np.ndim(v) == 0 or np.shape(v) == (1,) else v
    return meta


def open_fch5_cache(path, group: str | None = None, chunks=None) -> xr.DataArray:
    """Open a legacy ``fch5`` frame cache (HDF5, version attribute 1) lazily.

    The layout is validated before any graph is built: ``shape``, ``nframes``
    (non-negative), ``dtype`` matching the stored values, ``indices`` ``(n, 2)``
    beside ``data`` ``(n, 1)``, and ``frame_ids`` ranges inside them.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.fch5`` file.
    group : str, optional
        HDF5 group holding the cache (default: the root).
    chunks : optional
        Frame chunks (default: sized from the memory budget).

    Returns
    -------
    xarray.DataArray
        The series ``(frame, y, x)``.

    Raises
    ------
    InputNotFoundError
        If the file does not exist.
    FormatError
        If it is not a version-1 frame cache or its fields are inconsistent.

    Examples
    --------
    >>> s = open_fch5_cache("cache.fch5")  # doctest: +SKIP
    """
    p = require_file(path)
    with open_h5file(p) as h5, reading(p, "frame-cache fields"):
        if group and not isinstance(h5.get(group), h5py.Group):
            raise FormatError(f"no group {group!r} in the file", p)
        g = h5[group] if group else h5
        version = h5.attrs.get("HEXRD_FRAMECACHE_VERSION", g.attrs.get("HEXRD_FRAMECACHE_VERSION"))
        if version is None or np.asarray(version).dtype.kind not in "iuf" or \
                int(np.asarray(version).ravel()[0]) != FCH5_VERSION:
            raise FormatError(
                f"attribute 'HEXRD_FRAMECACHE_VERSION' is {version!r}; only version {FCH5_VERSION} is supported", p
            )
        for key in ("shape", "nframes", "dtype", "data", "indices", "frame_ids"):
            if not isinstance(g.get(key), h5py.Dataset):
                raise FormatError(f"missing field {key!r}", p)
        shape = _frame_shape(g["shape"][()], p)
        nframes = _count(g["nframes"][()], "nframes", p)
        dtype = _dtype_from(g["dtype"][()], p)
        data, idx, ids = g["data"], g["indices"], g["frame_ids"]
        if data.ndim != 2 or data.shape[1] != 1 or idx.ndim != 2 or idx.shape[1] != 2 or idx.shape[0] != data.shape[0]:
            raise FormatError(
                f"fields 'data' {data.shape} and 'indices' {idx.shape} must be (n, 1) and (n, 2)", p
            )
        if idx.dtype.kind not in "iu":
            raise FormatError(f"field 'indices' has dtype {idx.dtype}, not integers", p)
        if data.dtype.kind in "fc" and dtype.kind in "biu":
            raise FormatError(f"field 'data' has dtype {data.dtype} but field 'dtype' says {dtype}", p)
        if ids.ndim != 1 or ids.shape[0] < 2 * nframes:
            raise FormatError(f"field 'frame_ids' has shape {ids.shape}, expected ({2 * nframes},)", p)
        bounds = np.asarray(ids[: 2 * nframes]).astype(np.int64).reshape(nframes, 2)
        bad = np.flatnonzero((bounds[:, 0] < 0) | (bounds[:, 1] < bounds[:, 0]) | (bounds[:, 1] > data.shape[0]))
        if bad.size:
            a, b = bounds[bad[0]]
            raise FormatError(
                f"field 'frame_ids': frame {int(bad[0])} spans [{a}, {b}), outside the {data.shape[0]} stored "
                f"pixels ({bad.size} frame(s) affected)", p,
            )
        meta = _read_h5_meta(g["metadata"]) if isinstance(g.get("metadata"), h5py.Group) else {}
    backend = Fch5CacheBackend(p, group, (nframes,) + shape, dtype)
    return from_backend(backend, meta, chunks, "frame-cache-fch5")


# --------------------------------------------------------------------------- yml


def _resolve_meta(meta: dict, base: Path, path) -> dict:
    out = {}
    for key, value in (meta or {}).items():
        m = _NUMPY_REF.match(value) if isinstance(value, str) else None
        if m:
            f = (base / m.group(1).strip()).resolve()
            if not os.path.exists(f):
                raise FormatError(f"meta {key!r}: array file {f} not found", path)
            if not is_regular_file(f):
                raise FormatError(f"meta {key!r}: array file {f} is not a regular file", path)
            try:
                value = np.load(f, allow_pickle=False)
            except ValueError as exc:
                raise FormatError(f"meta {key!r}: cannot load {f} without pickle ({exc})", path) from exc
            except (OSError, EOFError) as exc:
                raise FormatError(f"meta {key!r}: cannot read {f} ({' '.join(str(exc).split())})", path) from exc
        out[key] = value
    return out


def sniff_yml_cache(path: Path) -> bool:
    """YAML file with ``data: {file, nframes, shape}`` (deprecated frame-cache index)."""
    doc = sniff_yaml_mapping(path)
    return doc is not None and isinstance(doc.get("data"), dict) and "file" in doc["data"]


def open_yml_cache(path, chunks=None) -> xr.DataArray:
    """Read a deprecated ``.yml`` frame cache (points to a sparse npz)."""
    p = require_file(path)
    doc = load_yaml(read_text(p), p)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), dict) or "file" not in doc["data"]:
        raise FormatError("missing field 'data.file'", p)
    unknown = set(doc) - {"data", "meta"}
    if unknown:
        raise FormatError(f"unknown key(s) {sorted(unknown)}", p)
    npz = (p.parent / str(doc["data"]["file"])).resolve()
    series = open_npz_cache(npz, chunks=chunks)
    meta = dict(series_to_meta(series))
    meta.update(_resolve_meta(doc.get("meta") or {}, p.parent, p))
    return as_series(series.data).pipe(_with_meta, meta)


def _with_meta(series: xr.DataArray, meta: dict) -> xr.DataArray:
    from ..series import series_meta

    coords, attrs = series_meta(meta, series.shape[0])
    return series.assign_coords(coords).assign_attrs(attrs)


def open_frame_cache(path, chunks=None, **kw) -> xr.DataArray:
    """Open any legacy frame cache (npz, fch5 or yml), chosen by content."""
    p = require_file(path)
    if sniff_fch5_cache(p):
        return open_fch5_cache(p, chunks=chunks, **kw)
    if sniff_yml_cache(p):
        return open_yml_cache(p, chunks=chunks)
    return open_npz_cache(p, chunks=chunks)


# --------------------------------------------------------------------------- writers


def _check_writable(series, threshold, path):
    if threshold is None:
        raise ParameterError("a frame cache keeps only pixels above a threshold: pass threshold=...")
    nf, ny, nx = series.shape
    if max(ny, nx) > 65535:
        raise UnsupportedDtypeError(
            f"frame shape {(ny, nx)} exceeds the uint16 index limit (65535) of frame caches", path
        )


class _DenseFrames:
    """Counts frames with more than 10 % of their pixels kept; warns once at the end."""

    def __init__(self, npix: int):
        self.npix, self.frames = npix, []

    def add(self, i: int, n: int) -> None:
        if n > 0.1 * self.npix:
            self.frames.append((i, n / self.npix))

    def warn(self) -> None:
        if self.frames:
            i, frac = max(self.frames, key=lambda f: f[1])
            warnings.warn(f"{len(self.frames)} frame(s) have more than 10% of their pixels above the threshold "
                          f"(densest: frame {i}, {frac:.0%}); a frame cache is inefficient for dense frames",
                          stacklevel=4)


def _write_npz(series, tmp, threshold, meta):
    nf, ny, nx = series.shape
    dense = _DenseFrames(ny * nx)

    def put(zf, key, arr):
        with zf.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)

    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        put(zf, "shape", np.array([ny, nx]))
        put(zf, "nframes", np.array(nf))
        put(zf, "dtype", np.array(str(series.dtype).encode()))
        for key, value in meta.items():
            arr = np.asarray(value) if not isinstance(value, dict) else None
            if arr is None or arr.dtype == object:
                warnings.warn(f"metadata {key!r} is not a plain array; dropped from the npz", stacklevel=3)
                continue
            put(zf, key, arr)
        for start, block in iter_frame_batches(series, desc="write frame-cache"):
            for k, frame in enumerate(block):
                rows, cols, vals = sparsify(frame, threshold)
                dense.add(start + k, len(vals))
                put(zf, f"{start + k}_row", rows)
                put(zf, f"{start + k}_col", cols)
                put(zf, f"{start + k}_data", vals)
    dense.warn()


def _write_h5_meta(group, meta):
    for key, value in meta.items():
        if isinstance(value, dict):
            _write_h5_meta(group.create_group(key, track_order=False), value)  # never time-stamped
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "U":
            arr = np.char.encode(arr, "utf-8")
        if arr.dtype == object:
            warnings.warn(f"metadata {key!r} is not a plain array; dropped", stacklevel=3)
            continue
        group.create_dataset(key, data=arr.reshape(1) if arr.ndim == 0 else arr)


def _write_fch5(series, target, threshold, meta):
    """Write the fch5 layout into ``target``: a new file path, or an open ``h5py.Group``."""
    import hdf5plugin

    from ...io.hdf5_write import new_file

    nf, ny, nx = series.shape
    dense = _DenseFrames(ny * nx)
    comp = hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    h5 = target if isinstance(target, h5py.Group) else new_file(target)  # new files: no object times
    try:
        h5.attrs["HEXRD_FRAMECACHE_VERSION"] = FCH5_VERSION
        h5.create_dataset("shape", data=np.array([ny, nx]))
        # a scalar, as hexrd writes it (hexrd's reader takes len() of it)
        h5.create_dataset("nframes", data=np.int64(nf))
        h5.create_dataset("dtype", data=np.bytes_(str(series.dtype).encode("utf-8")))
        _write_h5_meta(h5.create_group("metadata", track_order=False), meta)
        data = h5.create_dataset("data", shape=(0, 1), maxshape=(None, 1), dtype=series.dtype,
                                 chunks=(65536, 1), **comp)
        idx = h5.create_dataset("indices", shape=(0, 2), maxshape=(None, 2), dtype=np.uint16,
                                chunks=(65536, 2), **comp)
        ids = np.zeros(2 * nf, dtype=np.uint64)
        m = 0
        for start, block in iter_frame_batches(series, desc="write fch5"):
            for k, frame in enumerate(block):
                i = start + k
                rows, cols, vals = sparsify(frame, threshold)
                dense.add(i, len(vals))
                n = len(vals)
                data.resize((m + n, 1))
                idx.resize((m + n, 2))
                if n:
                    data[m:] = vals[:, None]
                    idx[m:] = np.stack([rows, cols], axis=1)
                ids[2 * i], ids[2 * i + 1] = m, m + n
                m += n
        h5.create_dataset("frame_ids", data=ids)
    finally:
        if h5 is not target:
            h5.close()
    dense.warn()


def write_frame_cache(
    series, path, threshold=None, style: str = "npz", overwrite: bool = False, group: str | None = None
) -> str:
    """Write a legacy frame cache (``style`` ``"npz"`` or ``"fch5"``), streamed and atomic.

    Only pixels strictly above ``threshold`` are kept (legacy semantics). Frames
    with more than 10 % of their pixels kept trigger one warning with a count.

    Parameters
    ----------
    series : DataArray or array
        Image series ``(frame, y, x)``.
    path : str, path or h5py.Group
        Output file; or, for ``style="fch5"``, an open ``h5py.File``/``Group`` to
        write into (as hexrd allows; not atomic, the caller owns the file).
    threshold : float
        Keep only pixels strictly above this value (required).
    style : {"npz", "fch5"}
        Container.
    overwrite : bool
        Replace an existing output file.
    group : str, optional
        With an open ``h5py`` target, the name of a new group to write into.

    Returns
    -------
    str
        The output path (``file:group`` for an open HDF5 target).

    Raises
    ------
    ParameterError
        No threshold, an unknown style, or an HDF5 target with ``style="npz"``.
    UnsupportedDtypeError
        Frames larger than 65535 pixels on a side.

    Examples
    --------
    >>> write_frame_cache(np.eye(3, dtype="u2")[None], "/tmp/_doc.npz", threshold=0, overwrite=True)
    '/tmp/_doc.npz'
    """
    series = as_series(series)
    if style not in ("npz", "fch5"):
        raise ParameterError(f"unknown frame-cache style {style!r}; use 'npz' or 'fch5'")
    if isinstance(path, h5py.Group):
        name = f"{path.file.filename}:{path.name}"
        _check_writable(series, threshold, name)
        if style != "fch5":
            raise ParameterError("only style='fch5' frame caches can be written into an open HDF5 file or group")
        if group and group in path:
            raise ParameterError(f"group {group!r} already exists in {name}")
        target = path.create_group(group) if group else path
        _write_fch5(series, target, threshold, series_to_meta(series))
        return f"{path.file.filename}:{target.name}"
    if group is not None:
        raise ParameterError("group= is only for writing into an open h5py.File or Group")
    _check_writable(series, threshold, path)
    meta = series_to_meta(series)
    with atomic_output(path, overwrite) as tmp:
        if style == "npz":
            _write_npz(series, tmp, threshold, meta)
        else:
            _write_fch5(series, tmp, threshold, meta)
    return os.fspath(path)
