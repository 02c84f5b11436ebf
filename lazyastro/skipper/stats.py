"""Lazy graphs for skipper statistics: reductions over ``(row, col, skip)`` blocks.

One pass over the file feeds every statistic: exact value counts of all raw values and of
the first skips (a 1-ADU histogram reduction whose range grows as blocks merge, so no
separate min/max pass is needed), the value counts of the average image (of the integer
sum over skips), per-pixel variances over skips and per-block variances for sampled
clusters. A final task fits the histograms (:mod:`.derive`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..core.errors import FormatError, LazyAstroError, ParameterError
from ..core.execution import compute
from . import kernels
from .derive import NSKIPS_ENTROPY, NSKIPS_NOISE, derive_statistics
from .io import open as open_skipper

__all__ = ["statistics", "compute_statistics", "DEFAULT_SEED", "SKIPPER_OFFSET", "NSAMPLES"]

DEFAULT_SEED = 20191012
SKIPPER_OFFSET = 2
NSAMPLES = 10000
_SPLIT_EVERY = 8


def _reduce_all(func, parts):
    return functools.reduce(func, parts)


def _tree(items: list, func) -> Any:
    """Tree reduction of delayed ``items`` with the associative ``func``."""
    while len(items) > 1:
        items = [
            dask.delayed(_reduce_all, pure=True)(func, items[i : i + _SPLIT_EVERY])
            for i in range(0, len(items), _SPLIT_EVERY)
        ]
    return items[0]


def _starts(chunks: Sequence[int]) -> list[int]:
    return [0, *np.cumsum(chunks)[:-1].tolist()]


def _add_counts(a: kernels.ValueCounts, b: kernels.ValueCounts, max_bins: int) -> kernels.ValueCounts:
    return (a + b).trimmed(max_bins)


def _gather(parts: list) -> np.ndarray:
    return np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)


def _exact_variance(s1: np.ndarray, s2: np.ndarray, n: int) -> np.ndarray:
    return (n * s2 - s1 * s1) / float(n * n)


def _pixel_variance(x: da.Array, codes: da.Array, skip_offset: int) -> da.Array:
    """Population variance over skips ``skip_offset...``; exact integer moments for <= 16-bit data
    (so the result does not depend on chunking), float64 moments otherwise."""
    sel = codes[:, :, skip_offset:]
    n = sel.shape[2]
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2 and n < 2**20:
        s1 = sel.sum(axis=2, dtype=np.int64)
        s2 = (sel * sel).sum(axis=2, dtype=np.int64)
        return da.map_blocks(_exact_variance, s1, s2, n, dtype=np.float64)
    return sel.astype(np.float64).var(axis=2)


def _finish(summary, avg_counts, pix, clust, meta) -> dict:
    if summary["nonfinite"]:
        return {"filename": meta["path"], "nskips": meta["nskips"],
                "error": f"{summary['nonfinite']} NaN/inf pixel values in the skip data"}
    pix = None if pix is None else _gather(pix)
    out = derive_statistics(summary, avg_counts, pix, None if clust is None else _gather(clust), meta)
    out.update({"seed": meta["seed"], "version": meta["version"], "legacy": meta["legacy"],
                "size": meta["size"], "mtime": meta["mtime"]})
    return out


def _resolve_polarity(polarity: str | int, path: str) -> int:
    if polarity == "auto":  # legacy rule: average images ("Avg" in the name) are not flipped
        return 1 if "Avg" in Path(path).name else -1
    if polarity in (1, -1):
        return int(polarity)
    raise ParameterError(f"polarity must be 'auto', 1 or -1, got {polarity!r}", path)


def statistics(
    cube: xr.DataArray,
    seed: int = DEFAULT_SEED,
    version: str = "2021",
    legacy: bool = False,
    exact: bool = False,
    skip_offset: int = SKIPPER_OFFSET,
    average_offset: int = 0,
    polarity: str | int = "auto",
    nsamples: int = NSAMPLES,
    max_bins: int = kernels.DEFAULT_MAX_BINS,
):
    """Lazy statistics of one skipper cube; ``dask.compute`` gives a dict of the legacy variables.

    ``version`` picks the legacy definitions ("2021": Poisson (x) Gaussian fit for skNoise,
    darkCurrent, aduConversion and tailRatio, peak finder as fallback; "2019": peak finder and
    raw low-tail ratio). ``legacy=True`` reproduces legacy quirks (1.4826 MAD, bin offsets,
    entropy edges, start values). ``pixVar``/``clustVar`` sample ``nsamples`` pixels/blocks
    with ``numpy.random.default_rng(seed)``; ``exact=True`` takes the median over all pixels.
    Variances use skips ``skip_offset ...``; the average uses ``average_offset ...`` (legacy 0).

    >>> import dask
    >>> from lazyastro import skipper
    >>> (st,) = dask.compute(skipper.statistics(skipper.open("Img_01.fits")))  # doctest: +SKIP
    >>> st["skNoise"], st["darkCurrent"], st["aduConversion"]  # doctest: +SKIP
    """
    if not isinstance(cube, xr.DataArray) or tuple(cube.dims) != ("row", "col", "skip"):
        raise ParameterError("statistics() needs a DataArray with dims (row, col, skip); use skipper.open()")
    path = str(cube.attrs.get("source", cube.name or "<array>"))
    if version not in ("2019", "2021"):
        raise ParameterError(f"version must be '2019' or '2021', got {version!r}", path)
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}", path)
    if nsamples < 1:
        raise ParameterError(f"nsamples must be >= 1, got {nsamples}", path)
    x = cube.data if isinstance(cube.data, da.Array) else da.from_array(cube.data, chunks=-1)
    nrows, ncols, nskips = x.shape
    if skip_offset < 0:
        raise ParameterError(f"skip_offset must be >= 0, got {skip_offset}", path)
    if not 0 <= average_offset < nskips:
        raise ParameterError(f"average_offset = {average_offset} must be < nskips = {nskips}", path)
    meta = {
        "path": path, "nskips": nskips, "shape": (nrows, ncols, nskips), "legacy": legacy,
        "version": version, "n_average": nskips - average_offset, "seed": int(seed),
        "polarity": _resolve_polarity(polarity, path),
        "size": cube.attrs.get("size"), "mtime": cube.attrs.get("mtime"),
    }
    rng_pix, rng_clust = (np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(2))
    nper_skip = max(NSKIPS_ENTROPY, NSKIPS_NOISE)

    # 1. exact value counts of all raw values and of the first skips, one pass over the blocks
    skip_starts = _starts(x.chunks[2])
    blocks = x.to_delayed(optimize_graph=False)
    summaries = [
        dask.delayed(kernels.block_summary, pure=True)(blocks[i, j, k], skip_starts[k], nper_skip, max_bins)
        for i, j, k in np.ndindex(blocks.shape)
    ]
    summary = _tree(summaries, functools.partial(kernels.combine_summaries, max_bins=max_bins))

    # 2. value counts of the average image, from the exact integer sum over skips
    codes = x.map_blocks(kernels.to_codes, dtype=np.int64, meta=np.empty((0, 0, 0), np.int64))
    total = codes[:, :, average_offset:].sum(axis=2, dtype=np.int64)
    avg_parts = [dask.delayed(kernels.value_counts, pure=True)(b, max_bins) for b in total.to_delayed(optimize_graph=False).ravel()]
    avg_counts = _tree(avg_parts, functools.partial(_add_counts, max_bins=max_bins))

    # 3. per-pixel variance over skips skip_offset... (pixVar)
    nvar = nskips - skip_offset
    pix = None
    if (nvar >= 2) or (legacy and nskips >= 2 and nvar >= 1):
        var = _pixel_variance(x, codes, skip_offset)
        if exact:
            pix = var
        else:
            pix = var.vindex[rng_pix.integers(0, nrows, nsamples), rng_pix.integers(0, ncols, nsamples)]
    elif legacy and nskips == SKIPPER_OFFSET:
        pix = da.from_array(np.array([np.nan]))  # legacy: variance over an empty set
    if pix is not None:  # blocks as delayed keys: shares the block reads with the other reductions
        pix = list(pix.to_delayed(optimize_graph=False).ravel())

    # 4. variance within random blocks of nskips - skip_offset pixels at one skip (clustVar)
    clust = None
    plan = kernels.cluster_trials((nrows, ncols, nskips), skip_offset, nsamples, rng_clust, legacy)
    if plan is not None:
        trials, e_r, _e_c, npix = plan
        clust = []
        row_starts = _starts(x.chunks[0])
        for i, a in enumerate(row_starts):
            b = a + x.chunks[0][i]
            in_rows = trials[(trials[:, 0] >= a) & (trials[:, 0] < b)]
            if not len(in_rows):
                continue
            sub = codes[a : min(b + e_r - 1, nrows)].rechunk({0: -1, 1: -1})
            sub_blocks = sub.to_delayed(optimize_graph=False)
            for k, s0 in enumerate(_starts(sub.chunks[2])):
                sel = in_rows[(in_rows[:, 2] >= s0) & (in_rows[:, 2] < s0 + sub.chunks[2][k])]
                if len(sel):
                    clust.append(dask.delayed(kernels.cluster_variances, pure=True)(
                        sub_blocks[0, 0, k], a, s0, sel, e_r, npix))
    return dask.delayed(_finish, pure=True)(summary, avg_counts, pix, clust, meta)


def compute_statistics(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    scheduler: str | None = None,
    progress: bool | None = None,
    errors: str = "raise",
    chunks: Any = None,
    **kwargs: Any,
) -> list[dict]:
    """Statistics of several files, computed together in one parallel pass.

    ``errors="raise"`` raises the first bad file's :class:`FormatError`; ``"return"`` leaves
    ``{"filename": ..., "error": message}`` entries in the list instead.

    >>> rows = compute_statistics(["Img_01.fits", "Img_02.fits"], scheduler="threads")  # doctest: +SKIP
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if errors not in ("raise", "return"):
        raise ParameterError(f"errors must be 'raise' or 'return', got {errors!r}")
    lazy, out = [], []
    for p in paths:
        try:
            lazy.append(statistics(open_skipper(p, chunks=chunks), **kwargs))
            out.append(None)
        except LazyAstroError as exc:
            if errors == "raise":
                raise
            out.append({"filename": str(Path(p).resolve()), "error": exc.message})
    results = list(compute(*lazy, scheduler=scheduler, progress=progress, desc="skipper")) if lazy else []
    it = iter(results)
    out = [next(it) if r is None else r for r in out]
    if errors == "raise":
        for r in out:
            if "error" in r:
                raise FormatError(r["error"], r["filename"])
    return out
