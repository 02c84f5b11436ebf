"""Kernels for skipper statistics: pure functions on in-memory blocks (no dask, no files).

Every kernel takes its array module from its input (:func:`lazyastro.core.backend.array_namespace`),
so the same code runs on numpy and on CuPy blocks.

Statistics are built on :class:`ValueCounts`: exact counts of integer ADU codes (a
histogram with 1-ADU bins whose range grows as blocks are combined), from which the
median, MAD, entropy, windowed histograms and tail counts follow exactly. A value is
``code / denom`` (``denom = n`` for the average over ``n`` skips, whose codes are sums),
computed with the same float division ``numpy.mean`` uses, so windows and bin edges
agree with a numpy computation on the values to the last bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.backend import array_namespace

__all__ = [
    "ValueCounts", "to_codes", "value_counts", "block_summary", "combine_summaries",
    "weighted_median", "median_mad", "counts_in_bins", "count_below", "count_above", "entropy",
    "entropy_1adu", "float_counts", "moving_average", "extrema", "cluster_trials", "cluster_variances",
    "exact_variance", "to_host", "MAD_SCALE_LEGACY", "MAD_SCALE_NORMAL",
]

MAD_SCALE_LEGACY = 1.4826
MAD_SCALE_NORMAL = 1.482602218505602  # 1 / Phi^-1(3/4), scipy's scale="normal"
DEFAULT_MAX_BINS = 2**22


@dataclass
class ValueCounts:
    """Counts of integer codes ``lo, lo+step, ...`` (bin i holds codes ``[lo+i*step, lo+(i+1)*step)``).

    ``step == 1`` (the normal case) makes every derived statistic exact. ``counts`` is a
    numpy or CuPy array (the module of the block it was counted from).

    Non-integer float data are counted exactly too: each value ``x`` becomes the integer
    code ``x * 2**shift`` (exact for binary floats), kept *sparse* (``sparse_codes``: the
    sorted distinct codes, one count each) because such codes are far apart. A value is
    ``code / (denom * 2**shift)``. ``lossy`` is set when codes had to be merged to keep at
    most ``max_bins`` entries.

    >>> vc = value_counts(np.array([3, 5, 5, 6]))
    >>> vc.lo, vc.counts.tolist()
    (3, [1, 0, 2, 1])
    >>> fc = float_counts(np.array([0.25, 0.5, 0.5]))
    >>> fc.shift, fc.codes().tolist(), fc.counts.tolist()
    (2, [1, 2], [1, 2])
    """

    lo: int
    counts: Any
    step: int = 1
    shift: int = 0
    sparse_codes: Any = None
    lossy: bool = False

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def sparse(self) -> bool:
        return self.sparse_codes is not None

    @property
    def exact(self) -> bool:
        """Every value counted in its own code (no coarsening or merging)."""
        return self.step == 1 and not self.lossy

    def codes(self):
        """Code at the start of each bin."""
        if self.sparse_codes is not None:
            return self.sparse_codes
        xp = array_namespace(self.counts)
        return self.lo + self.step * xp.arange(len(self.counts), dtype=xp.int64)

    def coarsen(self, step: int) -> ValueCounts:
        """Merge bins to a coarser power-of-two ``step`` (aligned to multiples of ``step``)."""
        if step == self.step:
            return self
        xp = array_namespace(self.counts)
        lo = (self.lo // step) * step
        idx = (self.codes() - lo) // step
        return ValueCounts(lo, xp.bincount(idx, weights=self.counts).astype(xp.int64), step, self.shift,
                           lossy=self.lossy)

    def to_sparse(self, shift: int | None = None) -> ValueCounts:
        """The non-empty codes only, rescaled to ``shift`` (finer: exact; coarser: merged, lossy)."""
        xp = array_namespace(self.counts)
        shift = self.shift if shift is None else shift
        nz = xp.flatnonzero(self.counts)
        codes, counts = self.codes()[nz], self.counts[nz]
        lossy = self.lossy or self.step > 1
        if shift > self.shift:
            codes = codes * (1 << (shift - self.shift))
        elif shift < self.shift:
            codes = codes >> (self.shift - shift)
            lossy = True
            codes, inv = xp.unique(codes, return_inverse=True)
            counts = xp.bincount(inv.ravel(), weights=counts, minlength=len(codes)).astype(xp.int64)
        return ValueCounts(0, counts, 1, shift, codes, lossy)

    def __add__(self, other: ValueCounts) -> ValueCounts:
        xp = array_namespace(self.counts, other.counts)
        if self.sparse or other.sparse or self.shift != other.shift:
            shift = max(self.shift, other.shift)
            a, b = self.to_sparse(shift), other.to_sparse(shift)
            codes, inv = xp.unique(xp.concatenate([a.sparse_codes, b.sparse_codes]), return_inverse=True)
            counts = xp.bincount(inv.ravel(), weights=xp.concatenate([a.counts, b.counts]),
                                 minlength=len(codes)).astype(xp.int64)
            return ValueCounts(0, counts, 1, shift, codes, a.lossy or b.lossy)
        step = max(self.step, other.step)
        a, b = self.coarsen(step), other.coarsen(step)
        lo = min(a.lo, b.lo)
        hi = max(a.lo + step * len(a.counts), b.lo + step * len(b.counts))
        out = xp.zeros((hi - lo) // step, dtype=xp.int64)
        for v in (a, b):
            i = (v.lo - lo) // step
            out[i : i + len(v.counts)] += xp.asarray(v.counts)
        return ValueCounts(lo, out, step, self.shift, lossy=a.lossy or b.lossy)

    def trimmed(self, max_bins: int = DEFAULT_MAX_BINS) -> ValueCounts:
        """At most ``max_bins`` bins: sparse codes are merged (halving the resolution), dense bins coarsened."""
        xp = array_namespace(self.counts)
        out = self
        while out.sparse and len(out.counts) > max_bins:
            if out.shift == 0:  # integer codes: continue dense
                codes = out.sparse_codes
                lo = int(codes.min())
                dense = xp.bincount(codes - lo, weights=out.counts).astype(xp.int64)
                out = ValueCounts(lo, dense, 1, 0, lossy=out.lossy)
                break
            out = out.to_sparse(out.shift - 1)
        while len(out.counts) > max_bins:
            out = out.coarsen(out.step * 2)
            nz = xp.flatnonzero(out.counts)
            a, b = int(nz[0]), int(nz[-1])
            out = ValueCounts(out.lo + out.step * a, out.counts[a : b + 1], out.step, out.shift, lossy=out.lossy)
        return out

    def to_host(self) -> ValueCounts:
        """The same counts as numpy arrays."""
        from ..core.backend import to_numpy

        codes = None if self.sparse_codes is None else to_numpy(self.sparse_codes)
        return ValueCounts(self.lo, to_numpy(self.counts), self.step, self.shift, codes, self.lossy)


def to_host(summary: Any) -> Any:
    """A :func:`block_summary` result (or a ValueCounts, or an array) with numpy arrays only."""
    from ..core.backend import to_numpy

    if isinstance(summary, ValueCounts):
        return summary.to_host()
    if isinstance(summary, dict):
        return {k: to_host(v) for k, v in summary.items()}
    if hasattr(summary, "shape"):
        return to_numpy(summary)
    return summary


def to_codes(block):
    """Physical ADU values -> int64 codes (floats rounded to the nearest ADU, non-finite -> 0).

    Examples
    --------
    >>> to_codes(np.array([1.4, 1.6, np.nan])).tolist()
    [1, 2, 0]
    """
    xp = array_namespace(block)
    if block.dtype.kind in "iub":
        return block.astype(xp.int64, copy=False)
    out = xp.rint(block)
    out[~xp.isfinite(out)] = 0
    return out.astype(xp.int64)


def value_counts(codes, max_bins: int = DEFAULT_MAX_BINS) -> ValueCounts:
    """Exact counts of integer codes (coarsened only if the range exceeds ``max_bins``).

    Examples
    --------
    >>> value_counts(np.array([2, 2, 4])).counts.tolist()
    [2, 0, 1]
    """
    xp = array_namespace(codes)
    codes = xp.asarray(codes, dtype=xp.int64).ravel()
    if codes.size == 0:
        return ValueCounts(0, xp.zeros(0, xp.int64))
    lo, hi = int(codes.min()), int(codes.max())
    step = 1
    while (hi - lo) // step + 1 > max_bins:
        step *= 2
    lo = (lo // step) * step
    counts = xp.bincount((codes - lo) // step if step > 1 else codes - lo)
    return ValueCounts(lo, counts.astype(xp.int64), step)


_MAX_SHIFT = 62


def float_counts(values, max_bins: int = DEFAULT_MAX_BINS) -> ValueCounts:
    """Exact counts of the finite values of a float block (integral values: dense integer codes).

    Each value becomes the integer ``x * 2**shift`` with the smallest ``shift`` that makes all
    of them integral (binary floats always are, unless their magnitudes span more than the
    int64 range allows; then they are rounded at the finest possible ``shift``, ``lossy``).

    Examples
    --------
    >>> vc = float_counts(np.array([1.5, 2.0, 1.5, np.nan]))
    >>> vc.shift, vc.codes().tolist(), vc.counts.tolist(), vc.total
    (1, [3, 4], [2, 1], 3)
    """
    xp = array_namespace(values)
    v = xp.asarray(values, dtype=xp.float64).ravel()
    v = v[xp.isfinite(v)]
    if v.size == 0:
        return ValueCounts(0, xp.zeros(0, xp.int64))
    if bool((xp.rint(v) == v).all()) and float(xp.abs(v).max()) < 2.0**53:
        return value_counts(v.astype(xp.int64), max_bins)
    top = float(xp.abs(v).max())
    limit = max(0, min(_MAX_SHIFT, 61 - int(np.ceil(np.log2(max(top, 1e-300))))))
    shift, lossy = 0, True
    for k in range(1, limit + 1):
        if bool((xp.rint(v * 2.0**k) == v * 2.0**k).all()):
            shift, lossy = k, False
            break
    else:
        shift = limit
    codes, counts = xp.unique(xp.rint(v * 2.0**shift).astype(xp.int64), return_counts=True)
    return ValueCounts(0, counts.astype(xp.int64), 1, shift, codes, lossy).trimmed(max_bins)


def block_summary(block, skip_start: int, nper_skip: int, max_bins: int = DEFAULT_MAX_BINS) -> dict:
    """Counts of all values of a ``(row, col, skip)`` block and of each skip ``< nper_skip``.

    Also counts non-finite values (NaN/inf), so the caller can reject the file, and
    non-integer values (rounded to the nearest ADU code, so statistics are not exact).

    Examples
    --------
    >>> s = block_summary(np.arange(8).reshape(2, 2, 2), 0, 1)
    >>> s["all"].total, sorted(s["skips"]), s["nonfinite"], s["rounded"]
    (8, [0], 0, 0)
    """
    xp = array_namespace(block)
    bad = rounded = 0
    if block.dtype.kind not in "iub":
        finite = xp.isfinite(block)
        bad = int(block.size - int(xp.count_nonzero(finite)))
        if bool((xp.rint(block) != block)[finite].any()):  # fractional values: exact float counts
            per_skip = {
                skip_start + k: float_counts(block[:, :, k], max_bins)
                for k in range(block.shape[2])
                if skip_start + k < nper_skip
            }
            return {"all": float_counts(block, max_bins), "skips": per_skip, "nonfinite": bad, "rounded": 0}
    codes = to_codes(block)
    per_skip = {
        skip_start + k: value_counts(codes[:, :, k], max_bins)
        for k in range(codes.shape[2])
        if skip_start + k < nper_skip
    }
    return {"all": value_counts(codes, max_bins), "skips": per_skip, "nonfinite": bad, "rounded": rounded}


def combine_summaries(a: dict, b: dict, max_bins: int = DEFAULT_MAX_BINS) -> dict:
    """Merge two :func:`block_summary` results (associative, so any tree order works)."""
    skips = dict(a["skips"])
    for k, v in b["skips"].items():
        skips[k] = (skips[k] + v).trimmed(max_bins) if k in skips else v
    return {"all": (a["all"] + b["all"]).trimmed(max_bins), "skips": skips,
            "nonfinite": a["nonfinite"] + b["nonfinite"], "rounded": a["rounded"] + b["rounded"]}


def exact_variance(s1, s2, n: int):
    """Population variance from integer moments ``s1 = sum x``, ``s2 = sum x^2`` of ``n`` values.

    Examples
    --------
    >>> float(exact_variance(np.array(6), np.array(14), 3))
    0.6666666666666666
    """
    return (n * s2 - s1 * s1) / float(n * n)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Median of ``values`` repeated ``weights`` times, numpy convention (mean of the two middles).

    Parameters
    ----------
    values : ndarray
        Distinct values (any order).
    weights : ndarray
        Non-negative integer count of each value.

    Returns
    -------
    float
        ``np.median(np.repeat(values, weights))`` (NaN when the weights sum to 0).

    Examples
    --------
    >>> weighted_median(np.array([1, 2, 10]), np.array([1, 2, 1]))
    2.0
    """
    from ..core.backend import to_numpy

    values, weights = to_numpy(values), to_numpy(weights)  # a few distinct values: host work
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values, dtype=np.float64)[order], np.asarray(weights)[order]
    cum = np.cumsum(w)
    n = int(cum[-1]) if len(cum) else 0
    if n == 0:
        return float("nan")
    lo = v[np.searchsorted(cum, (n - 1) // 2, side="right")]
    hi = v[np.searchsorted(cum, n // 2, side="right")]
    return float((lo + hi) / 2)


def _denom(vc: ValueCounts, denom: int) -> int:
    return int(denom) << int(vc.shift)


def _values(vc: ValueCounts, denom: int):
    """The value of each bin: ``code / (denom * 2**shift)`` correctly rounded, as numpy computes a mean."""
    d = _denom(vc, denom)
    return vc.codes() / d if d != 1 else vc.codes().astype(np.float64)


def median_mad(vc: ValueCounts, denom: int = 1, scale: float = MAD_SCALE_NORMAL) -> tuple[float, float]:
    """Exact median and ``scale * median(|x - median|)`` of the counted values (value = code / denom).

    The values, their deviations and both medians are computed in float64 exactly as
    ``np.median`` would on the values themselves (``x = sum / n`` for an average image),
    so windows derived from them have the same edges.

    Parameters
    ----------
    vc : ValueCounts
        Counted codes.
    denom : int, optional
        A value is ``code / denom`` (``n`` for the average of ``n`` skips; default 1).
    scale : float, optional
        MAD scale (default: the normal-consistent 1.4826022; legacy 1.4826).

    Returns
    -------
    (float, float)
        Median and scaled MAD (NaN, NaN when nothing is counted).

    Examples
    --------
    >>> median_mad(value_counts(np.array([1, 2, 3, 10])), scale=1.0)
    (2.5, 1.0)
    """
    if vc.total == 0:
        return float("nan"), float("nan")
    xp = array_namespace(vc.counts)
    nz = xp.flatnonzero(vc.counts)
    if vc.step == 1:
        vals = _values(vc, denom)[nz]
    else:  # coarsened bins: their centres (approximate)
        vals = (vc.codes()[nz] + (vc.step - 1) / 2) / _denom(vc, denom)
    w = vc.counts[nz]
    med = weighted_median(vals, w)
    mad = weighted_median(xp.abs(vals - med), w)
    return med, scale * mad


def _count_below(vc: ValueCounts, x, denom: int, inclusive: bool = False) -> np.ndarray:
    """Number of values ``< x`` (``<= x`` if inclusive) for each ``x``; exact for ``step == 1``.

    Each bin's value is computed with the same float division as the values themselves
    (``code / denom``), so a value equal to an edge is counted as ``np.histogram`` counts it.
    """
    from ..core.backend import to_numpy

    xf = np.atleast_1d(np.asarray(x, dtype=np.float64))
    cum = np.concatenate([[0], np.cumsum(to_numpy(vc.counts))]).astype(np.float64)
    if vc.step == 1:
        vals = to_numpy(_values(vc, denom))
        return cum[np.searchsorted(vals, xf, side="right" if inclusive else "left")]
    # coarsened bins: linear interpolation inside a bin (approximate)
    y = xf * _denom(vc, denom)
    last = np.floor(y) if inclusive else np.ceil(y) - 1
    pos = np.clip((last + 1 - vc.lo) / vc.step, 0, len(vc.counts))
    i = np.floor(pos).astype(np.int64)
    out = cum[i]
    nxt = cum[np.minimum(i + 1, len(vc.counts))]
    return out + (pos - i) * (nxt - out)


def count_below(vc: ValueCounts, x: float, denom: int = 1) -> float:
    """Number of values strictly below ``x`` (value = code / denom).

    Examples
    --------
    >>> count_below(value_counts(np.array([1, 2, 2, 5])), 2.0)
    1.0
    """
    return float(_count_below(vc, x, denom)[0])


def count_above(vc: ValueCounts, x: float, denom: int = 1) -> float:
    """Number of values strictly above ``x`` (value = code / denom).

    Examples
    --------
    >>> count_above(value_counts(np.array([1, 2, 2, 5])), 2.0)
    1.0
    """
    return float(vc.total - _count_below(vc, x, denom, inclusive=True)[0])


def counts_in_bins(vc: ValueCounts, edges: np.ndarray, denom: int = 1, closed_last: bool = True) -> np.ndarray:
    """Histogram of the counted values over ``edges``, exactly as ``np.histogram`` (last bin closed).

    Examples
    --------
    >>> counts_in_bins(value_counts(np.array([1, 2, 2, 3])), np.array([1.0, 2.0, 3.0])).tolist()
    [1, 3]
    """
    edges = np.asarray(edges, dtype=np.float64)
    if len(edges) < 2:
        return np.zeros(0, dtype=np.int64)
    below = _count_below(vc, edges, denom).copy()
    if closed_last:
        below[-1] = _count_below(vc, edges[-1:], denom, inclusive=True)[0]
    return np.rint(np.diff(below)).astype(np.int64)


def entropy(counts: np.ndarray) -> float:
    """Shannon entropy ``-sum p ln p`` (nats) of a histogram; empty bins contribute 0.

    >>> round(entropy(np.array([1, 1, 0, 2])), 4)
    1.0397
    """
    xp = array_namespace(counts)
    counts = xp.asarray(counts, dtype=xp.float64)
    n = float(counts.sum())
    if n <= 0:
        return float("nan")
    p = counts[counts > 0] / n
    return float(-(p * xp.log(p)).sum())


def entropy_1adu(vc: ValueCounts, denom: int = 1, legacy: bool = False) -> float:
    """Entropy of the values in 1-ADU bins starting at the minimum value (value = code / denom).

    Legacy edges are ``np.arange(min, max + 1)`` with the last bin closed (for integer data the
    two largest values share a bin); the default gives every 1-ADU bin its own count.

    Examples
    --------
    >>> round(entropy_1adu(value_counts(np.array([0, 1, 1, 2]))), 4)
    1.0397
    """
    xp = array_namespace(vc.counts)
    nz = xp.flatnonzero(vc.counts)
    if len(nz) == 0:
        return float("nan")
    codes = vc.codes()
    d = _denom(vc, denom)
    vmin = int(codes[int(nz[0])]) / d
    vmax = (int(codes[int(nz[-1])]) + vc.step - 1) / d
    if legacy:
        edges = np.arange(vmin, vmax + 1)
    else:
        edges = vmin + np.arange(int(np.floor(vmax - vmin + 1e-9)) + 2, dtype=np.float64)
    if len(edges) < 2:
        return 0.0
    return entropy(counts_in_bins(vc, edges, denom, closed_last=legacy))


def moving_average(counts: np.ndarray, width: int) -> np.ndarray:
    """``np.convolve(counts, ones(width)/width, "same")``."""
    xp = array_namespace(counts)
    return xp.convolve(xp.asarray(counts, dtype=xp.float64), xp.ones(width) / width, mode="same")


def extrema(d: np.ndarray, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``i`` of maxima (``d[i-1] > t``, ``d[i] < -t``) and minima (``d[i-1] < -t``, ``d[i] > t``) of a derivative."""
    xp = array_namespace(d)
    d = xp.asarray(d)
    prev, cur = d[:-1], d[1:]
    maxima = xp.flatnonzero((prev > threshold) & (cur < -threshold)) + 1
    minima = xp.flatnonzero((prev < -threshold) & (cur > threshold)) + 1
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
    xp = array_namespace(block)
    trials = xp.asarray(trials)
    i = xp.arange(npix)
    dr, dc = i % e_r, i // e_r
    out = xp.empty(len(trials))
    used = xp.unique(trials[:, 2]) - skip_start
    # skip-major copy of the skips in use: every trial then reads one compact image region
    images = xp.ascontiguousarray(xp.moveaxis(block[:, :, used], 2, 0)).reshape(len(used), -1)
    where = xp.searchsorted(used, trials[:, 2] - skip_start)
    ncols = block.shape[1]
    offs = dr * ncols + dc
    per = max(1, 2**20 // npix)  # trials gathered at once (~8 MiB of int64)
    for t0 in range(0, len(trials), per):
        r0, c0, k = (a[t0 : t0 + per][:, None] for a in (trials[:, 0], trials[:, 1], where))
        vals = images.ravel()[k * images.shape[1] + (r0 - row_start) * ncols + c0 + offs]
        if vals.dtype.kind in "iu" and (vals.size == 0 or int(xp.abs(vals).max()) < 2**20):
            v = vals.astype(xp.int64)
            s1, s2 = v.sum(axis=1), (v * v).sum(axis=1)
            out[t0 : t0 + per] = (npix * s2 - s1 * s1) / float(npix * npix)
        else:
            out[t0 : t0 + per] = vals.astype(np.float64).var(axis=1)
    return out
