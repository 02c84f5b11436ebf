"""Kernels of the GAN image statistics: pure functions on in-memory blocks (numpy or CuPy).

Every function takes its array module from its input (:func:`array_namespace`), so
the same code runs on a numpy or a CuPy block. No dask, no files, no printing.

- :func:`power_spectrum` / :func:`power_spectrum_2d`: azimuthally averaged and 2-D
  power spectra (``mode="legacy"`` reproduces the legacy ring sampling bit for bit).
- :func:`intensity_histogram`: log10 pixel histogram with counts of dropped pixels.
- :func:`minkowski`: the three 2-D Minkowski functionals (area, boundary length,
  Euler characteristic) at many thresholds in one sweep over the cells.

>>> import numpy as np
>>> img = np.zeros((3, 3)); img[1, 1] = 1.0
>>> minkowski(img, [0.5]).ravel().round(6).tolist()
[0.5, 2.828427, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.backend import array_namespace
from ..core.errors import ParameterError

__all__ = [
    "power_spectrum", "power_spectrum_2d", "wavenumbers", "k_to_ell", "intensity_histogram",
    "Histogram", "minkowski", "minkowski_block", "power_spectrum_block", "histogram_block",
    "log_normalise", "denormalise", "denormalise_log10", "PSD_MODES", "CONVENTIONS",
]

PSD_MODES = ("default", "legacy")
CONVENTIONS = ("default", "legacy")
#: pairs (cell, threshold) evaluated at a time in :func:`minkowski` (bounds the temporaries)
_PAIRS_PER_PASS = 1 << 21


def _check_choice(value: str, choices: tuple[str, ...], name: str) -> str:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _as_image(image: Any, xp, *, ndim: int | None = 2, what: str = "image"):
    arr = xp.asarray(image)
    if ndim is not None and arr.ndim != ndim:
        raise ParameterError(f"{what} must be {ndim}-D, got shape {tuple(arr.shape)}")
    if arr.dtype.kind not in "biuf":
        raise ParameterError(f"{what} must be real-valued, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


# --------------------------------------------------------------------------- normalisation


def log_normalise(x: Any, lognorminfo: Any) -> Any:
    """``2 (ln x - Lmin) / (Lmax - Lmin) - 1`` in float64 (in [-1, 1] for the set it came from).

    Parameters
    ----------
    x : array
        Positive pixel values.
    lognorminfo : array-like of 2 floats
        ``[Lmin, Lmax]`` (natural log of the set's min and max pixel).

    Returns
    -------
    array
        The log-normalised values (float64), same array module as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> log_normalise(np.array([1.0, np.e]), [0.0, 1.0]).tolist()
    [-1.0, 1.0]
    """
    xp = array_namespace(x)
    lmin, lmax = (float(v) for v in np.asarray(lognorminfo, dtype=np.float64).ravel()[:2])
    with np.errstate(divide="ignore", invalid="ignore"):
        return 2.0 * (xp.log(xp.asarray(x, dtype=np.float64)) - lmin) / (lmax - lmin) - 1.0


def denormalise(g: Any, lognorminfo: Any) -> Any:
    """Generator output ``g`` in [-1, 1] back to pixel values: ``exp((g+1)(Lmax-Lmin)/2 + Lmin)``.

    Parameters
    ----------
    g : array
        Normalised values (a tanh generator's output).
    lognorminfo : array-like of 2 floats
        ``[Lmin, Lmax]``.

    Returns
    -------
    array
        Pixel values (float64).

    Examples
    --------
    >>> import numpy as np
    >>> denormalise(np.array([-1.0, 1.0]), [0.0, 1.0]).round(6).tolist()
    [1.0, 2.718282]
    """
    xp = array_namespace(g)
    return xp.exp(denormalise_log10(g, lognorminfo) * math.log(10.0))


def denormalise_log10(g: Any, lognorminfo: Any) -> Any:
    """``log10`` of :func:`denormalise`: ``((g+1)(Lmax-Lmin)/2 + Lmin) / ln 10``.

    Parameters
    ----------
    g : array
        Normalised values.
    lognorminfo : array-like of 2 floats
        ``[Lmin, Lmax]``.

    Returns
    -------
    array
        ``log10`` of the pixel values (float64).

    Examples
    --------
    >>> import numpy as np
    >>> float(denormalise_log10(np.array([1.0]), [0.0, math.log(100.0)])[0])
    2.0
    """
    xp = array_namespace(g)
    lmin, lmax = (float(v) for v in np.asarray(lognorminfo, dtype=np.float64).ravel()[:2])
    g = xp.asarray(g, dtype=np.float64)
    return ((g + 1.0) * (lmax - lmin) * 0.5 + lmin) / math.log(10.0)


# --------------------------------------------------------------------------- power spectra


def power_spectrum_2d(image: Any) -> Any:
    """The shifted, unnormalised 2-D power spectrum ``|fftshift(fft2(image))|**2``.

    Parameters
    ----------
    image : array (..., y, x)
        One image, or a stack of images (the last two axes are transformed).

    Returns
    -------
    array
        float64, same shape; the zero frequency sits at index ``(H//2, W//2)``.

    Examples
    --------
    >>> import numpy as np
    >>> float(power_spectrum_2d(np.ones((4, 4)))[2, 2])
    256.0
    """
    xp = array_namespace(image)
    img = _as_image(image, xp, ndim=None)
    if img.ndim < 2:
        raise ParameterError(f"image must be at least 2-D, got shape {tuple(img.shape)}")
    f = xp.fft.fftshift(xp.fft.fft2(img, axes=(-2, -1)), axes=(-2, -1))
    return xp.abs(f) ** 2


def wavenumbers(shape: tuple[int, int], *, mode: str = "default") -> np.ndarray:
    """The wavenumbers ``k`` of :func:`power_spectrum` for images of ``shape``.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    mode : {"default", "legacy"}
        ``legacy``: ``0 .. int(min(H, W)/2 - 1)``; default: ``0 .. min(H, W)//2``.

    Returns
    -------
    numpy.ndarray
        Integer-valued float64 wavenumbers, in units of the fundamental of the shorter side.

    Examples
    --------
    >>> wavenumbers((8, 8), mode="legacy").tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    _check_choice(mode, PSD_MODES, "mode")
    h, w = (int(n) for n in shape)
    n = int(min(h, w) / 2 - 1) + 1 if mode == "legacy" else min(h, w) // 2 + 1
    return np.arange(max(n, 0), dtype=np.float64)


def k_to_ell(k: Any, field_width_deg: float = 20.0) -> Any:
    """Multipole ``ell = k * 360 / field_width`` of a wavenumber on a square field (``ell = 18 k`` at 20 deg).

    Parameters
    ----------
    k : array-like
        Wavenumbers (integer FFT index radius).
    field_width_deg : float, optional
        Field width in degrees.

    Returns
    -------
    array-like
        Multipoles.

    Examples
    --------
    >>> k_to_ell(11)
    198.0
    """
    if not field_width_deg > 0:
        raise ParameterError(f"field_width_deg must be > 0, got {field_width_deg!r}")
    return k * (360.0 / float(field_width_deg))


def _legacy_psd_1d(psd2d, xp):
    """Legacy azimuthal average: bilinear samples on rings of ``int(2 pi r + 1)`` points."""
    h, w = psd2d.shape[-2:]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    max_radius = int(min(h, w) / 2 - 1)
    counts, xs, ys = [], [], []
    for r in range(max_radius + 1):
        n = int(2 * np.pi * r + 1)
        theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
        xs.append(cx + r * np.cos(theta))
        ys.append(cy + r * np.sin(theta))
        counts.append(n)
    out_shape = (*psd2d.shape[:-2], max_radius + 1)
    if max_radius < 0:
        return xp.zeros(out_shape)
    x = xp.asarray(np.concatenate(xs))
    y = xp.asarray(np.concatenate(ys))
    x0 = xp.floor(x)
    y0 = xp.floor(y)
    x1 = xp.clip(x0 + 1, 0, w - 1)
    y1 = xp.clip(y0 + 1, 0, h - 1)
    x0 = xp.clip(x0, 0, w - 1)
    y0 = xp.clip(y0, 0, h - 1)
    ix0, ix1, iy0, iy1 = (a.astype(np.intp) for a in (x0, x1, y0, y1))
    img = psd2d
    samples = (img[..., iy0, ix0] * (x1 - x) * (y1 - y) + img[..., iy1, ix0] * (x1 - x) * (y - y0)
               + img[..., iy0, ix1] * (x - x0) * (y1 - y) + img[..., iy1, ix1] * (x - x0) * (y - y0))
    out = xp.empty(out_shape, dtype=np.float64)
    start = 0
    for r, n in enumerate(counts):
        out[..., r] = xp.mean(samples[..., start:start + n], axis=-1)
        start += n
    return out


def _default_bins(shape, xp):
    h, w = shape
    n = min(h, w)
    ky = (xp.arange(h, dtype=np.float64) - h // 2) * (n / h)
    kx = (xp.arange(w, dtype=np.float64) - w // 2) * (n / w)
    kappa = xp.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    bins = xp.floor(kappa + 0.5).astype(np.intp).ravel()
    nb = n // 2 + 1
    return bins, nb


def power_spectrum(image: Any, *, mode: str = "default") -> Any:
    """Azimuthally averaged power spectrum of one image (or a stack ``(..., y, x)``).

    Parameters
    ----------
    image : array (y, x) or (..., y, x)
        Image(s), any real dtype (computed in float64).
    mode : {"default", "legacy"}
        ``"legacy"`` reproduces the legacy pipeline bit for bit: unnormalised
        ``|FFT|**2``, centre ``((N-1)/2, (N-1)/2)`` (half a pixel off the zero
        frequency for even N), rings r = 0 .. int(N/2 - 1) of ``int(2 pi r + 1)``
        bilinear samples; square images only.
        ``"default"``: a correct radial average around the zero-frequency pixel.
        Each frequency ``(ky, kx)`` (FFT indices, zero at ``(H//2, W//2)``) has the
        wavenumber ``kappa = sqrt((ky N/H)**2 + (kx N/W)**2)`` with ``N = min(H, W)``
        (units of the fundamental of the shorter side; the integer index radius for
        square images); bin k holds ``k - 1/2 <= kappa < k + 1/2``, k = 0 .. N//2.
        The value is the mean of ``|FFT|**2 / (H W)`` over the bin, so white noise
        of variance s**2 has a flat spectrum s**2 and the sum over all frequencies
        equals the sum of squared pixels (Parseval).

    Returns
    -------
    array
        float64 ``(..., R)`` (numpy or CuPy as the input); :func:`wavenumbers` gives k.

    Raises
    ------
    ParameterError
        Unknown mode, non-square image in legacy mode, fewer than 2 dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> power_spectrum(np.ones((8, 8)), mode="legacy").round(6).tolist()
    [1024.0, 599.875901, 0.0, 0.0]
    >>> power_spectrum(np.ones((8, 8)))[:2].tolist()
    [64.0, 0.0]
    """
    _check_choice(mode, PSD_MODES, "mode")
    xp = array_namespace(image)
    img = _as_image(image, xp, ndim=None)
    if img.ndim < 2:
        raise ParameterError(f"image must be at least 2-D, got shape {tuple(img.shape)}")
    h, w = img.shape[-2:]
    if img.ndim > 2:  # one image at a time: every image gets exactly its 2-D result
        flat = img.reshape(-1, h, w)
        rows = [power_spectrum(im, mode=mode) for im in flat]
        nb = len(wavenumbers((h, w), mode=mode))
        out = xp.stack(rows) if rows else xp.zeros((0, nb))
        return out.reshape(*img.shape[:-2], nb)
    if mode == "legacy":
        if h != w:
            raise ParameterError(f"legacy power spectrum needs square images, got {h}x{w}")
        return _legacy_psd_1d(power_spectrum_2d(img), xp)
    p2 = power_spectrum_2d(img) / float(h * w)
    bins, nb = _default_bins((h, w), xp)
    keep = bins < nb
    b = bins[keep]
    counts = xp.bincount(b, minlength=nb).astype(np.float64)
    return xp.bincount(b, weights=p2.ravel()[keep], minlength=nb) / counts


def power_spectrum_block(block: Any, *, mode: str = "default") -> Any:
    """Power spectra of a block of images ``(n, y, x)`` -> ``(n, R)``.

    Examples
    --------
    >>> import numpy as np
    >>> power_spectrum_block(np.ones((2, 8, 8)), mode="legacy").shape
    (2, 4)
    """
    return power_spectrum(block, mode=mode)


# --------------------------------------------------------------------------- histogram


@dataclass
class Histogram:
    """Counts of a histogram and what was left out of it.

    Attributes
    ----------
    counts : array of int64 (bins,)
    edges : numpy.ndarray (bins + 1,)
    nonpositive : int
        Pixels <= 0 (no log10; only with ``log=True``).
    nan : int
        NaN pixels (and +-inf input).
    below, above : int
        Values outside the range.
    total : int
        All pixels seen.
    """

    counts: Any
    edges: np.ndarray
    nonpositive: int = 0
    nan: int = 0
    below: int = 0
    above: int = 0
    total: int = 0

    @property
    def dropped(self) -> int:
        """Pixels that are in no bin."""
        return self.nonpositive + self.nan + self.below + self.above


def histogram_block(images: Any, *, bins: int = 100, range: tuple[float, float] = (-5.0, 10.0),
                    log: bool = True) -> Any:
    """Counts of :func:`intensity_histogram` as one int64 vector ``bins + 5``.

    The tail holds ``[nonpositive, nan, below, above, total]`` (for reductions over blocks).

    Examples
    --------
    >>> import numpy as np
    >>> histogram_block(np.array([1.0, 10.0, 0.0]), bins=3, range=(0.0, 3.0)).tolist()
    [1, 1, 0, 1, 0, 0, 0, 3]
    """
    xp = array_namespace(images)
    x = xp.asarray(images)
    if x.dtype.kind not in "biuf":
        raise ParameterError(f"images must be real-valued, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False).ravel()
    lo, hi = float(range[0]), float(range[1])
    nonpos = 0
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            bad = x <= 0
            nonpos = int(bad.sum())
            x = xp.log10(xp.where(bad, xp.nan, x))
            nan = int((~xp.isfinite(x)).sum()) - nonpos
    else:
        nan = int((~xp.isfinite(x)).sum())
    fin = x[xp.isfinite(x)]
    below = int((fin < lo).sum())
    above = int((fin > hi).sum())
    counts, _ = xp.histogram(fin, bins=int(bins), range=(lo, hi))
    tail = xp.asarray([nonpos, nan, below, above, int(x.size)], dtype=np.int64)
    return xp.concatenate([counts.astype(np.int64), tail])


def intensity_histogram(images: Any, *, bins: int = 100, range: tuple[float, float] = (-5.0, 10.0),
                        log: bool = True) -> Histogram:
    """Histogram of ``log10`` pixel values of a batch of images, with the dropped pixels counted.

    NumPy semantics (bins ``[a, b)``, the last one closed); defaults are the legacy
    100 bins over [-5, 10]. Pixels that cannot be binned (non-positive, NaN, out
    of range) are counted in the result instead of silently dropped.

    Parameters
    ----------
    images : array
        Any shape (all pixels of all images are counted).
    bins : int, optional
        Number of bins.
    range : (float, float), optional
        Lower and upper edge (log10 units when ``log``).
    log : bool, optional
        Histogram ``log10(x)`` (default) or ``x``.

    Returns
    -------
    Histogram
        ``counts`` (numpy or CuPy int64), ``edges`` and the dropped counts.

    Raises
    ------
    ParameterError
        If ``bins < 1`` or the range is empty.

    Examples
    --------
    >>> import numpy as np
    >>> h = intensity_histogram(np.array([[1.0, 10.0], [0.0, 1e20]]))
    >>> int(h.counts.sum()), h.nonpositive, h.above, h.dropped
    (2, 1, 1, 2)
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ParameterError(f"bins must be a positive integer, got {bins!r}")
    lo, hi = (float(v) for v in range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ParameterError(f"range must be two finite numbers lower < upper, got {range!r}")
    vec = histogram_block(images, bins=int(bins), range=(lo, hi), log=log)
    tail = [int(v) for v in np.asarray(vec[-5:].get() if hasattr(vec, "get") else vec[-5:])]
    return Histogram(vec[:-5], np.linspace(lo, hi, int(bins) + 1), *tail)


# --------------------------------------------------------------------------- Minkowski functionals

# cell patterns (bit 1: p00, 2: p10, 4: p11, 8: p01; a bit is set when the corner is > t)
_KIND = np.zeros(16, np.int8)  # 0 empty, 1 one corner in, 2 two adjacent, 3 three in, 4 saddle, 5 full
_CORNER = np.zeros(16, np.int8)  # the lone corner (in for kind 1, out for kind 3): 0 p00, 1 p10, 2 p11, 3 p01
for _bit, _c in ((1, 0), (2, 1), (4, 2), (8, 3)):
    _KIND[_bit], _CORNER[_bit] = 1, _c
    _KIND[15 - _bit], _CORNER[15 - _bit] = 3, _c
_KIND[[3, 6, 9, 12]] = 2
_KIND[[5, 10]] = 4
_KIND[15] = 5


#: "auto": the compiled CPU sweep when Numba imports, else the vectorised form; "vectorised": always
#: the vectorised (array-module) form (CuPy always uses it)
MINKOWSKI_ENGINE = "auto"


def _compiled_sweep():
    if MINKOWSKI_ENGINE != "auto":
        return None
    try:
        from ._mf_numba import sweep
    except ImportError:  # Numba missing: the vectorised form
        return None
    return sweep


def _cell_functionals(xp, p00, p10, p11, p01, t, legacy: bool):
    """(F, U, chi) of cells with corners ``p..`` at thresholds ``t`` (arrays of one length)."""
    pat = ((p00 > t).astype(np.int8) + 2 * (p10 > t).astype(np.int8)
           + 4 * (p11 > t).astype(np.int8) + 8 * (p01 > t).astype(np.int8))
    kind = xp.asarray(_KIND)[pat]
    corner = xp.asarray(_CORNER)[pat].astype(np.intp)
    with np.errstate(divide="ignore", invalid="ignore"):
        # crossing fractions as (corner - t) * 1 / (edge difference), the compiled form's order
        a1 = (p00 - t) * (1.0 / (p00 - p10))
        a2 = (p10 - t) * (1.0 / (p10 - p11))
        a3 = (p01 - t) * (1.0 / (p01 - p11))
        a4 = (p00 - t) * (1.0 / (p00 - p01))
        legs = ((a1, a4), (1 - a1, a2), (1 - a2, 1 - a3), (a3, 1 - a4))
        area = xp.stack([0.5 * u * v for u, v in legs])
        length = xp.stack([xp.sqrt(u * u + v * v) for u, v in legs])
        ac = xp.take_along_axis(area, corner[None], axis=0)[0]
        lc = xp.take_along_axis(length, corner[None], axis=0)[0]
        vertical = (pat == 3) | (pat == 12)  # the contour crosses the two columns
        s = xp.where(vertical, (a2 + a4) * 0.5, (a1 + a3) * 0.5)
        d = xp.where(vertical, a4 - a2, a3 - a1)
        low = (pat == 3) | (pat == 9)
        f_adj = xp.where(low, s, 1 - s)
        u_adj = xp.sqrt(1 + d * d)
        five = pat == 5
        # saddles: the out corners are (p10, p01) for pattern 5, (p00, p11) for pattern 10
        a_out = xp.where(five, area[1] + area[3], area[0] + area[2])
        a_in = xp.where(five, area[0] + area[2], area[1] + area[3])
        l_out = xp.where(five, length[1] + length[3], length[0] + length[2])
        l_in = xp.where(five, length[0] + length[2], length[1] + length[3])
        if legacy:
            f_sad = xp.where(five, 1 - a_out, 1 - area[0] + area[2])  # pattern-10 sign as legacy
            u_sad = l_out
            chi_sad = xp.full(pat.shape, 0.5)
        else:
            joined = (p00 + p10 + p11 + p01) * 0.25 > t  # centre above t: in-corners connected
            f_sad = xp.where(joined, 1 - a_out, a_in)
            u_sad = xp.where(joined, l_out, l_in)
            chi_sad = xp.where(joined, -0.5, 0.5)
        zero = xp.zeros(pat.shape)
        f = xp.where(kind == 1, ac, xp.where(kind == 3, 1 - ac, xp.where(kind == 2, f_adj, xp.where(
            kind == 4, f_sad, xp.where(kind == 5, 1.0, zero)))))
        u = xp.where((kind == 1) | (kind == 3), lc, xp.where(kind == 2, u_adj, xp.where(
            kind == 4, u_sad, zero)))
        chi = xp.where(kind == 1, 0.25, xp.where(kind == 3, -0.25, xp.where(kind == 4, chi_sad, zero)))
    return f, u, chi


def minkowski(image: Any, thresholds: Any, *, convention: str = "default") -> Any:
    """The 2-D Minkowski functionals (area F, boundary length U, Euler characteristic chi) per threshold.

    Marching squares on the pixel lattice (pixels on the vertices, spacing 1; a pixel
    is *in* when its value is strictly greater than the threshold; edge crossings by
    linear interpolation; Mantz, Jacobs & Mecke 2008). Raw sums in pixel units over
    the (H-1)(W-1) cells, open border (nothing padded: pad with a low value for
    closed-set values).

    All thresholds are done in **one sweep**: each cell is classified once by the
    minimum and maximum of its corners; for thresholds below the minimum it is
    full (area 1), above the maximum empty, and only the thresholds in between
    (found with ``searchsorted``) are evaluated, then accumulated per threshold
    with ``bincount`` in a fixed order (bit-reproducible for a given input).

    Parameters
    ----------
    image : array (y, x)
        Any real dtype (computed in float64), numpy or CuPy.
    thresholds : array-like (n,)
        Thresholds, in any order.
    convention : {"default", "legacy"}
        Saddle cells (two diagonal corners in). ``"default"``: one rule for F, U and
        chi: the two in-corners are connected through the cell when the mean of the
        four corners is above the threshold (area ``1 - both out triangles``,
        boundary = the two out-corner segments, chi -1/2), otherwise they are
        separate (area = both in triangles, boundary = their segments, chi +1/2).
        ``"legacy"``: as the legacy ``minkfncts2d``: F and U always treat the
        in-corners as connected, chi always as separate (+1/2), and the pattern-10
        area adds the second triangle instead of subtracting it. NaN pixels are
        *out*; crossing fractions involving NaN make F and U NaN (legacy), the
        default refuses NaN.

    Returns
    -------
    array (3, n)
        Rows F, U, chi (float64, numpy or CuPy as the image).

    Raises
    ------
    ParameterError
        Not 2-D, not real, NaN pixels (default convention), unknown convention.

    Examples
    --------
    >>> import numpy as np
    >>> minkowski(np.array([[0.0, 1.0], [1.0, 0.0]]), [0.5], convention="legacy").ravel().tolist()
    [1.0, 1.4142135623730951, 0.5]
    >>> minkowski(np.array([[0.0, 1.0], [1.0, 0.0]]), [0.5]).ravel().tolist()
    [0.25, 1.4142135623730951, 0.5]
    """
    _check_choice(convention, CONVENTIONS, "convention")
    legacy = convention == "legacy"
    xp = array_namespace(image)
    img = _as_image(image, xp)
    thr = xp.asarray(thresholds, dtype=np.float64).ravel()
    n = int(thr.shape[0])
    h, w = img.shape
    out = xp.zeros((3, n), dtype=np.float64)
    if n == 0 or h < 2 or w < 2:
        return out
    if bool(xp.isnan(thr).any()):
        raise ParameterError("thresholds must not be NaN")
    if bool(xp.isnan(img).any()):
        if not legacy:
            raise ParameterError("image has NaN pixels (the default convention refuses them; "
                                 "convention='legacy' treats them as out)")
    order = xp.argsort(thr, kind="stable")
    ts = thr[order]
    sweep = _compiled_sweep() if xp is np else None
    if sweep is not None:
        out[:, order] = sweep(np.ascontiguousarray(img), np.ascontiguousarray(ts), legacy)
        return out
    p00 = img[:-1, :-1].ravel()
    p10 = img[:-1, 1:].ravel()
    p11 = img[1:, 1:].ravel()
    p01 = img[1:, :-1].ravel()
    mn = xp.fmin(xp.fmin(p00, p10), xp.fmin(p11, p01))
    mx = xp.fmax(xp.fmax(p00, p10), xp.fmax(p11, p01))
    lo = xp.searchsorted(ts, mn, side="left")  # thresholds below the lowest corner: full cell
    hi = xp.searchsorted(ts, mx, side="left")  # thresholds at or above the highest: empty cell
    if legacy:
        nan_cells = xp.isnan(p00) | xp.isnan(p10) | xp.isnan(p11) | xp.isnan(p01)
        if bool(nan_cells.any()):
            lo = xp.where(nan_cells, 0, lo)  # a NaN corner is never in: never a full cell
            hi = xp.where(xp.isnan(mx), 0, hi)
    # cells are full for threshold indices < lo (NaN cells have lo = 0: never full)
    full_from = xp.bincount(lo, minlength=n + 1)
    full = xp.cumsum(full_from[::-1])[::-1][1:].astype(np.float64)
    count = xp.maximum(hi - lo, 0)
    cells = xp.nonzero(count)[0]
    f_acc = xp.zeros(n)
    u_acc = xp.zeros(n)
    c_acc = xp.zeros(n)
    if int(cells.shape[0]):
        k = count[cells]
        ends = xp.cumsum(k)
        total = int(ends[-1])
        # split the boundary cells into passes of about _PAIRS_PER_PASS (cell, threshold) pairs
        cuts = np.asarray(xp.searchsorted(ends, xp.arange(_PAIRS_PER_PASS, total, _PAIRS_PER_PASS),
                                          side="left") if total > _PAIRS_PER_PASS else [])
        cuts = cuts.get() if hasattr(cuts, "get") else cuts
        bounds = [0, *sorted({int(c) + 1 for c in cuts if int(c) + 1 < len(k)}), int(cells.shape[0])]
        for a, b in zip(bounds[:-1], bounds[1:]):
            cc = cells[a:b]
            kk = k[a:b]
            starts = xp.cumsum(kk) - kk
            npairs = int(kk.sum())
            if xp is np:
                owner = np.repeat(np.arange(b - a), kk)
            else:
                owner = xp.searchsorted(xp.cumsum(kk), xp.arange(npairs), side="right")
            tidx = lo[cc][owner] + (xp.arange(npairs) - starts[owner])
            ci = cc[owner]
            f, u, chi = _cell_functionals(xp, p00[ci], p10[ci], p11[ci], p01[ci], ts[tidx], legacy)
            f_acc += xp.bincount(tidx, weights=f, minlength=n)
            u_acc += xp.bincount(tidx, weights=u, minlength=n)
            c_acc += xp.bincount(tidx, weights=chi, minlength=n)
    res = xp.stack([full + f_acc, u_acc, c_acc])
    out[:, order] = res
    return out


def minkowski_block(block: Any, thresholds: Any, *, convention: str = "default") -> Any:
    """:func:`minkowski` of every image of a block ``(n, y, x)`` -> ``(n, 3, len(thresholds))``.

    Examples
    --------
    >>> import numpy as np
    >>> minkowski_block(np.zeros((2, 3, 3)), [0.5]).shape
    (2, 3, 1)
    """
    xp = array_namespace(block)
    arr = xp.asarray(block)
    if arr.ndim != 3:
        raise ParameterError(f"a block of images must be 3-D (image, y, x), got shape {tuple(arr.shape)}")
    n = int(np.asarray(thresholds).size) if not hasattr(thresholds, "shape") else int(thresholds.size)
    if arr.shape[0] == 0:
        return xp.zeros((0, 3, n))
    return xp.stack([minkowski(im, thresholds, convention=convention) for im in arr])
