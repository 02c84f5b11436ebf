"""A drop-in for hexrd's ``imageseries`` package, built on lazyastro.

Change one import and keep the script::

    # from hexrd.core import imageseries          (or: from hexrd import imageseries)
    from lazyastro.frames import hexrd as imageseries

    ims = imageseries.open("scan.h5", "hdf5", path="imageseries")
    dark = imageseries.stats.median(ims)
    pims = imageseries.process.ProcessedImageSeries(ims, [("dark", dark), ("flip", "h")])
    oms = imageseries.omega.OmegaImageSeries(pims)
    imageseries.write(pims, "cache.npz", "frame-cache", threshold=20)

What is the same: ``open(filename, format, **kwargs)`` with hexrd's format names
and keywords (``array``, ``hdf5`` with ``path``/``dataname``, ``frame-cache``
with ``style``, ``image-files``, ``raw-image``, ``function``), ``ImageSeries``
(``len``, ``ims[i]``, ``ims[i, rows, cols]``, ``shape`` = frame shape, ``dtype``,
``metadata``, ``get_region``, ``close``), ``write(ims, fname, fmt, **kwargs)``,
``stats`` (with the ``*_iter`` progress generators), ``process``, ``omega``,
``load``/``save``, hexrd's exceptions (``RuntimeError`` for an empty series,
``OmegaSeriesError``...; each also a :class:`~lazyastro.core.errors.LazyAstroError`).

What lazyastro adds: frames are read lazily by lazyastro's readers (only the
frame or region asked for); statistics are exact, memory-bounded dask graphs
(``average`` accumulates in float64 unless ``legacy=True``; ``percentile``
accepts raw arrays); writers stream and are atomic; ``ims.to_xarray()`` gives
the lazy ``(frame, y, x)`` DataArray for everything in :mod:`lazyastro.frames`;
``open(path, "lazyastro")`` (or ``format=None``) opens anything lazyastro reads.

>>> import numpy as np
>>> from lazyastro.frames import hexrd as imageseries
>>> ims = imageseries.open(None, "array", data=np.arange(24, dtype="u2").reshape(4, 2, 3))
>>> len(ims), ims.shape, ims.dtype, imageseries.stats.median(ims).tolist()
(4, (2, 3), dtype('uint16'), [[9.0, 10.0, 11.0], [12.0, 13.0, 14.0]])
"""

from __future__ import annotations

from . import imageseriesabc, load, omega, process, save, stats
from ._bridge import to_dataarray
from .baseclass import ImageSeries
from .errors import (
    EmptyImageSeriesError,
    FrameCacheVersionError,
    ImageSeriesFormatError,
    OmegaSeriesError,
    UnknownFormatError,
    UnknownStyleError,
)
from .load import Registry

__all__ = [
    "open", "write", "ImageSeries", "to_dataarray", "stats", "process", "omega", "load", "save",
    "imageseriesabc", "OmegaSeriesError", "ImageSeriesFormatError", "EmptyImageSeriesError",
    "UnknownFormatError", "UnknownStyleError", "FrameCacheVersionError",
]


def open(filename, format: str | None = None, **kwargs) -> ImageSeries:  # noqa: A001, A002
    """Open an image series with the adapter registered as ``format``.

    Parameters
    ----------
    filename : str, path, h5py.File, or None
        The file (``None`` for ``array`` and ``function``).
    format : str, optional
        Adapter name: ``array``, ``hdf5``, ``frame-cache``, ``image-files``,
        ``raw-image``, ``function``, or ``lazyastro`` (any lazyastro series
        format, detected from the content; also what ``None`` means).
    **kwargs
        Adapter options, with hexrd's names (``data``, ``meta``, ``path``,
        ``dataname``, ``style``, ``func``, ``num_frames``...).

    Returns
    -------
    ImageSeries
        The series.

    Raises
    ------
    UnknownFormatError
        (a ``KeyError``) for an unknown format.
    EmptyImageSeriesError
        (a ``RuntimeError``) for a series with no frames.

    Examples
    --------
    >>> import numpy as np
    >>> ims = open(None, "function", func=lambda i: np.full((2, 2), i), num_frames=3)
    >>> int(ims[2].sum())
    8
    """
    name = "lazyastro" if format is None else format
    try:
        adapter_cls = Registry.adapter_registry[name]
    except KeyError:
        known = ", ".join(sorted(k for k in Registry.adapter_registry if k))
        raise UnknownFormatError(f"unknown image-series format {format!r}; known: {known}") from None
    ims = ImageSeries(adapter_cls(filename, **kwargs))
    if len(ims) == 0:
        raise EmptyImageSeriesError("zero length imageseries", None if filename is None else str(filename))
    return ims


write = save.write
