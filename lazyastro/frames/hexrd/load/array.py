"""``array`` adapter: frames held in a NumPy array (hexrd ``ArrayImageSeriesAdapter``).

>>> a = ArrayImageSeriesAdapter(None, data=np.ones((4, 5)))
>>> len(a), a.shape
(1, (4, 5))
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...series import from_array
from .._bridge import with_meta
from ..errors import ImageSeriesFormatError
from . import ImageSeriesAdapter

__all__ = ["ArrayImageSeriesAdapter"]


class ArrayImageSeriesAdapter(ImageSeriesAdapter):
    """Frames of a 2-D (one frame) or 3-D ``(nframes, rows, cols)`` array (copied at creation).

    Parameters
    ----------
    fname : None
        Unused (hexrd's signature).
    data : array_like
        The frames.
    meta : dict, optional
        Metadata.

    Raises
    ------
    ImageSeriesFormatError
        (a ``RuntimeError``) if ``data`` has more than 3 dimensions.
    """

    format = "array"

    def __init__(self, fname, **kwargs):
        data = np.array(kwargs["data"])
        if data.ndim > 3:
            raise ImageSeriesFormatError(f"input array must be 2-d or 3-d; you provided ndim={data.ndim}")
        self._data = data.reshape((1,) * (3 - data.ndim) + data.shape)
        self._meta = kwargs.pop("meta", None)
        if self._meta is None:
            self._meta = {}

    @property
    def metadata(self) -> dict:
        return self._meta

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._data.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @dtype.setter
    def dtype(self, value):
        self._data = self._data.astype(value)

    def __getitem__(self, key):
        return self._data[key].copy()

    def __len__(self) -> int:
        return self._data.shape[0]

    def to_xarray(self) -> xr.DataArray:
        return with_meta(from_array(self._data), self._meta)
