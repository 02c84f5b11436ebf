"""Image series as lazy ``xarray.DataArray`` objects with dims ``(frame, y, x)``.

Readers describe a file with a small picklable *backend* (path + layout, no open
handles) whose ``__getitem__`` opens the file, reads only the requested frames
and returns them; :func:`from_backend` wraps it in dask, so every task opens the
file itself and the graph runs under any scheduler.

>>> import numpy as np
>>> s = from_array(np.zeros((3, 4, 5), "u2"), meta={"omega": np.zeros((3, 2))})
>>> s.dims, s.shape, "omega" in s.coords
(('frame', 'y', 'x'), (3, 4, 5), True)
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.chunking import auto_chunks, normalize_chunks
from ..core.errors import FormatError, ParameterError, reading
from ..core.validate import check_int

__all__ = ["DIMS", "Backend", "from_backend", "from_array", "as_series", "series_meta", "nframes_of",
           "source_of", "MappedBackend", "derived"]

DIMS = ("frame", "y", "x")

# dask array name -> what its blocks come from: the reader (a Backend) or "memory" (a NumPy array)
_SOURCES: OrderedDict = OrderedDict()
_MAX_SOURCES = 256


def _remember(data: da.Array, source) -> da.Array:
    _SOURCES[data.name] = source
    _SOURCES.move_to_end(data.name)
    while len(_SOURCES) > _MAX_SOURCES:
        _SOURCES.popitem(last=False)
    return data


def source_of(data: da.Array):
    """The :class:`Backend` (or ``"memory"``) whose blocks ``data`` is, with nothing applied; else ``None``.

    Examples
    --------
    >>> source_of(from_array(np.zeros((2, 3, 4))).data)
    'memory'
    >>> source_of(from_array(np.zeros((2, 3, 4))).data + 1) is None
    True
    """
    src = _SOURCES.get(getattr(data, "name", None))
    if src is None or (src != "memory" and tuple(src.shape) != tuple(data.shape)):
        return None
    return src


class Backend:
    """Base class of lazy frame readers: ``shape``/``dtype`` plus ``read(frames)``.

    Subclasses implement :meth:`read` for a slice of frames; ``__getitem__`` then
    applies the row/column part of the key, which lets dask read any block.
    """

    path: str = ""
    shape: tuple[int, int, int]
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return 3

    def read(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def read_region(self, start: int, stop: int, rows: slice, cols: slice) -> np.ndarray:
        """Frames ``start:stop`` restricted to ``rows``/``cols`` (override if cheaper)."""
        return self.read(start, stop)[:, rows, cols]

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        fr, rows, cols = key
        if isinstance(fr, int | np.integer):
            i = int(fr) + (self.shape[0] if fr < 0 else 0)
            if not 0 <= i < self.shape[0]:
                raise IndexError(f"frame {fr} out of range for {self.shape[0]} frames")
            return self[i : i + 1, rows, cols][0]
        if not (isinstance(fr, slice) and fr.step in (None, 1)):
            idx = np.arange(self.shape[0])[fr]
            return np.stack([self[int(i), rows, cols] for i in np.atleast_1d(idx)])[
                0 if np.ndim(idx) == 0 else slice(None)
            ]
        start, stop, _ = fr.indices(self.shape[0])
        if stop <= start:
            return np.empty((0,) + self.shape[1:], self.dtype)[:, rows, cols]
        with reading(self.path, f"frames {start}:{stop}"):  # any read error names the file and frames
            out = self.read_region(start, stop, rows, cols)
        return np.asarray(out, dtype=self.dtype)

    def token(self) -> str:
        """A name that changes when the file changes."""
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        return tokenize(type(self).__name__, self.path, stamp, self.shape, str(self.dtype), vars(self))


class MappedBackend(Backend):
    """A reader followed by a per-pixel block function, ``func(block, image[rows, cols][None])``.

    What :func:`derived` records for a processed series (dark subtraction), so that
    statistics read the file themselves and apply the function in the same task.
    """

    def __init__(self, parent: Backend, func, image, dtype):
        self.parent, self.func, self.image = parent, func, np.asarray(image)
        self.path, self.shape, self.dtype = parent.path, tuple(parent.shape), np.dtype(dtype)

    def read_region(self, start, stop, rows, cols):
        return self.func(self.parent[start:stop, rows, cols], self.image[rows, cols][None])

    def token(self) -> str:
        return tokenize(type(self).__name__, self.parent.token(), self.func, self.image, self.dtype.str)


def derived(out: da.Array, data: da.Array, func, image, dtype) -> da.Array:
    """Record that ``out``'s blocks are ``func(block, image[region])`` of ``data``'s reader; return ``out``.

    Statistics of ``out`` then read the file and apply ``func`` in one task (their
    memory-bounded fast paths) instead of going through ``out``'s graph.

    Examples
    --------
    >>> class Zeros(Backend):
    ...     shape, dtype = (2, 2, 2), np.dtype("u2")
    ...     def read(self, start, stop):
    ...         return np.zeros((stop - start, 2, 2), self.dtype)
    >>> s = from_backend(Zeros()).data
    >>> out = derived(s + 1, s, np.add, np.ones((2, 2), "u2"), "u2")
    >>> source_of(out)[0:1].tolist()
    [[[1, 1], [1, 1]]]
    """
    src = source_of(data)
    if isinstance(src, Backend):
        _remember(out, MappedBackend(src, func, image, dtype))
    return out


def _frame_chunks(shape, dtype, chunks, dims=DIMS):
    if chunks is None or chunks == "auto":
        return auto_chunks(shape, dtype)
    return normalize_chunks(chunks, shape, dtype, dims)


def series_meta(meta: Mapping[str, Any] | None, nframes: int):
    """Split metadata into xarray coords (``omega``) and attrs.

    ``omega`` of shape ``(nframes, 2)`` ([start, end] per frame) becomes the
    coordinates ``omega`` (centre), ``omega_start`` and ``omega_end`` on ``frame``.
    """
    attrs = dict(meta or {})
    coords: dict[str, Any] = {"frame": np.arange(nframes)}
    omega = attrs.get("omega")
    if omega is not None:
        om = np.asarray(omega, dtype=np.float64)
        if om.shape == (nframes, 2):
            del attrs["omega"]
            coords["omega"] = ("frame", om.mean(axis=1))
            coords["omega_start"] = ("frame", om[:, 0])
            coords["omega_end"] = ("frame", om[:, 1])
        elif om.shape == (nframes,):
            del attrs["omega"]
            coords["omega"] = ("frame", om)
    return coords, attrs


def _wrap(data: da.Array, meta, name: str | None = None) -> xr.DataArray:
    if data.ndim != 3:
        raise ParameterError(f"an image series must be 3-D (frame, y, x), got shape {data.shape}")
    coords, attrs = series_meta(meta, data.shape[0])
    out = xr.DataArray(data, dims=DIMS, coords=coords, attrs=attrs)
    out.name = name  # xarray would otherwise take the dask graph name
    return out


def from_backend(backend: Backend, meta=None, chunks=None, name: str | None = None) -> xr.DataArray:
    """Wrap a :class:`Backend` as a lazy series (chunks sized from the memory budget)."""
    if backend.shape[0] == 0:
        raise FormatError("zero length image series", backend.path or None)
    cs = _frame_chunks(backend.shape, backend.dtype, chunks)
    data = da.from_array(
        backend,
        chunks=cs,
        name=f"{name or type(backend).__name__.lower()}-{backend.token()}",
        meta=np.empty((0, 0, 0), dtype=backend.dtype),
        asarray=False,
        lock=False,
    )
    return _wrap(_remember(data, backend), meta, name=name)


def from_array(data, meta: Mapping[str, Any] | None = None, chunks=None) -> xr.DataArray:
    """Series from a NumPy or dask array (a 2-D array is one frame).

    >>> from_array(np.ones((4, 5))).shape
    (1, 4, 5)
    """
    if isinstance(data, xr.DataArray):
        return as_series(data)
    if not isinstance(data, da.Array):
        data = np.asarray(data)
        if data.dtype == object:
            raise ParameterError("object arrays are not image series")
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise ParameterError(f"an image series must be 2-D or 3-D, got shape {data.shape}")
    if data.shape[0] == 0:
        raise ParameterError("zero length image series")
    if isinstance(data, da.Array):
        if chunks is not None:
            data = data.rechunk(_frame_chunks(data.shape, data.dtype, chunks))
    else:
        data = _remember(da.from_array(data, chunks=_frame_chunks(data.shape, data.dtype, chunks)), "memory")
    return _wrap(data, meta)


def as_series(obj, nframes: int = 0) -> xr.DataArray:
    """Coerce a DataArray / dask / NumPy array to a ``(frame, y, x)`` series, first ``nframes``.

    ``nframes=0`` means all frames; otherwise ``min(len, nframes)`` from the start.
    """
    if isinstance(obj, xr.DataArray):
        if obj.ndim == 2:
            obj = obj.expand_dims("frame")
        if obj.ndim != 3:
            raise ParameterError(f"an image series must be 3-D, got dims {obj.dims}")
        if obj.dims != DIMS:
            obj = obj.rename(dict(zip(obj.dims, DIMS)))
        if not isinstance(obj.data, da.Array):
            obj = obj.copy(data=_remember(da.from_array(obj.data, chunks=auto_chunks(obj.shape, obj.dtype)), "memory"))
        series = obj
    else:
        series = from_array(obj)
    if series.shape[0] == 0:
        raise ParameterError("zero length image series")
    if nframes is None:
        nframes = 0
    nframes = check_int(nframes, "nframes", min=0)
    if nframes:
        series = series.isel(frame=slice(0, int(nframes)))
    return series


def nframes_of(series: xr.DataArray) -> int:
    return int(series.shape[0])
