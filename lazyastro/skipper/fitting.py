"""Fits on 1-ADU histograms (pure numpy/scipy): Gaussian, line, Poisson (x) Gaussian, peak finders.

Every fit returns a :class:`Fit` with values, 1-sigma errors (sqrt of the covariance
diagonal) and an ``ok`` flag instead of raising.

>>> x = np.arange(-20, 21) + 0.5
>>> fit = fit_gaussian(x, gaussian(x, 100.0, 0.3, 4.0), [90, 0, 3])
>>> bool(fit.ok), round(float(fit.params[2]), 3)
(True, 4.0)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from .kernels import extrema, moving_average

__all__ = [
    "Fit", "gaussian", "fit_gaussian", "fit_line", "poisson_gauss", "fit_poisson_gauss",
    "pg_integral", "pg_tail_threshold", "peak_noise_2019", "peak_noise_2021",
    "dark_current_from_peaks", "Q4",
]

Q4 = float(stats.norm.sf(4.0))  # 3.17e-5, one-sided 4-sigma tail
NPOISSON = 10


@dataclass
class Fit:
    """Result of a least-squares fit; ``ok`` is False when it failed or is degenerate."""

    params: np.ndarray
    errors: np.ndarray
    ok: bool
    method: str = ""
    extra: dict = field(default_factory=dict)
    #: why the fit failed or was rejected ("" when it is fine)
    reason: str = ""

    @classmethod
    def failed(cls, n: int, method: str = "", reason: str = "fit failed") -> Fit:
        nan = np.full(n, np.nan)
        return cls(nan, nan.copy(), False, method, reason=reason)


def gaussian(x: np.ndarray, a: float, mu: float, sigma: float) -> np.ndarray:
    """``a * exp(-(x - mu)^2 / (2 sigma^2))``."""
    return a * np.exp(-((x - mu) ** 2) / (2.0 * sigma**2))


def _curve_fit(f, x, y, p0, method: str, **kw) -> Fit:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < len(p0):
        return Fit.failed(len(p0), method, f"{len(x)} histogram bins for {len(p0)} parameters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, cov = optimize.curve_fit(f, x, y, p0=p0, **kw)
    except RuntimeError:
        return Fit.failed(len(p0), method, "least squares did not converge")
    except (ValueError, TypeError, np.linalg.LinAlgError, optimize.OptimizeWarning) as exc:
        return Fit.failed(len(p0), method, f"least squares failed ({type(exc).__name__})")
    with np.errstate(invalid="ignore"):
        err = np.sqrt(np.abs(np.diag(cov)))
    ok = bool(np.all(np.isfinite(p)))
    return Fit(p, err, ok, method, reason="" if ok else "non-finite parameters")


def fit_gaussian(x: np.ndarray, y: np.ndarray, p0, legacy: bool = False) -> Fit:
    """Least-squares Gaussian ``[A, mu, sigma]``.

    The default reports ``|sigma|`` and allows 2000 evaluations; ``legacy`` keeps the fitted
    sign of sigma and SciPy's default evaluation limit (as the legacy tool).

    Examples
    --------
    >>> x = np.arange(-10.0, 11.0)
    >>> round(float(fit_gaussian(x, gaussian(x, 5.0, 1.0, 2.0), [4, 0, 1]).params[2]), 6)
    2.0
    """
    if legacy:
        return _curve_fit(gaussian, x, y, list(p0), "gaussian")
    fit = _curve_fit(gaussian, x, y, list(p0), "gaussian", maxfev=2000)
    fit.params[2] = abs(fit.params[2])
    if fit.ok and not fit.params[2] > 0:
        fit.ok, fit.reason = False, "zero width"
    return fit


def fit_line(x: np.ndarray, y: np.ndarray) -> Fit:
    """Straight line ``p0 + p1 x`` (initial ``[mean y, 0]``)."""
    return _curve_fit(lambda x, a, b: a + b * x, x, y, [float(np.mean(y)), 0.0], "line")


def _pmf(k: np.ndarray, lam: float) -> np.ndarray:
    if lam <= 0:
        return (k == 0).astype(float)
    return np.exp(k * np.log(lam) - lam - special.gammaln(k + 1))


def poisson_gauss(x, sigma, lam, offset, gain, n, npoisson: int = NPOISSON):
    """``N/sqrt(2 pi s^2) sum_k Pois(k; lam) exp(-(x - offset - k gain)^2 / (2 s^2))`` (1-ADU bins)."""
    k = np.arange(npoisson)[:, None]
    pk = _pmf(k, lam)
    s = abs(sigma)
    g = np.exp(-((np.asarray(x)[None, :] - offset - k * gain) ** 2) / (2 * s * s))
    return n / np.sqrt(2 * np.pi * s * s) * (pk * g).sum(axis=0)


def pg_integral(params, a: float, b: float, npoisson: int = NPOISSON) -> float:
    """Integral of :func:`poisson_gauss` from ``a`` to ``b``."""
    sigma, lam, offset, gain, n = params
    k = np.arange(npoisson)
    mu = offset + k * gain
    s = abs(sigma)
    return float(n * (stats.poisson.pmf(k, lam) * (stats.norm.cdf((b - mu) / s) - stats.norm.cdf((a - mu) / s))).sum())


def pg_tail_threshold(params, first: float, last: float, q: float = Q4) -> float:
    """``x_t`` with ``integral_{x_t}^{last} f = N q`` (NaN when no root in ``[first, last]``)."""
    target = params[4] * q
    g = lambda a: pg_integral(params, a, last) - target  # noqa: E731
    try:
        if g(first) <= 0:
            return float("nan")
        return float(optimize.brentq(g, first, last, xtol=1e-6))
    except (ValueError, RuntimeError):
        return float("nan")


def fit_poisson_gauss(
    centres: np.ndarray, counts: np.ndarray, npix: int, sigma0: float, legacy: bool = False
) -> Fit:
    """Poisson (x) Gaussian fit ``[sigma, lambda, offset, gain, N]`` to a 1-ADU histogram.

    Legacy starts from ``sigma=60, lambda=1, gain=1`` and the first non-empty bin; the
    default tries a few starts (sigma from the MAD, gains up to the histogram span) with
    bounded parameters and keeps the best converged one.
    """
    x, y = np.asarray(centres, float), np.asarray(counts, float)
    nz = np.flatnonzero(y)
    if len(nz) < 6:
        return Fit.failed(5, "poisson_gauss", f"{len(nz)} non-empty histogram bins")
    span = x[-1] - x[0] + 1
    if legacy:
        starts = [[60.0, 1.0, x[nz[0]], 1.0, float(npix)]]
        kw: dict = {"maxfev": 5000}
    else:
        sm = moving_average(y, 3)
        maxima, _ = extrema(np.diff(sm))
        first = [i for i in maxima if sm[i] > 0.02 * sm.max()]
        offsets = {x[int(np.argmax(sm))], x[first[0]] if first else x[int(np.argmax(sm))]}
        s0 = max(float(sigma0), 0.3)
        starts = [
            [s, lam, off, g, float(y.sum())]
            for s in {s0, max(s0 / 3, 0.3), max(s0 / 10, 0.3)}
            for g in np.geomspace(max(2 * s, 1.0), max(span / 3, 2 * s + 1), 8)
            for lam in (0.1, 0.5, 1.5, 4.0)
            for off in offsets
        ]
        kw = {"bounds": ([0.05, 0.0, x[0] - span, 0.2, 0.0], [span, NPOISSON / 2, x[-1] + span, span, np.inf])}
    if len(starts) > 3:  # fit only from the starts whose model is already closest to the data
        cost0 = [float(((poisson_gauss(x, *p0) - y) ** 2).sum()) for p0 in starts]
        starts = [starts[i] for i in np.argsort(cost0)[:3]]
        if len(first) >= 2:  # resolved peaks: spacing = gain, first peak = offset
            g = float(np.median(np.diff(x[first])))
            lam = max(0.05, float((x * y).sum() / y.sum() - x[first[0]]) / g)
            starts.append(list(np.clip([g / 6, min(lam, 4.9), x[first[0]], g, float(y.sum())],
                                       np.array(kw["bounds"][0]) + 1e-9, np.array(kw["bounds"][1]) - 1e-9)))
    best, best_cost = Fit.failed(5, "poisson_gauss", "no start converged"), np.inf
    for p0 in starts:
        if "bounds" in kw:
            lo, hi = kw["bounds"]
            p0 = list(np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9))
        fit = _curve_fit(poisson_gauss, x, y, p0, "poisson_gauss", **kw)
        if not fit.ok:
            continue
        cost = float(((poisson_gauss(x, *fit.params) - y) ** 2).sum())
        if cost < best_cost:
            best, best_cost = fit, cost
    if best.ok:
        best.params[0] = abs(best.params[0])
        s, lam, _off, gain, n = best.params
        es, _el, _eo, eg, _en = best.errors
        # sigma >= gain: electron peaks unresolved, gain and lambda degenerate
        checks = [
            (np.all(np.isfinite(best.errors)), "non-finite errors"),
            (0 < s < gain, f"electron peaks not resolved (sigma {s:.3g} >= gain {gain:.3g} ADU)"),
            (0 <= lam < 0.999 * NPOISSON / 2, f"lambda {lam:.3g} at its bound"),
            (n > 0, "no counts"),
            (es < 0.5 * s, f"sigma error {es:.3g} > 50% of sigma {s:.3g}"),
            (eg < 0.5 * gain, f"gain error {eg:.3g} > 50% of gain {gain:.3g}"),
        ]
        bad = [why for good, why in checks if not good]
        best.ok = not bad
        best.reason = bad[0] if bad else ""
    return best


def peak_noise_2019(centres: np.ndarray, counts: np.ndarray, nskips: int, legacy: bool = False) -> Fit:
    """2019 skNoise: Gaussian on the window between the last two minima of the smoothed histogram.

    Moving average of width 4 (12 for one skip, ``"same"`` length), maxima/minima where the
    difference changes sign, window ``[minima[-2], minima[-1]]`` (both bins included), start
    ``[h(peak), peak, width / 6]`` with the peak ``maxima[-2]`` if ``maxima[-1] > minima[-1]``
    else ``maxima[-1]``.
    """
    y = np.asarray(counts, float)
    d = np.diff(moving_average(y, 4 if nskips > 1 else 12))
    maxima, minima = extrema(d)
    if len(minima) < 2 or len(maxima) < 1:
        return Fit.failed(3, "peaks", f"{len(minima)} minima in the smoothed histogram (peaks not resolved)")
    lo, hi = minima[-2], minima[-1]
    peak = maxima[-2] if (maxima[-1] > minima[-1] and len(maxima) > 1) else maxima[-1]
    width = centres[hi] - centres[lo]
    sl = slice(lo, hi + 1)
    fit = fit_gaussian(centres[sl], y[sl], [y[peak], centres[peak], width / 6], legacy=legacy)
    fit.method = "peaks"
    fit.extra["window"] = (float(centres[lo]), float(centres[hi]))
    return fit


def _find_peaks_2021(y: np.ndarray, nskips: int) -> tuple[np.ndarray, int]:
    width = 4 if nskips > 1000 else 8
    d = np.diff(moving_average(y, width))
    maxima, _ = extrema(d, 1.0 / width)
    return maxima, width


def peak_noise_2021(centres: np.ndarray, counts: np.ndarray, nskips: int, mad: float) -> Fit:
    """2021 fallback skNoise: Gaussian on +-half the mean peak spacing around the first peak."""
    y = np.asarray(counts, float)
    maxima, _ = _find_peaks_2021(y, nskips)
    if len(maxima) == 0:
        return Fit.failed(3, "peaks", "no peak in the smoothed histogram")
    half = np.mean(np.diff(centres[maxima])) / 2 if len(maxima) > 1 else mad
    c = centres[maxima[0]]
    sel = (centres >= c - half) & (centres <= c + half)
    fit = fit_gaussian(centres[sel], y[sel], [y[maxima[0]], c, max(half / 3, 0.5)])
    fit.method = "peaks"
    fit.extra["peaks"] = centres[maxima]
    fit.extra["window"] = (float(c - half), float(c + half))
    return fit


def dark_current_from_peaks(centres: np.ndarray, counts: np.ndarray, nskips: int) -> Fit:
    """2021 fallback darkCurrent: Gaussian per peak (+2 extrapolated), Poisson pmf fit to the counts."""
    y = np.asarray(counts, float)
    maxima, _ = _find_peaks_2021(y, nskips)
    maxima = maxima[: NPOISSON - 2]  # electron peaks 0 ... 7 (+2 extrapolated)
    if len(maxima) < 2:
        return Fit.failed(1, "peaks", f"{len(maxima)} peak(s) found; need 2")
    pos = centres[maxima]
    spacing = float(np.mean(np.diff(pos)))
    pos = np.concatenate([pos, pos[-1] + spacing * np.arange(1, 3)])
    n_k = []
    for p in pos:
        sel = (centres >= p - spacing / 2) & (centres < p + spacing / 2)
        if sel.sum() < 3:
            n_k.append(0.0)
            continue
        g = fit_gaussian(centres[sel], y[sel], [max(y[sel].max(), 1.0), p, spacing / 4])
        n_k.append(g.params[0] * np.sqrt(2 * np.pi) * g.params[2] if g.ok and g.params[0] > 0 else 0.0)
    n_k = np.asarray(n_k)
    if n_k.sum() <= 0:
        return Fit.failed(1, "peaks", "no peak could be fitted")
    k = np.arange(len(n_k))
    frac = n_k / n_k.sum()
    fit = _curve_fit(lambda k, lam: stats.poisson.pmf(np.rint(k), lam), k, frac,
                     [float((k * frac).sum())], "peaks", bounds=([0.0], [np.inf]))
    return fit
