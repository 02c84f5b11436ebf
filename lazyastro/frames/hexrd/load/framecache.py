"""``frame-cache`` adapter: sparse frame caches (hexrd ``FrameCacheImageSeriesAdapter``).

Styles ``npz`` (default), ``fch5`` (HDF5) and the deprecated ``yml``/``yaml``;
frames come from lazyastro's lazy readers
(:func:`lazyastro.frames.open_npz_cache`, :func:`~lazyastro.frames.open_fch5_cache`,
:func:`~lazyastro.frames.open_yml_cache`), which never unpickle. An ``fch5``
cache can also be read from an open ``h5py`` file or group (``path=`` names a
group inside it).

>>> a = FrameCacheImageSeriesAdapter("cache.npz")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ...formats.framecache import (
    FCH5_VERSION,
    _read_h5_meta,
    open_fch5_cache,
    open_npz_cache,
    open_yml_cache,
    sniff_fch5_cache,
    sniff_yml_cache,
)
from ...kernels import densify
from ...series import Backend, from_backend
from ..errors import FrameCacheVersionError, UnknownStyleError
from . import SeriesAdapter

__all__ = ["FrameCacheImageSeriesAdapter"]

_STYLES = ("npz", "fch5", "yml", "yaml", "test")


def _check_version(group, name) -> None:
    if "HEXRD_FRAMECACHE_VERSION" not in group.attrs:
        raise FrameCacheVersionError("Unsupported file. HEXRD_FRAMECACHE_VERSION is missing!", name)
    version = np.asarray(group.attrs["HEXRD_FRAMECACHE_VERSION"]).ravel()
    if version.size != 1 or int(version[0]) != FCH5_VERSION:
        raise FrameCacheVersionError(f"Framecache version is not supported: {version.tolist()}", name)


def _detect_style(fname) -> str:
    if isinstance(fname, h5py.Group):
        return "fch5"
    p = Path(os.fspath(fname))
    try:
        if sniff_fch5_cache(p):
            return "fch5"
        if sniff_yml_cache(p):
            return "yml"
    except OSError:
        pass
    return "npz"


class _Fch5GroupBackend(Backend):
    """Frames of an fch5 cache in an open ``h5py`` group."""

    def __init__(self, group: h5py.Group, name: str):
        self.group, self.path = group, name
        shape = tuple(int(s) for s in np.asarray(group["shape"][()]).ravel())
        nframes = int(np.asarray(group["nframes"][()]).ravel()[0])
        dt = group["dtype"][()]
        self.shape = (nframes,) + shape
        self.dtype = np.dtype(dt.decode() if isinstance(dt, bytes) else str(dt))

    def read(self, start, stop):
        out = np.zeros((stop - start,) + self.shape[1:], self.dtype)
        ids = self.group["frame_ids"][2 * start : 2 * stop].astype(np.int64)
        data, idx = self.group["data"], self.group["indices"]
        for k in range(stop - start):
            a, b = int(ids[2 * k]), int(ids[2 * k + 1])
            if b > a:
                rc = idx[a:b]
                out[k] = densify(self.shape[1:], self.dtype, rc[:, 0], rc[:, 1], data[a:b, 0])
        return out

    def token(self) -> str:
        return f"hexrd-fch5group-{id(self.group):x}-{self.path}"


class FrameCacheImageSeriesAdapter(SeriesAdapter):
    """Sparse frame cache (pixels above a threshold), read lazily.

    Parameters
    ----------
    fname : str, path, or h5py.File / h5py.Group (``fch5`` only)
        The cache (for ``yml``: the YAML index).
    style : {"npz", "fch5", "yml", "yaml", "test"}, optional
        Container (case-insensitive); by default ``npz`` unless the content is an
        fch5 (HDF5) or yml cache.
    path : str, optional
        With an open ``h5py`` object: the group holding the cache.
    max_workers : int, optional
        Accepted for compatibility (reads are parallel through dask).

    Raises
    ------
    UnknownStyleError
        (a ``TypeError``) for an unknown style.
    FrameCacheVersionError
        (a ``NotImplementedError``) for an fch5 file without version 1.
    """

    format = "frame-cache"

    def __init__(self, fname, style: str | None = None, **kwargs):
        self._fname = fname
        self._path = kwargs.get("path")
        self._max_workers = kwargs.get("max_workers", os.cpu_count())
        if style is None:  # hexrd's default is "npz"; an fch5 / yml file is recognised by its content
            style = _detect_style(fname)
        self._style = str(style).lower()
        if self._style not in _STYLES:
            raise UnknownStyleError(
                f"Unknown style format for loading data: {style}. Known style formats: 'npz', 'fch5', 'yml', "
                "'yaml', 'test'"
            )
        self._from_yml = self._style in ("yml", "yaml", "test")
        if isinstance(fname, h5py.Group):
            if self._style != "fch5":
                raise UnknownStyleError(f"an open HDF5 object can only hold style 'fch5', not {style!r}")
            group = fname[self._path] if self._path else fname
            name = f"{fname.file.filename}:{group.name}"
            _check_version(group, name)
            meta = _read_h5_meta(group["metadata"]) if "metadata" in group else {}
            backend = _Fch5GroupBackend(group, name)
            self._set_series(from_backend(backend, name="hexrd-fch5group"), meta, backend)
        elif self._from_yml:
            self._set_series(open_yml_cache(fname))
        elif self._style == "fch5":
            with h5py.File(fname, "r") as h5:
                g = h5[self._path] if self._path else h5
                _check_version(g, fname)
            self._set_series(open_fch5_cache(fname, group=self._path))
        else:
            self._set_series(open_npz_cache(fname))

    def load_metadata(self, indict: dict) -> dict:
        """Obsolete ``'++np.array'`` metadata convention (see :func:`~.metadata.yamlmeta`)."""
        from .metadata import yamlmeta

        return yamlmeta(indict)

    def __getstate__(self):
        state = self.__dict__.copy()
        if isinstance(self._fname, h5py.Group):
            raise TypeError("a frame cache read from an open h5py object cannot be pickled; open it by file name")
        return state
