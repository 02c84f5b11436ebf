"""``hdf5`` adapter: dataset ``path/dataname`` of an HDF5 file (hexrd ``HDF5ImageSeriesAdapter``).

Given a file name, frames come from lazyastro's lazy hexrd-HDF5 reader
(:func:`lazyastro.frames.open_hexrd_hdf5`: uncompressed data by byte offset,
compressed data through h5py; nothing held open between reads). Given an open
``h5py.File`` (or group), frames are read through that handle.

>>> a = HDF5ImageSeriesAdapter("scan.h5", path="imageseries")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings

import h5py
import numpy as np

from ....core.errors import InputNotFoundError
from ...formats.hexrd_hdf5 import _attr_value, open_hexrd_hdf5
from ...series import Backend, from_backend
from ..errors import ImageSeriesFormatError
from . import SeriesAdapter

__all__ = ["HDF5ImageSeriesAdapter"]


class _DatasetBackend(Backend):
    """Frames of an open ``h5py.Dataset`` (2-D: one frame)."""

    def __init__(self, ds: h5py.Dataset, name: str):
        self.ds, self.path = ds, name
        self.two_d = ds.ndim == 2
        self.shape = ((1,) + ds.shape) if self.two_d else tuple(ds.shape)
        self.dtype = ds.dtype

    def read_region(self, start, stop, rows, cols):
        if self.two_d:
            return self.ds[rows, cols][None]
        return self.ds[start:stop, rows, cols]

    def read(self, start, stop):
        return self.read_region(start, stop, slice(None), slice(None))

    def token(self) -> str:
        return f"hexrd-h5handle-{id(self.ds):x}-{self.path}"


class HDF5ImageSeriesAdapter(SeriesAdapter):
    """Image series in dataset ``path/dataname`` of an HDF5 file; metadata = attributes of ``path``.

    Parameters
    ----------
    fname : str, path or h5py.File
        File name, or an open file (closed by :meth:`close` if ``close_when_finished``).
    path : str
        Group holding the dataset (required, as in hexrd).
    dataname : str
        Dataset name (default ``"images"``), 2-D (one frame) or 3-D.
    close_when_finished : bool
        Close an open file passed as ``fname`` on :meth:`close` (default True).

    Raises
    ------
    ImageSeriesFormatError
        (a ``RuntimeError``) if the dataset is not 2-D or 3-D.
    """

    format = "hdf5"

    def __init__(self, fname, **kwargs):
        self._close_when_finished = kwargs.get("close_when_finished", True)
        self._path = kwargs["path"]
        self._dataname = kwargs.pop("dataname", "images")
        self._h5 = None
        if isinstance(fname, h5py.Group):
            self._h5name = fname.file.filename
            self._h5 = fname
            self._open_handle()
        else:
            self._h5name = os.fspath(fname)
            self._open_path()

    def _check_dataset(self, h5) -> h5py.Dataset:
        where = f"{self._path}/{self._dataname}"
        ds = h5.get(where)
        if not isinstance(ds, h5py.Dataset):
            raise ImageSeriesFormatError(f"no dataset {where!r}", self._h5name)
        if ds.ndim not in (2, 3):
            raise ImageSeriesFormatError(f"Image data must be a 2-d or 3-d array; yours is {ds.ndim}", self._h5name)
        self._ndim = ds.ndim
        return ds

    def _open_path(self) -> None:
        if not os.path.exists(self._h5name):
            raise InputNotFoundError("no such file", self._h5name)
        with h5py.File(self._h5name, "r") as h5:
            self._check_dataset(h5)
        self._set_series(open_hexrd_hdf5(self._h5name, group=self._path, dataname=self._dataname))

    def _open_handle(self) -> None:
        ds = self._check_dataset(self._h5)
        meta = {k: _attr_value(v) for k, v in self._h5[self._path].attrs.items()}
        backend = _DatasetBackend(ds, self._h5name)
        self._set_series(from_backend(backend, name="hexrd-h5handle"), meta, backend)

    def close(self) -> None:
        """Drop the dataset; close an open file passed in if ``close_when_finished``."""
        h5, self._h5 = self._h5, None
        if h5 is not None and self._close_when_finished and isinstance(h5, h5py.File) and h5.id.valid:
            h5.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            warnings.warn("HDF5ImageSeries could not close h5 file", stacklevel=2)

    def __getstate__(self):
        state = self.__dict__.copy()
        if state.get("_h5") is not None:
            state["_h5"] = None
            state.pop("_series", None)
            state.pop("_backend", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_series" not in state:
            meta = state.get("_meta")
            self._open_path()
            if meta is not None:
                self._meta = meta

    @property
    def dtype(self) -> np.dtype:
        return self._series.dtype
