"""Bridges between hexrd-style image series and lazyastro's lazy ``DataArray`` series.

* :func:`to_dataarray` turns anything (a facade series, a foreign object with
  hexrd's protocol, an array) into a lazy ``(frame, y, x)`` DataArray, so every
  lazyastro statistic and writer runs on it;
* :class:`SeriesAdapter` is the other direction: a lazyastro series seen through
  hexrd's protocol (``len``, ``ims[i]``, ``shape``, ``dtype``, ``metadata``,
  ``get_region``), reading only the requested frame or region.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import dask.array as da
import numpy as np
import xarray as xr

from ..series import Backend, as_series, from_backend, series_meta

__all__ = ["to_dataarray", "ProtocolBackend", "read_now", "with_meta", "is_local_only"]

_IDS = itertools.count()


def read_now(x) -> np.ndarray:
    """Compute a small dask array (one frame or region) in this thread."""
    return np.asarray(x.compute(scheduler="sync"))


def with_meta(series: xr.DataArray, meta) -> xr.DataArray:
    """``series`` with attrs and ``omega`` coords taken from the hexrd metadata dict ``meta``."""
    if not isinstance(meta, Mapping):
        meta = {}
    coords, attrs = series_meta(dict(meta), series.shape[0])
    base = xr.DataArray(series.data, dims=series.dims, coords={"frame": coords.pop("frame")}, name=series.name)
    return base.assign_coords(coords).assign_attrs(attrs)


class ProtocolBackend(Backend):
    """Lazy frames of any object with hexrd's protocol (``len``, ``ims[i]``, ``shape``, ``dtype``).

    Each dask task calls ``ims[i]`` for the frames of its block, so statistics and
    writers stream any series (a ``ProcessedImageSeries`` with custom ops, a
    ``function`` adapter, a user's own class) within the memory budget. The
    object is not pickled unless a process/cluster scheduler is used.
    """

    def __init__(self, ims):
        self.ims = ims
        self.shape = (len(ims),) + tuple(int(n) for n in ims.shape)
        self.dtype = np.dtype(ims.dtype)
        self.path = ""
        self._id = next(_IDS)

    def read(self, start, stop):
        out = np.empty((stop - start,) + self.shape[1:], self.dtype)
        for k, i in enumerate(range(start, stop)):
            out[k] = np.asarray(self.ims[i])
        return out

    def token(self) -> str:
        return f"hexrd-protocol-{id(self.ims):x}-{self._id}"


def is_local_only(series: xr.DataArray) -> bool:
    """True if the graph reads through a :class:`ProtocolBackend` (needs an in-process scheduler)."""
    return any(str(k[0] if isinstance(k, tuple) else k).startswith("hexrd-protocol")
               for k in series.data.__dask_graph__().keys())


def to_dataarray(ims, nframes: int = 0) -> xr.DataArray:
    """A lazy ``(frame, y, x)`` DataArray for ``ims``, with its metadata as attrs / ``omega`` coords.

    Parameters
    ----------
    ims : ImageSeries, adapter, DataArray, dask or NumPy array, or any object with hexrd's protocol
        The series.
    nframes : int
        0 for all frames, else the first ``min(len, nframes)``.

    Returns
    -------
    DataArray
        Lazy series; frames are read only when computed.

    Examples
    --------
    >>> from lazyastro.frames import hexrd
    >>> ims = hexrd.open(None, "array", data=np.zeros((3, 2, 2)), meta={"k": 1})
    >>> s = to_dataarray(ims)
    >>> s.dims, s.shape, s.attrs["k"]
    (('frame', 'y', 'x'), (3, 2, 2), 1)
    """
    from .baseclass import ImageSeries
    from .load import ImageSeriesAdapter

    if isinstance(ims, ImageSeries | ImageSeriesAdapter):
        series = ims.to_xarray()
    elif isinstance(ims, xr.DataArray | np.ndarray | da.Array):
        series = as_series(ims)
    else:
        meta = getattr(ims, "metadata", None)
        series = with_meta(from_backend(ProtocolBackend(ims), name="hexrd-protocol"), meta)
    return as_series(series, nframes)
