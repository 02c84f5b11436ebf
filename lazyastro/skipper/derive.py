"""Statistics of one file from its reduced summaries (pure numpy; runs as the last task).

Inputs are the exact value counts of the raw skips, of the first skips one by one and of
the average image, plus sampled per-pixel and per-block variances. NaN marks a value that
does not apply or whose fit failed (the legacy text writer prints it as ``-1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from . import fitting
from .kernels import (
    MAD_SCALE_LEGACY,
    MAD_SCALE_NORMAL,
    ValueCounts,
    count_above,
    count_below,
    counts_in_bins,
    entropy_1adu,
    median_mad,
)

__all__ = ["derive_statistics", "NSKIPS_ENTROPY", "NSKIPS_NOISE"]

NSKIPS_ENTROPY = 30
NSKIPS_NOISE = 50
NAN = float("nan")


def _positive(vc: ValueCounts) -> ValueCounts:
    counts = vc.counts.copy()
    counts[vc.codes() + vc.step - 1 <= 0] = 0
    return ValueCounts(vc.lo, counts, vc.step)


def img_noise(skips: dict[int, ValueCounts], version: str, legacy: bool, scale: float) -> float:
    """Mean fitted Gaussian sigma of the first raw skip images (ADU)."""
    sigmas = []
    for s in sorted(skips):
        vc = skips[s] if version == "2019" else _positive(skips[s])
        med, mad = median_mad(vc, 1.0, scale)
        if version != "2019":
            mad = max(mad, 1.0)
        if not np.isfinite(mad) or mad <= 0:
            continue
        edges = np.arange(med - 3 * mad, med + 3 * mad)
        h = counts_in_bins(vc, edges)
        x = edges[:-1] + (1.0 if legacy else 0.5)
        fit = fitting.fit_gaussian(x, h, [vc.total / np.sqrt(2 * np.pi * mad**2), med, mad])
        if fit.ok:
            sigmas.append(fit.params[2])
    return float(np.mean(sigmas)) if sigmas else NAN


def ds_dskip(skips: dict[int, ValueCounts], nskips: int, legacy: bool) -> tuple[float, float]:
    """Slope of the skip-image entropy over the first skips, in milli-nats per skip."""
    if nskips < 2:
        return NAN, NAN
    idx = [s for s in sorted(skips) if s < min(nskips, NSKIPS_ENTROPY)]
    ent = np.array([entropy_1adu(skips[s], 1.0, legacy) for s in idx])
    fit = fitting.fit_line(np.array(idx, float), ent)
    return 1e3 * float(fit.params[1]), 1e3 * float(fit.errors[1])


def tail_ratio_2019(vc: ValueCounts, scale: float) -> float:
    """Low-tail ratio of all raw values: ``#(x < mu - 4 sigma) / (N Phi(-4))``."""
    med, mad = median_mad(vc, 1.0, scale)
    if not np.isfinite(mad) or mad <= 0:
        return NAN
    edges = np.arange(med - 4 * mad, med + 4 * mad)
    h = counts_in_bins(vc, edges)
    x = edges[:-1] + 0.5
    sg = (edges[-1] - edges[0]) / 8
    fit = fitting.fit_gaussian(x, h, [h.sum() / np.sqrt(2 * np.pi * sg**2), x[len(x) // 2], sg])
    if not fit.ok:
        return NAN
    _a, mu, sigma = fit.params
    xt = mu - 4 * sigma
    return float(count_below(vc, xt) / (vc.total * stats.norm.cdf((xt - mu) / sigma)))


def hist_2021(vc: ValueCounts, unit: float, scale: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """2021 histogram helper: 1-ADU bins over ``med +- 100`` (or ``+- 3 mad``); returns edges, counts."""
    med, mad = median_mad(vc, unit, scale)
    mad = max(mad, 1.0)
    if 6 * mad < 200:
        edges = np.arange(np.floor(med - 100), np.ceil(med + 100), 1.0)
    else:
        edges = np.arange(med - 3 * mad, med + 3 * mad, 1.0)
    return edges, counts_in_bins(vc, edges, unit), med, mad


def hist_2019_avg(vc: ValueCounts, unit: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """2019 skNoise histogram of the average image: ``med +- 6 mad``, at least 100 ADU wide."""
    med, mad = median_mad(vc, unit, scale)
    half = max(6 * mad, 50.0) if np.isfinite(mad) else 50.0
    edges = np.arange(med - half, med + half, 1.0)
    return edges, counts_in_bins(vc, edges, unit)


def derive_statistics(
    summary: dict,
    avg_counts: ValueCounts,
    pix_variances: np.ndarray | None,
    clust_variances: np.ndarray | None,
    meta: dict,
) -> dict[str, Any]:
    """All legacy variables of one file from its reduced summaries (see the module docstring)."""
    legacy, version = meta["legacy"], meta["version"]
    nskips = meta["nskips"]
    scale = MAD_SCALE_LEGACY if legacy else MAD_SCALE_NORMAL
    unit = 1.0 / meta["n_average"]
    out: dict[str, Any] = {"filename": meta["path"], "nskips": nskips}
    out["aveImgS"] = entropy_1adu(avg_counts, unit, legacy)
    out["dSdskip"], out["dSdskip_err"] = ds_dskip(summary["skips"], nskips, legacy)
    out["imgNoise"] = img_noise(summary["skips"], version, legacy, scale)

    # Noise, dark current and gain from the average image.
    if version == "2019":
        edges, h = hist_2019_avg(avg_counts, unit, scale)
        centres = edges[:-1] + 0.5
        fit = fitting.peak_noise_2019(centres, h, nskips)
        pg = fitting.Fit.failed(5, "poisson_gauss")
        flip = False
    else:
        edges, h, _med, mad = hist_2021(avg_counts, unit, scale)
        centres = edges[:-1] + 0.5
        flip = meta["polarity"] < 0
        h = h[::-1] if flip else h
        pg = fitting.fit_poisson_gauss(centres, h, avg_counts.total, mad, legacy=legacy)
        fit = pg if pg.ok else fitting.peak_noise_2021(centres, h, nskips, mad)
    out["skNoise"], out["skNoise_err"] = (
        (float(fit.params[0]), float(fit.errors[0])) if fit.method == "poisson_gauss"
        else (float(fit.params[2]), float(fit.errors[2]))
    ) if fit.ok else (NAN, NAN)
    out["skNoise_method"] = fit.method if fit.ok else "failed"

    out["pixVar"] = float(np.median(pix_variances)) if pix_variances is not None and len(pix_variances) else NAN
    out["clustVar"] = float(np.median(clust_variances)) if clust_variances is not None and len(clust_variances) else NAN

    # Tail ratio: 2021 from the Poisson (x) Gaussian model of the average image, else 2019 on raw skips.
    out["tailRatio"] = NAN
    out["tailRatio_method"] = "none"
    if version != "2019" and pg.ok:
        last = edges[-1]
        xt = fitting.pg_tail_threshold(pg.params, edges[0], last)
        n_exp = pg.params[4] * fitting.Q4
        if np.isfinite(xt) and n_exp > 0:
            if flip and not legacy:  # count in the flipped coordinates the model was fitted in
                n_tail = count_below(avg_counts, edges[0] + last - xt, unit)
            else:
                n_tail = count_above(avg_counts, xt, unit)
            out["tailRatio"], out["tailRatio_method"] = float(n_tail / n_exp), "poisson_gauss"
    if version == "2019" or (not pg.ok and not legacy):
        out["tailRatio"], out["tailRatio_method"] = tail_ratio_2019(summary["all"], scale), "gauss_low_tail"

    if pg.ok:
        out["darkCurrent"], out["darkCurrent_err"] = float(pg.params[1]), float(pg.errors[1])
        out["aduConversion"], out["aduConversion_err"] = float(pg.params[3]), float(pg.errors[3])
    else:
        dc = fitting.dark_current_from_peaks(centres, h, nskips) if version != "2019" else pg
        # a fallback estimate with a relative error above 50% is noise, not a measurement
        ok = dc.ok and len(dc.params) == 1 and bool(dc.errors[0] < 0.5 * abs(dc.params[0]))
        out["darkCurrent"], out["darkCurrent_err"] = (float(dc.params[0]), float(dc.errors[0])) if ok else (NAN, NAN)
        out["aduConversion"], out["aduConversion_err"] = NAN, NAN
    out["exact"] = bool(summary["all"].step == 1 and avg_counts.step == 1)
    out["_plot"] = {
        "centres": centres, "counts": h, "flipped": flip, "method": out["skNoise_method"],
        "params": fit.params if fit.ok else None,
    }
    return out
