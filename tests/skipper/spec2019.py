"""A literal numpy/scipy transcription of the 2019 variable definitions of the skipper spec
(../shared/specs/skipper.md, sections 3 and 4), on a whole in-memory cube.

Written from the spec's wording only, independently of lazyastro's implementation, so the
tests can check that ``legacy=True, version="2019"`` reproduces it. Each function returns
what the legacy table prints before formatting; ``None`` is the legacy ``-1``.
"""

import numpy as np
from scipy.optimize import curve_fit
from scipy.stats import norm

MAD = 1.4826  # the legacy SciPy MAD scale


def med_mad(x):
    med = np.median(x)
    return med, MAD * np.median(np.abs(x - med))


def fit(f, x, y, p0):
    """``curve_fit`` (SciPy defaults); ``None`` where it gives up (the legacy tool would stop there)."""
    try:
        return curve_fit(f, x, y, p0=p0)
    except RuntimeError:
        return None, None


def gauss(x, a, mu, sigma):
    return a * np.exp(-((x - mu) ** 2) / (2 * sigma**2))


def entropy(values):
    """Entropy (nats) of a 1-ADU histogram with edges ``arange(min, max + 1)``."""
    edges = np.arange(values.min(), values.max() + 1)
    h, _ = np.histogram(values, edges)
    p = h / h.sum()
    p = p[p > 0]
    return -(p * np.log(p)).sum()


def ave_img_s(cube):
    return entropy(cube.mean(axis=2))


def ds_dskip(cube):
    nskips = cube.shape[2]
    if nskips == 1:
        return None
    i = np.arange(min(nskips, 30))
    s = np.array([entropy(cube[:, :, k]) for k in i])
    p, cov = curve_fit(lambda x, p0, p1: p0 + p1 * x, i, s, p0=[s.mean(), 0])
    return 1e3 * p[1], 1e3 * np.sqrt(cov[1, 1])


def img_noise(cube):
    sigmas = []
    for k in range(min(cube.shape[2], 50)):
        x = cube[:, :, k].astype(float)
        med, mad = med_mad(x)
        edges = np.arange(med - 3 * mad, med + 3 * mad)
        h, _ = np.histogram(x, edges)
        xb = edges[:-1] + 1  # left edge + 1 ADU
        p, _ = fit(gauss, xb, h, [x.size / np.sqrt(2 * np.pi * mad**2), med, mad])
        if p is not None:
            sigmas.append(p[2])
    return np.mean(sigmas)


def sk_noise(cube):
    """Peak finder on the average image; also returns the histogram, window and fit for checks."""
    nskips = cube.shape[2]
    avg = cube.mean(axis=2)
    med, mad = med_mad(avg)
    lo, hi = med - 6 * mad, med + 6 * mad
    if hi - lo < 100:
        lo, hi = med - 50, med + 50
    edges = np.arange(lo, hi)
    h, _ = np.histogram(avg, edges)
    centres = edges[:-1] + 0.5
    w = 4 if nskips > 1 else 12
    d = np.diff(np.convolve(h, np.ones(w) / w, mode="same"))
    maxima = [i for i in range(1, len(d)) if d[i - 1] > 0 and d[i] < 0]
    minima = [i for i in range(1, len(d)) if d[i - 1] < 0 and d[i] > 0]
    if len(minima) < 2:
        return None
    a, b = minima[-2], minima[-1]
    peak = maxima[-2] if maxima[-1] > minima[-1] else maxima[-1]
    width = centres[b] - centres[a]
    p, cov = fit(gauss, centres[a : b + 1], h[a : b + 1], [h[peak], centres[peak], width / 6])
    return None if p is None else (p[2], np.sqrt(cov[2, 2]))


def tail_ratio(cube):
    x = cube.astype(float).ravel()
    med, mad = med_mad(x)
    edges = np.arange(med - 4 * mad, med + 4 * mad)
    h, _ = np.histogram(x, edges)
    centres = edges[:-1] + 0.5
    sg = (edges[-1] - edges[0]) / 8
    p, _ = fit(gauss, centres, h, [x.size / np.sqrt(2 * np.pi * sg**2), centres[len(centres) // 2], sg])
    if p is None:
        return None
    _a, mu, sigma = p
    xt = mu - 4 * sigma
    return np.count_nonzero(x < xt) / (x.size * norm.cdf((xt - mu) / sigma))
