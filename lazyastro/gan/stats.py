"""Lazy GAN image statistics over a DataArray ``(image, y, x)`` (kernels in :mod:`.kernels`).

Each public function accepts a single in-memory image (computed at once, numpy or
CuPy) or a DataArray ``(image, y, x)`` backed by dask; the latter gets a lazy
result, one task per block of whole images (``map_blocks`` with ``meta`` from the
input, so CuPy-backed arrays stay on the GPU).

>>> import numpy as np, xarray as xr, dask.array as da
>>> imgs = xr.DataArray(da.ones((4, 8, 8), chunks=(2, 8, 8)), dims=("image", "y", "x"))
>>> power_spectrum(imgs, mode="legacy").dims
('image', 'k')
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.backend import meta_like
from ..core.errors import ParameterError
from . import kernels as K

__all__ = ["power_spectrum", "minkowski", "intensity_histogram", "as_images", "HIST_TAIL",
           "DEFAULT_THRESHOLDS"]

#: names of the extra counts of :func:`intensity_histogram`
HIST_TAIL = ("nonpositive", "nan", "below", "above", "total")
#: the legacy Minkowski thresholds (applied to log-normalised images)
DEFAULT_THRESHOLDS = np.linspace(-1.0, 1.0, 100)


def _is_lazy(x: Any) -> bool:
    return hasattr(x, "dims") and hasattr(x, "variable")


def as_images(images: Any):
    """A DataArray ``(image, y, x)`` in blocks of whole images (any 3-D DataArray or dask array).

    Parameters
    ----------
    images : xarray.DataArray or dask.array.Array
        Three dimensions; the first is the image axis.

    Returns
    -------
    xarray.DataArray
        Dims renamed to ``(image, y, x)``, chunked only along ``image``.

    Raises
    ------
    ParameterError
        If the input is not 3-D or has no images.

    Examples
    --------
    >>> import dask.array as da
    >>> as_images(da.zeros((3, 4, 4), chunks=2)).chunks
    ((2, 1), (4,), (4,))
    """
    import dask.array as da
    import xarray as xr

    if not _is_lazy(images):
        data = images if isinstance(images, da.Array) else da.asarray(images)
        images = xr.DataArray(data, dims=("image", "y", "x"))
    if images.ndim != 3:
        raise ParameterError(f"an image set must be 3-D (image, y, x), got dims {images.dims}")
    if images.shape[0] == 0:
        raise ParameterError("the image set is empty")
    images = images.rename(dict(zip(images.dims, ("image", "y", "x"))))
    data = images.data
    if not isinstance(data, da.Array):
        data = da.asarray(data)
    if data.dtype.kind not in "biuf":
        raise ParameterError(f"images must be real-valued, got dtype {data.dtype}")
    if len(data.chunks[1]) > 1 or len(data.chunks[2]) > 1:
        data = data.rechunk({1: -1, 2: -1})
    return images.copy(data=data)


def _image_coord(images) -> dict:
    return {"image": images["image"]} if "image" in images.coords else {}


def power_spectrum(image: Any, *, mode: str = "default") -> Any:
    """Azimuthally averaged power spectrum: of one 2-D image, or lazily of every image of a set.

    Parameters
    ----------
    image : array (y, x) or xarray.DataArray (image, y, x)
        One image (numpy/CuPy) or an image set.
    mode : {"default", "legacy"}
        See :func:`lazyastro.gan.kernels.power_spectrum`.

    Returns
    -------
    array (R,) or xarray.DataArray (image, k)
        The spectrum; lazy for a DataArray (coordinate ``k``).

    Raises
    ------
    ParameterError
        Bad mode, or non-square images in legacy mode.

    Examples
    --------
    >>> import numpy as np
    >>> power_spectrum(np.ones((8, 8)), mode="legacy")[0]
    np.float64(1024.0)
    """
    K._check_choice(mode, K.PSD_MODES, "mode")
    if not _is_lazy(image) and not hasattr(image, "dask"):
        return K.power_spectrum(image, mode=mode)
    import xarray as xr

    images = as_images(image)
    h, w = images.shape[1:]
    if mode == "legacy" and h != w:
        raise ParameterError(f"legacy power spectrum needs square images, got {h}x{w}")
    k = K.wavenumbers((h, w), mode=mode)
    data = images.data
    out = data.map_blocks(K.power_spectrum_block, mode=mode, drop_axis=2,
                          chunks=(data.chunks[0], (len(k),)), dtype=np.float64,
                          meta=meta_like(data, ndim=2, dtype=np.float64))
    return xr.DataArray(out, dims=("image", "k"), coords={**_image_coord(images), "k": k},
                        name="power_spectrum", attrs={"mode": mode, "units": "|FFT|^2" if mode == "legacy"
                                                      else "|FFT|^2 / (H W)"})


def minkowski(image: Any, thresholds: Any = DEFAULT_THRESHOLDS, *, convention: str = "default") -> Any:
    """Minkowski functionals F, U, chi at every threshold: of one image, or lazily of a set.

    Parameters
    ----------
    image : array (y, x) or xarray.DataArray (image, y, x)
        One image (numpy/CuPy) or an image set (values compared with the thresholds as they are;
        the statistics cache log-normalises first).
    thresholds : array-like (n,), optional
        Default: the legacy 100 values ``linspace(-1, 1, 100)``.
    convention : {"default", "legacy"}
        Saddle rule, see :func:`lazyastro.gan.kernels.minkowski`.

    Returns
    -------
    array (3, n) or xarray.DataArray (image, functional, threshold)
        ``functional`` is ``["F", "U", "chi"]``; lazy for a DataArray.

    Examples
    --------
    >>> import numpy as np
    >>> minkowski(np.eye(3), [0.5]).shape
    (3, 1)
    """
    K._check_choice(convention, K.CONVENTIONS, "convention")
    thr = np.asarray(thresholds, dtype=np.float64).ravel()
    if not _is_lazy(image) and not hasattr(image, "dask"):
        return K.minkowski(image, thr, convention=convention)
    import xarray as xr

    images = as_images(image)
    data = images.data
    out = data.map_blocks(K.minkowski_block, thr, convention=convention,
                          chunks=(data.chunks[0], (3,), (len(thr),)), dtype=np.float64,
                          meta=meta_like(data, ndim=3, dtype=np.float64))
    return xr.DataArray(out, dims=("image", "functional", "threshold"),
                        coords={**_image_coord(images), "functional": ["F", "U", "chi"], "threshold": thr},
                        name="minkowski", attrs={"convention": convention,
                                                 "units": "F: pixel^2, U: pixel, chi: count"})


def _hist_block(block, bins, range_, log):
    return K.histogram_block(block, bins=bins, range=range_, log=log)[None, :]


def intensity_histogram(images: Any, *, bins: int = 100, range: tuple[float, float] = (-5.0, 10.0),
                        log: bool = True) -> Any:
    """Log10 pixel histogram: of an array at once, or lazily per batch (block) of an image set.

    Parameters
    ----------
    images : array or xarray.DataArray (image, y, x)
        Pixels (any shape in memory) or an image set; each block of whole images is a batch.
    bins, range, log
        As :func:`lazyastro.gan.kernels.intensity_histogram` (legacy defaults).

    Returns
    -------
    Histogram or xarray.Dataset
        In memory a :class:`~lazyastro.gan.kernels.Histogram`; for a DataArray a lazy Dataset
        with ``counts (batch, bin)`` and ``dropped (batch, reason)`` (reasons ``nonpositive``,
        ``nan``, ``below``, ``above``, ``total``), coordinate ``edges (edge)``.

    Examples
    --------
    >>> import numpy as np
    >>> int(intensity_histogram(np.ones((2, 2))).counts.sum())
    4
    """
    if not _is_lazy(images) and not hasattr(images, "dask"):
        return K.intensity_histogram(images, bins=bins, range=range, log=log)
    import xarray as xr

    probe = K.intensity_histogram(np.ones(1), bins=bins, range=range, log=log)  # validates the options
    nb = len(probe.edges) - 1
    imgs = as_images(images)
    data = imgs.data
    out = data.map_blocks(_hist_block, nb, (float(probe.edges[0]), float(probe.edges[-1])), bool(log),
                          drop_axis=2, chunks=((1,) * len(data.chunks[0]), (nb + len(HIST_TAIL),)),
                          dtype=np.int64, meta=meta_like(data, ndim=2, dtype=np.int64))
    return xr.Dataset(
        {"counts": (("batch", "bin"), out[:, :nb]), "dropped": (("batch", "reason"), out[:, nb:])},
        coords={"reason": list(HIST_TAIL), "edges": ("edge", probe.edges),
                "bin_centre": ("bin", 0.5 * (probe.edges[1:] + probe.edges[:-1]))},
        attrs={"log10": int(bool(log))},
    )
