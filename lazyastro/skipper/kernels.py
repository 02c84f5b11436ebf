"""Pure numpy kernels for skipper statistics (no dask, no files).

Statistics are built on :class:`ValueCounts`: exact counts of integer ADU codes (a
histogram with 1-ADU bins whose range grows as blocks are combined), from which the
median, MAD, entropy, windowed histograms and tail counts follow exactly. A value is
``code * unit`` (``unit = 1/n`` for an average over ``n`` skips, whose codes are sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ValueCounts", "to_codes", "value_counts", "block_summary", "combine_summaries",
    "weighted_median", "median_mad", "counts_in_bins", "count_below", "count_above", "entropy",
    "entropy_1adu", "moving_average", "extrema", "cluster_trials", "cluster_variances",
    "MAD_SCALE_LEGACY", "MAD_SCALE_NORMAL",
]

MAD_SCALE_LEGACY = 1.4826
MAD_SCALE_NORMAL = 1.482602218505602  # 1 / Phi^-1(3/4), scipy's scale="normal"
DEFAULT_MAX_BINS = 2**22


@dataclass
class ValueCounts:
    """Counts of integer codes ``lo, lo+step, ...`` (bin i holds codes ``[lo+i*step, lo+(i+1)*step)``).

    ``step == 1`` (the normal case) makes every derived statistic exact.

    >>> vc = value_counts(np.array([3, 5, 5, 6]))
    >>> vc.lo, vc.counts.tolist()
    (3, [1, 0, 2, 1])
    """

    lo: int
    counts: np.ndarray
    step: int = 1

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def codes(self) -> np.ndarray:
        """Code at the start of each bin."""
        return self.lo + self.step * np.arange(len(self.counts), dtype=np.int64)

    def coarsen(self, step: int) -> ValueCounts:
        """Merge bins to a coarser power-of-two ``step`` (aligned to multiples of ``step``)."""
        if step == self.step:
            return self
        lo = (self.lo // step) * step
        idx = (self.codes() - lo) // step
        return ValueCounts(lo, np.bincount(idx, weights=self.counts).astype(np.int64), step)

    def __add__(self, other: ValueCounts) -> ValueCounts:
        step = max(self.step, other.step)
        a, b = self.coarsen(step), other.coarsen(step)
        lo = min(a.lo, b.lo)
        hi = max(a.lo + step * len(a.counts), b.lo + step * len(b.counts))
        out = np.zeros((hi - lo) // step, dtype=np.int64)
        for v in (a, b):
            i = (v.lo - lo) // step
            out[i : i + len(v.counts)] += v.counts
        return ValueCounts(lo, out, step)

    def trimmed(self, max_bins: int = DEFAULT_MAX_BINS) -> ValueCounts:
        """Coarsen (doubling ``step``) until at most ``max_bins`` bins remain."""
        out = self
        while len(out.counts) > max_bins:
            out = out.coarsen(out.step * 2)
            nz = np.flatnonzero(out.counts)
            out = ValueCounts(out.lo + out.step * int(nz[0]), out.counts[nz[0] : nz[-1] + 1], out.step)
        return out


def to_codes(block: np.ndarray) -> np.ndarray:
    """Physical ADU values -> int64 codes (floats rounded to the nearest ADU, non-finite -> 0)."""
    if block.dtype.kind in "iub":
        return block.astype(np.int64, copy=False)
    out = np.rint(block)
    out[~np.isfinite(out)] = 0
    return out.astype(np.int64)


def value_counts(codes: np.ndarray, max_bins: int = DEFAULT_MAX_BINS) -> ValueCounts:
    """Exact counts of integer codes (coarsened only if the range exceeds ``max_bins``)."""
    codes = np.asarray(codes, dtype=np.int64).ravel()
    if codes.size == 0:
        return ValueCounts(0, np.zeros(0, np.int64))
    lo, hi = int(codes.min()), int(codes.max())
    step = 1
    while (hi - lo) // step + 1 > max_bins:
        step *= 2
    lo = (lo // step) * step
    counts = np.bincount((codes - lo) // step if step > 1 else codes - lo)
    return ValueCounts(lo, counts.astype(np.int64), step)


def block_summary(
    block: np.ndarray, skip_start: int, nper_skip: int, max_bins: int = DEFAULT_MAX_BINS
) -> dict:
    """Counts of all values of a ``(row, col, skip)`` block and of each skip ``< nper_skip``.

    Also counts non-finite values (NaN/inf) so the caller can reject the file.
    """
    bad = 0 if block.dtype.kind in "iub" else int(np.count_nonzero(~np.isfinite(block)))
    codes = to_codes(block)
    per_skip = {
        skip_start + k: value_counts(codes[:, :, k], max_bins)
        for k in range(codes.shape[2])
        if skip_start + k < nper_skip
    }
    return {"all": value_counts(codes, max_bins), "skips": per_skip, "nonfinite": bad}


def combine_summaries(a: dict, b: dict, max_bins: int = DEFAULT_MAX_BINS) -> dict:
    """Merge two :func:`block_summary` results (associative, so any tree order works)."""
    skips = dict(a["skips"])
    for k, v in b["skips"].items():
        skips[k] = (skips[k] + v).trimmed(max_bins) if k in skips else v
    return {"all": (a["all"] + b["all"]).trimmed(max_bins), "skips": skips,
            "nonfinite": a["nonfinite"] + b["nonfinite"]}


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` repeated ``weights`` times, numpy convention (mean of the two middles).

    >>> weighted_median(np.array([1, 2, 10]), np.array([1, 2, 1]))
    2.0
    """
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, dtype=np.float64)[order], np.asarray(weights)[order]
    cum = np.cumsum(w)
    n = int(cum[-1]) if len(cum) else 0
    if n == 0:
        return float("nan")
    lo = v[np.searchsorted(cum, (n - 1) // 2, side="right")]
    hi = v[np.searchsorted(cum, n // 2, side="right")]
    return float((lo + hi) / 2)


def median_mad(vc: ValueCounts, unit: float = 1.0, scale: float = MAD_SCALE_NORMAL) -> tuple[float, float]:
    """Exact median and ``scale * median(|x - median|)`` of the counted values (value = code * unit)."""
    if vc.total == 0:
        return float("nan"), float("nan")
    centres = vc.codes() + (vc.step - 1) / 2
    med = weighted_median(centres, vc.counts)
    mad = weighted_median(np.abs(centres - med), vc.counts)
    return med * unit, scale * mad * unit


def _codes_below(vc: ValueCounts, x, unit: float, inclusive: bool = False):
    """Number of values ``< x`` (or ``<= x``) for scalar or array ``x``; exact for ``step == 1``."""
    y = np.asarray(x, dtype=np.float64) / unit
    yr = np.round(y)
    y = np.where(np.abs(y - yr) <= 1e-9 * np.maximum(1.0, np.abs(y)), yr, y)
    # codes c with c < y  <=>  c <= ceil(y) - 1 ; inclusive: c <= floor(y)
    last = np.floor(y) if inclusive else np.ceil(y) - 1
    pos = np.clip((last + 1 - vc.lo) / vc.step, 0, len(vc.counts))  # bins at or below `last`
    cum = np.concatenate([[0], np.cumsum(vc.counts)]).astype(np.float64)
    i = np.floor(pos).astype(np.int64)
    out = cum[i]
    if vc.step > 1:  # linear interpolation inside a coarsened bin
        nxt = cum[np.minimum(i + 1, len(vc.counts))]
        out = out + (pos - i) * (nxt - out)
    return out if out.ndim else float(out)


def count_below(vc: ValueCounts, x: float, unit: float = 1.0) -> float:
    """Number of values strictly below ``x``."""
    return _codes_below(vc, x, unit)


def count_above(vc: ValueCounts, x: float, unit: float = 1.0) -> float:
    """Number of values strictly above ``x``."""
    return vc.total - _codes_below(vc, x, unit, inclusive=True)


def counts_in_bins(vc: ValueCounts, edges: np.ndarray, unit: float = 1.0, closed_last: bool = True) -> np.ndarray:
    """Histogram of the counted values over ``edges`` (like ``np.histogram``; last bin closed)."""
    edges = np.asarray(edges, dtype=np.float64)
    if len(edges) < 2:
        return np.zeros(0, dtype=np.int64)
    below = np.asarray(_codes_below(vc, edges, unit), dtype=np.float64).copy()
    if closed_last:
        below[-1] = _codes_below(vc, edges[-1], unit, inclusive=True)
    return np.rint(np.diff(below)).astype(np.int64)


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy ``-sum p ln p`` (nats) of a histogram; empty bins contribute 0.

    >>> round(entropy(np.array([1, 1, 0, 2])), 4)
    1.0397
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum()
    if n <= 0:
        return float("nan")
    p = counts[counts > 0] / n
    return float(-(p * np.log(p)).sum())


def entropy_1adu(vc: ValueCounts, unit: float = 1.0, legacy: bool = False) -> float:
    """Entropy of the values in 1-ADU bins starting at the minimum value.

    Legacy edges are ``np.arange(min, max + 1)`` with the last bin closed (for integer data the
    two largest values share a bin); the default gives every 1-ADU bin its own count.
    """
    nz = np.flatnonzero(vc.counts)
    if len(nz) == 0:
        return float("nan")
    vmin = (vc.lo + vc.step * nz[0]) * unit
    vmax = (vc.lo + vc.step * nz[-1] + vc.step - 1) * unit
    if legacy:
        edges = np.arange(vmin, vmax + 1)
    else:
        edges = vmin + np.arange(int(np.floor(vmax - vmin + 1e-9)) + 2, dtype=np.float64)
    if len(edges) < 2:
        return 0.0
    return entropy(counts_in_bins(vc, edges, unit, closed_last=legacy))


def moving_average(counts: np.ndarray, width: int) -> np.ndarray:
    """``np.convolve(counts, ones(width)/width, "same")``."""
    return np.convolve(np.asarray(counts, dtype=np.float64), np.ones(width) / width, mode="same")


def extrema(d: np.ndarray, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``i`` of maxima (``d[i-1] > t``, ``d[i] < -t``) and minima (``d[i-1] < -t``, ``d[i] > t``) of a derivative."""
    d = np.asarray(d)
    prev, cur = d[:-1], d[1:]
    maxima = np.flatnonzero((prev > threshold) & (cur < -threshold)) + 1
    minima = np.flatnonzero((prev < -threshold) & (cur > threshold)) + 1
    return maxima, minima


def cluster_trials(
    shape: tuple[int, int, int], skip_offset: int, ntrials: int, rng: np.random.Generator,
    legacy: bool = False,
) -> tuple[np.ndarray, int, int, int] | None:
    """Random blocks for ``clustVar``: top-left ``(r0, c0)`` and skip per trial, edges ``(e_r, e_c)``.

    Returns ``(trials[ntrials, 3], e_r, e_c, npix)`` or ``None`` if the statistic does not apply.
    The default lets a block touch the last row/column; ``legacy`` keeps the legacy exclusive bound.
    """
    nrows, ncols, nskips = shape
    npix = nskips - skip_offset
    if npix < 2:
        return None
    e_r = min(int(np.ceil(np.sqrt(npix))), nrows)
    e_c = int(np.ceil(npix / e_r))
    extra = 0 if legacy else 1
    nr, nc = nrows - e_r + extra, ncols - e_c + extra
    if nr < 1 or nc < 1:
        return None
    trials = np.stack([
        rng.integers(0, nr, ntrials), rng.integers(0, nc, ntrials),
        rng.integers(skip_offset, nskips, ntrials),
    ], axis=1)
    return trials, e_r, e_c, npix


def cluster_variances(
    block: np.ndarray, row_start: int, skip_start: int, trials: np.ndarray, e_r: int, npix: int
) -> np.ndarray:
    """Population variance of the ``npix`` pixels of each trial's block at its skip.

    ``block`` holds rows ``row_start ...`` (enough rows below every trial's ``r0``) and skips
    ``skip_start ...``; pixel ``i`` of a block is at ``(r0 + i % e_r, c0 + i // e_r)``.
    Integer data use exact integer moments, so the result does not depend on chunking.
    """
    i = np.arange(npix)
    dr, dc = i % e_r, i // e_r
    out = np.empty(len(trials))
    used = np.unique(trials[:, 2]) - skip_start
    # skip-major copy of the skips in use: every trial then reads one compact image region
    images = np.ascontiguousarray(np.moveaxis(block[:, :, used], 2, 0)).reshape(len(used), -1)
    where = np.searchsorted(used, trials[:, 2] - skip_start)
    ncols = block.shape[1]
    offs = dr * ncols + dc
    per = max(1, 2**20 // npix)  # trials gathered at once (~8 MiB of int64)
    for t0 in range(0, len(trials), per):
        r0, c0, k = (a[t0 : t0 + per][:, None] for a in (trials[:, 0], trials[:, 1], where))
        vals = images.ravel()[k * images.shape[1] + (r0 - row_start) * ncols + c0 + offs]
        if vals.dtype.kind in "iu" and np.abs(vals).max(initial=0) < 2**20:
            v = vals.astype(np.int64)
            s1, s2 = v.sum(axis=1), (v * v).sum(axis=1)
            out[t0 : t0 + per] = (npix * s2 - s1 * s1) / float(npix * npix)
        else:
            out[t0 : t0 + per] = vals.astype(np.float64).var(axis=1)
    return out
