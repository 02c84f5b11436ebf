"""hexrd's ``ImageSeries``: a sequence of frames wrapping an adapter.

>>> from lazyastro.frames import hexrd
>>> ims = hexrd.open(None, "array", data=np.arange(12).reshape(3, 2, 2))
>>> len(ims), ims.shape, ims[1].tolist()
(3, (2, 2), [[4, 5], [6, 7]])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from .imageseriesabc import ImageSeriesABC, RegionType

__all__ = ["ImageSeries"]


class ImageSeries(ImageSeriesABC):
    """Collection of images: ``len``, ``ims[i]``, ``shape`` (frame shape), ``dtype``, ``metadata``.

    Parameters
    ----------
    adapter : ImageSeriesAdapter or any object with hexrd's protocol
        Where the frames come from.

    Notes
    -----
    :meth:`to_xarray` gives the lazy lazyastro ``DataArray`` of the same frames,
    for dask-parallel statistics (``lazyastro.frames.median``...) and writers.
    """

    def __init__(self, adapter):
        self._adapter = adapter

    def __getitem__(self, key):
        return self._adapter[key]

    def __len__(self) -> int:
        return len(self._adapter)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def dtype(self) -> np.dtype:
        return self._adapter.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self._adapter.shape

    @property
    def metadata(self) -> dict:
        return self._adapter.metadata

    def get_region(self, frame_idx: int, region: RegionType) -> np.ndarray:
        """Rows ``region[0][0]:region[0][1]``, columns ``region[1][0]:region[1][1]`` of frame ``frame_idx``."""
        get = getattr(self._adapter, "get_region", None)
        if get is None:
            (r0, r1), (c0, c1) = region
            return self._adapter[frame_idx][r0:r1, c0:c1]
        return get(frame_idx, region)

    def set_option(self, key: str, value: Any) -> None:
        self._adapter.set_option(key, value)

    def option_values(self) -> dict:
        if not hasattr(self._adapter, "option_values"):
            return {}
        return self._adapter.option_values()

    def close(self) -> None:
        """Release the adapter's file handles (if it holds any)."""
        close = getattr(self._adapter, "close", None)
        if callable(close):
            close()

    def to_xarray(self, nframes: int = 0) -> xr.DataArray:
        """The frames as a lazy lazyastro ``(frame, y, x)`` DataArray (metadata in attrs / coords).

        Parameters
        ----------
        nframes : int
            0 for all frames, else the first ``nframes``.

        Returns
        -------
        DataArray
            Lazy series.
        """
        from ._bridge import to_dataarray

        return to_dataarray(self._adapter, nframes)
