"""Convolve every stamp of a model cube with a PSF (FFT, batched over many stamps per task).

For a B x B stamp and a (Py, Px) PSF the full linear convolution has (B + Py - 1, B + Px - 1)
pixels; it is computed with real FFTs on a ``next_fast_len`` padded size for a whole block of
stamps at once, and the B x B window starting at row ``Py // 2`` and column ``Px // 2`` is kept:
the PSF pixel ``(Py // 2, Px // 2)`` is its centre, so a PSF peaked there keeps the model centre
for odd *and* even sizes. For odd sizes this is exactly ``scipy.signal.fftconvolve(model, psf,
mode="same")``. ``legacy=True`` keeps the window starting at ``(P - 1) // 2`` instead (what
``fftconvolve(..., "same")`` does): identical for odd sizes, and for an even size along an axis
the result is shifted by +1 pixel along that axis (towards larger row/column index) -- the
legacy tool's one-pixel shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import ParameterError

__all__ = ["convolve", "clean_psf", "convolve_stamps"]

#: working memory of one FFT batch in :func:`convolve_stamps`
_BATCH_BYTES = 16 * 2**20


def clean_psf(psf: Any) -> np.ndarray:
    """Validate a PSF and clean it like the legacy ``get_psf``: negatives to 0, sum 1.

    Parameters
    ----------
    psf : array_like
        2-D PSF image.

    Returns
    -------
    numpy.ndarray
        float64, >= 0, sum 1.

    Raises
    ------
    ParameterError
        Not 2-D, empty, not finite, or no positive pixel.

    Examples
    --------
    >>> clean_psf([[0.0, -1.0], [1.0, 3.0]]).tolist()
    [[0.0, 0.0], [0.25, 0.75]]
    """
    if hasattr(psf, "compute") and hasattr(psf, "dask"):
        psf = psf.compute()
    if hasattr(psf, "get"):  # CuPy
        psf = psf.get()
    try:
        arr = np.array(psf, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"psf must be a 2-D array of numbers, got {type(psf).__name__}") from None
    if arr.ndim != 2 or 0 in arr.shape:
        raise ParameterError(f"psf must be a non-empty 2-D image, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"psf has {int((~np.isfinite(arr)).sum())} non-finite pixels")
    arr = np.clip(arr, 0.0, None)
    total = arr.sum()
    if not total > 0:
        raise ParameterError(f"psf of shape {arr.shape} has no positive pixel")
    return arr / total


def _fft_shape(b: tuple[int, int], p: tuple[int, int]) -> tuple[int, int]:
    from scipy.fft import next_fast_len

    return tuple(next_fast_len(bi + pi - 1, real=True) for bi, pi in zip(b, p))


def convolve_stamps(stamps, psf, *, legacy: bool = False):
    """Kernel: convolve stamps ``(..., B, B)`` with a clean 2-D ``psf`` (numpy or CuPy, float64 inside).

    Parameters
    ----------
    stamps : numpy or CuPy array
        At least 2-D; the last two axes are (y, x).
    psf : array
        2-D PSF (same array module or numpy).
    legacy : bool
        Window start ``(P - 1) // 2`` (``fftconvolve`` 'same') instead of ``P // 2``.

    Returns
    -------
    array
        Same shape and array module as ``stamps``, float32.

    Examples
    --------
    >>> st = np.zeros((1, 8, 8)); st[0, 4, 4] = 1
    >>> out = convolve_stamps(st, np.ones((2, 2)) / 4)
    >>> np.argwhere(out[0] > 0.1).tolist()
    [[3, 3], [3, 4], [4, 3], [4, 4]]
    """
    from ..core.backend import array_namespace

    xp = array_namespace(stamps)
    if xp is np:
        import scipy.fft as fft
    else:  # CuPy
        fft = xp.fft
    by, bx = stamps.shape[-2:]
    py, px = psf.shape
    shape = _fft_shape((by, bx), (py, px))
    kernel = fft.rfft2(xp.asarray(psf, dtype=xp.float64), s=shape)
    y0, x0 = ((py - 1) // 2, (px - 1) // 2) if legacy else (py // 2, px // 2)
    flat = stamps.reshape((-1, by, bx))
    out = xp.empty(flat.shape, dtype=xp.float32)
    # batches of stamps: the float64 padded spectra of a batch stay small (~64 stamps)
    step = max(1, _BATCH_BYTES // (shape[0] * shape[1] * 8 * 3))
    for i in range(0, flat.shape[0], step):
        spec = fft.rfft2(xp.asarray(flat[i:i + step], dtype=xp.float64), s=shape, axes=(-2, -1))
        full = fft.irfft2(spec * kernel, s=shape, axes=(-2, -1))
        out[i:i + step] = full[:, y0:y0 + by, x0:x0 + bx]
    return out.reshape(stamps.shape)


def convolve(models, psf, *, legacy: bool = False):
    """Convolve every model stamp with the PSF (lazy; one task per block of models).

    Parameters
    ----------
    models : xarray.DataArray
        A model cube (:func:`lazyastro.dre.make_models`, :func:`lazyastro.dre.open_models`):
        dims ending in ``("y", "x")``; numpy- or CuPy-backed.
    psf : array_like
        2-D PSF; validated and cleaned (negative pixels to 0, normalised to sum 1) as the legacy
        ``get_psf`` does (a PSF from :func:`lazyastro.dre.read_psf` is already clean). Its centre
        is pixel ``(P // 2)`` along each axis.
    legacy : bool
        ``True`` reproduces the legacy one-pixel shift for even PSF sizes (see the module
        docstring); odd sizes give the same result either way.

    Returns
    -------
    xarray.DataArray
        ``"convolved"``, same dims, coords and chunks as ``models``, float32;
        ``attrs["psf_sum_sq"]`` = sum(psf**2) of the cleaned PSF, ``attrs["psf_shape"]``.

    Raises
    ------
    ParameterError
        A bad PSF (not 2-D, non-finite, no positive pixel) or not a DataArray with (y, x) last.

    Examples
    --------
    >>> from lazyastro.dre import make_models
    >>> m = make_models(q=[1.0], theta=[0.0], log_r=[0.0], boxsize=32)
    >>> c = convolve(m, np.ones((3, 3)))
    >>> st = c.squeeze().values
    >>> [int(i) for i in np.unravel_index(st.argmax(), st.shape)], round(c.attrs["psf_sum_sq"], 4)
    ([16, 16], 0.1111)
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    from ..core.backend import meta_like

    if not isinstance(models, xr.DataArray) or tuple(models.dims[-2:]) != ("y", "x"):
        raise ParameterError("models must be an xarray.DataArray with dims ending in ('y', 'x')")
    clean = clean_psf(psf)
    data = models.data
    if not hasattr(data, "dask"):
        data = da.from_array(data, chunks=(1,) * (data.ndim - 4) + (-1,) * min(data.ndim, 4))
    # whole stamps in every block
    data = data.rechunk({data.ndim - 2: -1, data.ndim - 1: -1})
    name = "dre-convolve-" + tokenize(data.name, clean, bool(legacy))
    out = da.map_blocks(convolve_stamps, data, clean, legacy=bool(legacy), dtype=np.float32,
                        meta=meta_like(data, dtype=np.float32), name=name)
    attrs = {k: v for k, v in models.attrs.items() if k not in ("source", "format", "header")}
    attrs.update({"psf_sum_sq": float((clean ** 2).sum()), "psf_shape": list(clean.shape),
                  "psf_centre": [clean.shape[0] // 2, clean.shape[1] // 2], "legacy_shift": bool(legacy)})
    return xr.DataArray(out, dims=models.dims, coords=models.coords, name="convolved", attrs=attrs)
