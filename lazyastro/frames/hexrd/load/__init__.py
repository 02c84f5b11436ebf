"""Adapters: where the frames of an image series come from (hexrd ``imageseries.load``).

Every subclass of :class:`ImageSeriesAdapter` with a ``format`` name is
registered in :class:`Registry` and opened by ``hexrd.open(fname, format, **kw)``.
:class:`SeriesAdapter` shows any lazyastro series through hexrd's protocol; the
``hdf5`` and ``frame-cache`` adapters are built on it, so their frames come from
lazyastro's lazy readers.

>>> sorted(k for k in Registry.adapter_registry if k)[:4]
['array', 'frame-cache', 'function', 'hdf5']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ...formats._common import series_to_meta
from ...series import Backend
from .._bridge import read_now, with_meta
from ..imageseriesabc import ImageSeriesABC, RegionType
from .registry import Registry

__all__ = ["ImageSeriesAdapter", "SeriesAdapter", "Registry", "RegionType"]


class ImageSeriesAdapter(ImageSeriesABC):
    """Base class of adapters; subclasses with a ``format`` name register themselves."""

    format: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Registry.register(cls)

    @property
    def dtype(self):
        return getattr(self, "_dtype", None)

    @dtype.setter
    def dtype(self, value):
        self._dtype = value

    def get_region(self, frame_idx: int, region: RegionType) -> np.ndarray:
        """Rows ``r0:r1`` and columns ``c0:c1`` of a frame, ``region = ((r0, r1), (c0, c1))``."""
        (r0, r1), (c0, c1) = region
        return self[frame_idx][r0:r1, c0:c1]

    @property
    def metadata(self) -> dict:
        return {}

    @property
    def shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def option_values(self) -> dict:
        raise NotImplementedError

    def set_option(self, key: str, value: Any):
        raise NotImplementedError

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def to_xarray(self) -> xr.DataArray:
        """The frames as a lazy lazyastro DataArray (each task calls ``self[i]``)."""
        from ...series import from_backend
        from .._bridge import ProtocolBackend

        return with_meta(from_backend(ProtocolBackend(self), name="hexrd-protocol"), self.metadata)


def _is_int(k) -> bool:
    return isinstance(k, int | np.integer) and not isinstance(k, bool)


class SeriesAdapter(ImageSeriesAdapter):
    """A lazyastro series (``DataArray`` ``(frame, y, x)``) through hexrd's protocol.

    ``ims[i]`` and ``get_region`` read only that frame / region (a one-task
    dask computation in the calling thread); ``metadata`` is a mutable dict,
    initialised from the series' attrs and ``omega`` coordinates, and is what
    writers and :meth:`to_xarray` use.

    ``open(fname, "lazyastro", **kw)`` opens anything ``lazyastro.frames.open``
    reads (FITS cubes, Zarr, directories of FITS files, hexrd formats...).

    Parameters
    ----------
    fname : str, path or DataArray
        Passed to ``lazyastro.frames.open`` (a DataArray is used as it is).
    **kwargs
        Options of ``lazyastro.frames.open`` (``format=`` picks its reader).
    """

    format = "lazyastro"

    def __init__(self, fname, **kwargs):
        if isinstance(fname, xr.DataArray):
            series = fname
        else:
            from ...formats import open_series

            series = open_series(fname, kwargs.pop("format", None), **kwargs)
        self._set_series(series)

    def _set_series(self, series: xr.DataArray, meta: dict | None = None, backend: Backend | None = None) -> None:
        self._series = series
        self._meta = dict(series_to_meta(series)) if meta is None else meta
        if backend is None:  # the reader behind a reader's array: frames are then read without dask
            from ... import series as _series_module

            source_of = getattr(_series_module, "source_of", None)
            src = source_of(series.data) if source_of is not None else None
            backend = src if isinstance(src, Backend) else None
        self._backend = backend

    @property
    def dtype(self) -> np.dtype:
        return self._series.dtype

    @dtype.setter
    def dtype(self, value):
        self._series = self._series.astype(value)
        self._backend = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self._series.shape[1:])

    @property
    def metadata(self) -> dict:
        return self._meta

    def __len__(self) -> int:
        return int(self._series.shape[0])

    def _check(self, i) -> int:
        n = len(self)
        j = int(i) + (n if i < 0 else 0)
        if not 0 <= j < n:
            raise IndexError(f"frame {i} is out of range for an image series of {n} frames")
        return j

    def _read(self, key: tuple) -> np.ndarray:
        if self._backend is not None:
            return np.asarray(self._backend[key])
        return read_now(self._series.data[key])

    def __getitem__(self, key):
        if _is_int(key):
            return self._read((self._check(key),))
        if isinstance(key, tuple) and key and _is_int(key[0]):
            i, rest = self._check(key[0]), key[1:]
            if all(isinstance(r, slice) or _is_int(r) for r in rest):
                return self._read((i,) + tuple(rest))
            return self._read((i,))[tuple(rest)]
        raise TypeError(f"image series index must be a frame number or (frame, rows, cols), got {key!r}")

    def get_region(self, frame_idx: int, region: RegionType) -> np.ndarray:
        (r0, r1), (c0, c1) = region
        return self._read((self._check(frame_idx), slice(r0, r1), slice(c0, c1)))

    def to_xarray(self) -> xr.DataArray:
        """The lazy series, with attrs / ``omega`` from the current :attr:`metadata`."""
        return with_meta(self._series, self._meta)

    def close(self) -> None:
        """Nothing to release: lazyastro readers open their files per task."""


from . import array, framecache, function, hdf5, imagefiles, metadata, rawimage  # noqa: E402, F401
