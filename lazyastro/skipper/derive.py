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
    return ValueCounts(vc.lo, counts, vc.step, vc.shift, vc.sparse_codes, vc.lossy)


def img_noise(skips: dict[int, ValueCounts], version: str, legacy: bool, scale: float) -> float:
    """Mean fitted Gaussian sigma of the first raw skip images (ADU)."""
    sigmas = []
    for s in sorted(skips):
        vc = skips[s] if version == "2019" else _positive(skips[s])
        med, mad = median_mad(vc, 1, scale)
        if version != "2019":
            mad = max(mad, 1.0)
        if not np.isfinite(mad) or mad <= 0:
            continue
        edges = np.arange(med - 3 * mad, med + 3 * mad)
        h = counts_in_bins(vc, edges)
        x = edges[:-1] + (1.0 if legacy else 0.5)
        fit = fitting.fit_gaussian(x, h, [vc.total / np.sqrt(2 * np.pi * mad**2), med, mad], legacy=legacy)
        if fit.ok:
            sigmas.append(fit.params[2])
    return float(np.mean(sigmas)) if sigmas else NAN


def ds_dskip(skips: dict[int, ValueCounts], nskips: int, legacy: bool) -> tuple[float, float]:
    """Slope of the skip-image entropy over the first skips, in milli-nats per skip."""
    if nskips < 2:
        return NAN, NAN
    idx = [s for s in sorted(skips) if s < min(nskips, NSKIPS_ENTROPY)]
    ent = np.array([entropy_1adu(skips[s], 1, legacy) for s in idx])
    fit = fitting.fit_line(np.array(idx, float), ent)
    return 1e3 * float(fit.params[1]), 1e3 * float(fit.errors[1])


def tail_ratio_2019(vc: ValueCounts, scale: float, legacy: bool = False) -> float:
    """Low-tail ratio of all raw values: ``#(x < mu - 4 sigma) / (N Phi(-4))``.

    Histogram over ``med +- 4 mad`` (``arange`` edges, 1-ADU bins, x = bin centres), Gaussian
    start ``[N / sqrt(2 pi sg^2), centre bin, sg = range / 8]`` with ``N`` all values.
    """
    med, mad = median_mad(vc, 1, scale)
    if not np.isfinite(mad) or mad <= 0:
        return NAN
    edges = np.arange(med - 4 * mad, med + 4 * mad)
    if len(edges) < 4:
        return NAN
    h = counts_in_bins(vc, edges)
    x = edges[:-1] + 0.5
    sg = (edges[-1] - edges[0]) / 8
    fit = fitting.fit_gaussian(x, h, [vc.total / np.sqrt(2 * np.pi * sg**2), x[len(x) // 2], sg], legacy=legacy)
    if not fit.ok:
        return NAN
    _a, mu, sigma = fit.params
    xt = mu - 4 * sigma
    return float(count_below(vc, xt) / (vc.total * stats.norm.cdf((xt - mu) / sigma)))


def hist_2021(vc: ValueCounts, denom: int, scale: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """2021 histogram helper: 1-ADU bins over ``med +- 100`` (or ``+- 3 mad``); returns edges, counts."""
    med, mad = median_mad(vc, denom, scale)
    mad = max(mad, 1.0)
    if 6 * mad < 200:
        edges = np.arange(np.floor(med - 100), np.ceil(med + 100), 1.0)
    else:
        edges = np.arange(med - 3 * mad, med + 3 * mad, 1.0)
    return edges, counts_in_bins(vc, edges, denom), med, mad


def hist_2019_avg(vc: ValueCounts, denom: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """2019 skNoise histogram of the average image: ``med +- 6 mad``, at least 100 ADU wide."""
    med, mad = median_mad(vc, denom, scale)
    half = max(6 * mad, 50.0) if np.isfinite(mad) else 50.0
    edges = np.arange(med - half, med + half, 1.0)
    return edges, counts_in_bins(vc, edges, denom)


def _unresolved(fit: fitting.Fit, value: float, err: float, version: str, mad: float) -> str:
    """Why a converged noise fit measures nothing (default mode), or ``""`` when it is fine.

    A fit whose error is not below half its value is unresolved. The peak finder's Gaussian
    must also describe an electron peak: with several peaks, narrower than half their
    spacing; with one, as wide as the distribution (0.5 ... 2 MAD). Otherwise the "peaks"
    are noise bumps and the fitted width is meaningless.
    """
    if not (np.isfinite(err) and err < 0.5 * abs(value)):
        return f"unresolved: error {err:.3g} ADU is not below 50% of sigma {value:.3g} ADU"
    if fit.method != "peaks" or version == "2019":
        return ""
    peaks = np.asarray(fit.extra.get("peaks", []))
    if len(peaks) >= 2:
        spacing = float(np.mean(np.diff(peaks)))
        if value >= 0.5 * spacing:
            return (f"electron peaks not resolved: fitted sigma {value:.3g} ADU >= half the mean spacing "
                    f"({spacing / 2:.3g} ADU) of {len(peaks)} maxima (noise bumps)")
    elif np.isfinite(mad) and not 0.5 * mad <= value <= 2 * mad:
        return f"single peak: fitted sigma {value:.3g} ADU does not match the MAD {mad:.3g} ADU"
    return ""


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
    denom = int(meta["n_average"])
    out: dict[str, Any] = {"filename": meta["path"], "nskips": nskips}
    out["aveImgS"] = entropy_1adu(avg_counts, denom, legacy)
    out["dSdskip"], out["dSdskip_err"] = ds_dskip(summary["skips"], nskips, legacy)
    out["imgNoise"] = img_noise(summary["skips"], version, legacy, scale)

    # Noise, dark current and gain from the average image.
    if version == "2019":
        edges, h = hist_2019_avg(avg_counts, denom, scale)
        centres = edges[:-1] + 0.5
        fit = fitting.peak_noise_2019(centres, h, nskips, legacy=legacy)
        pg = fitting.Fit.failed(5, "poisson_gauss", "not used by the 2019 variables")
        flip = False
    else:
        edges, h, _med, mad = hist_2021(avg_counts, denom, scale)
        centres = edges[:-1] + 0.5
        flip = meta["polarity"] < 0
        h = h[::-1] if flip else h
        pg = fitting.fit_poisson_gauss(centres, h, avg_counts.total, mad, legacy=legacy)
        fit = pg if pg.ok else fitting.peak_noise_2021(centres, h, nskips, mad)
        if not pg.ok and not fit.ok:
            fit.reason = f"Poisson (x) Gaussian: {pg.reason}; peak finder: {fit.reason}"
        elif not pg.ok:
            fit.extra["pg_reason"] = pg.reason
    i_sigma = 0 if fit.method == "poisson_gauss" else 2
    value, err = (float(fit.params[i_sigma]), float(fit.errors[i_sigma])) if fit.ok else (NAN, NAN)
    reason = fit.reason
    if fit.ok and not legacy:
        reason = _unresolved(fit, value, err, version, mad if version != "2019" else NAN)
        if reason:
            value, err = NAN, NAN
    out["skNoise"], out["skNoise_err"] = value, err
    out["skNoise_method"] = fit.method if np.isfinite(value) else "failed"
    out["skNoise_reason"] = "" if np.isfinite(value) else (reason or "fit failed")

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
                n_tail = count_below(avg_counts, edges[0] + last - xt, denom)
            else:
                n_tail = count_above(avg_counts, xt, denom)
            out["tailRatio"], out["tailRatio_method"] = float(n_tail / n_exp), "poisson_gauss"
    if version == "2019" or (not pg.ok and not legacy):
        out["tailRatio"], out["tailRatio_method"] = tail_ratio_2019(summary["all"], scale, legacy), "gauss_low_tail"

    if pg.ok:
        out["darkCurrent"], out["darkCurrent_err"] = float(pg.params[1]), float(pg.errors[1])
        out["aduConversion"], out["aduConversion_err"] = float(pg.params[3]), float(pg.errors[3])
    else:
        dc = fitting.dark_current_from_peaks(centres, h, nskips) if version != "2019" else pg
        # a fallback estimate with a relative error above 50% is noise, not a measurement
        ok = dc.ok and len(dc.params) == 1 and bool(dc.errors[0] < 0.5 * abs(dc.params[0]))
        # default: counting electron peaks needs resolved peaks (the skNoise fallback said so)
        ok = ok and (legacy or out["skNoise_method"] == "peaks")
        out["darkCurrent"], out["darkCurrent_err"] = (float(dc.params[0]), float(dc.errors[0])) if ok else (NAN, NAN)
        out["aduConversion"], out["aduConversion_err"] = NAN, NAN
    # exact: every value was counted in its own 1-ADU code (no coarsening, no rounding)
    out["exact"] = bool(summary["all"].exact and avg_counts.exact and not summary.get("rounded", 0)
                        and all(v.exact for v in summary["skips"].values()))
    out["_plot"] = {
        "centres": centres, "counts": h, "flipped": flip, "method": out["skNoise_method"],
        "params": fit.params if np.isfinite(out["skNoise"]) else None, "reason": out["skNoise_reason"],
        "window": fit.extra.get("window"), "version": version,
    }
    return out
