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

from ..core.backend import meta_like, to_numpy
from ..core.errors import FormatError, LazyAstroError, ParameterError
from ..core.random import block_rng, check_seed
from . import kernels
from .derive import NSKIPS_ENTROPY, NSKIPS_NOISE, derive_statistics
from .io import open as open_skipper

__all__ = ["statistics", "file_statistics", "compute_statistics", "DEFAULT_SEED", "SKIPPER_OFFSET", "NSAMPLES",
           "RNG_STREAM_PIXVAR", "RNG_STREAM_CLUSTVAR"]

DEFAULT_SEED = 20191012
SKIPPER_OFFSET = 2
NSAMPLES = 10000
_SPLIT_EVERY = 8
#: ``core.random`` streams of the sampled statistics (block index 0 of the file's grid)
RNG_STREAM_PIXVAR = 1
RNG_STREAM_CLUSTVAR = 2


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
    return np.concatenate([np.ravel(to_numpy(p)) for p in parts]) if parts else np.zeros(0)


def _pixel_variance(x: da.Array, codes: da.Array, skip_offset: int) -> da.Array:
    """Population variance over skips ``skip_offset...``; exact integer moments for <= 16-bit data
    (so the result does not depend on chunking), float64 moments otherwise."""
    if x.dtype.kind == "f":  # the values themselves (codes are rounded)
        return x[:, :, skip_offset:].astype(np.float64).var(axis=2)
    sel = codes[:, :, skip_offset:]
    n = sel.shape[2]
    if x.dtype.kind in "iu" and x.dtype.itemsize <= 2 and n < 2**20:
        s1 = sel.sum(axis=2, dtype=np.int64)
        s2 = (sel * sel).sum(axis=2, dtype=np.int64)
        return da.map_blocks(kernels.exact_variance, s1, s2, n, dtype=np.float64,
                             meta=meta_like(s1, dtype=np.float64))
    return sel.astype(np.float64).var(axis=2)


def _finish(summary, avg_counts, pix, clust, meta) -> dict:
    summary, avg_counts = kernels.to_host(summary), kernels.to_host(avg_counts)
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


def file_statistics(
    cube: xr.DataArray,
    *,
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
    """Lazy statistics of one skipper cube: a ``dask.delayed`` dict of the legacy variables.

    The graph behind :func:`statistics` (one file); ``dask.compute`` gives the row that
    :func:`compute_statistics` returns. ``version`` picks the legacy definitions ("2021": Poisson (x) Gaussian fit for skNoise,
    darkCurrent, aduConversion and tailRatio, peak finder as fallback; "2019": peak finder and
    raw low-tail ratio). ``legacy=True`` reproduces legacy quirks (1.4826 MAD, bin offsets,
    entropy edges, start values). ``pixVar``/``clustVar`` sample ``nsamples`` pixels/blocks
    with :func:`lazyastro.core.random.block_rng` ``(seed, 0)`` (streams
    :data:`RNG_STREAM_PIXVAR`, :data:`RNG_STREAM_CLUSTVAR`), drawn before any block is read, so
    they do not depend on chunking or the scheduler; ``exact=True`` takes the median over all
    pixels. Variances use skips ``skip_offset ...``; the average uses ``average_offset ...``
    (legacy 0).

    Parameters
    ----------
    cube : xarray.DataArray
        ``(row, col, skip)`` cube from :func:`lazyastro.skipper.open`.
    seed, version, legacy, exact, skip_offset, average_offset, polarity, nsamples, max_bins
        See :func:`statistics`.

    Returns
    -------
    dask.delayed.Delayed
        Computes to a dict (one table row; ``"_plot"`` holds the fitted histogram).

    Raises
    ------
    ParameterError
        For invalid options or a cube without dims ``(row, col, skip)``.

    Examples
    --------
    >>> import dask
    >>> from lazyastro import skipper
    >>> (st,) = dask.compute(file_statistics(skipper.open("Img_01.fits")))  # doctest: +SKIP
    >>> st["skNoise"], st["darkCurrent"], st["aduConversion"]  # doctest: +SKIP
    """
    if not isinstance(cube, xr.DataArray) or tuple(cube.dims) != ("row", "col", "skip"):
        raise ParameterError("statistics() needs a DataArray with dims (row, col, skip); use skipper.open()")
    path = str(cube.attrs.get("source", cube.name or "<array>"))
    if version not in ("2019", "2021"):
        raise ParameterError(f"version must be '2019' or '2021', got {version!r}", path)
    if seed is None or isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}", path)
    seed = check_seed(seed)
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
    rng_pix = block_rng(seed, 0, stream=RNG_STREAM_PIXVAR)
    rng_clust = block_rng(seed, 0, stream=RNG_STREAM_CLUSTVAR)
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
    codes = x.map_blocks(kernels.to_codes, dtype=np.int64, meta=meta_like(x, dtype=np.int64))
    if x.dtype.kind == "f":  # float64 sums of the values (exact for binary data of a sane range)
        total = x[:, :, average_offset:].astype(np.float64).sum(axis=2)
        counter = kernels.float_counts
    else:
        total = codes[:, :, average_offset:].sum(axis=2, dtype=np.int64)
        counter = kernels.value_counts
    avg_parts = [dask.delayed(counter, pure=True)(b, max_bins) for b in total.to_delayed(optimize_graph=False).ravel()]
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
        pix = da.from_array(np.array([np.nan]), chunks=1)  # legacy: variance over an empty set
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
            source = x.astype(np.float64) if x.dtype.kind == "f" else codes
            sub = source[a : min(b + e_r - 1, nrows)].rechunk({0: -1, 1: -1})
            sub_blocks = sub.to_delayed(optimize_graph=False)
            for k, s0 in enumerate(_starts(sub.chunks[2])):
                sel = in_rows[(in_rows[:, 2] >= s0) & (in_rows[:, 2] < s0 + sub.chunks[2][k])]
                if len(sel):
                    clust.append(dask.delayed(kernels.cluster_variances, pure=True)(
                        sub_blocks[0, 0, k], a, s0, sel, e_r, npix))
    return dask.delayed(_finish, pure=True)(summary, avg_counts, pix, clust, meta)


# --------------------------------------------------------------------------- many files


def _lazy_rows(paths, errors: str, chunks: Any, options: dict) -> tuple[list, list[str]]:
    """One delayed row per input (path or cube); open errors become error rows or raise."""
    if isinstance(paths, str | os.PathLike | xr.DataArray):
        paths = [paths]
    if errors not in ("raise", "return"):
        raise ParameterError(f"errors must be 'raise' or 'return', got {errors!r}")
    rows, names = [], []
    for p in paths:
        try:
            cube = p if isinstance(p, xr.DataArray) else open_skipper(p, chunks=chunks)
            rows.append(file_statistics(cube, **options))
            names.append(str(cube.attrs.get("source", cube.name)))
        except LazyAstroError as exc:
            if errors == "raise":
                raise
            name = str(Path(p).resolve()) if not isinstance(p, xr.DataArray) else str(p.name)
            rows.append({"filename": name, "error": exc.message})
            names.append(name)
    return rows, names


def _field(row: dict, key: str, kind: str, errors: str) -> np.ndarray:
    """One value of a row as a 1-element array of its variable's dtype."""
    dtype = {"f": np.float64, "i": np.int64, "b": np.bool_, "O": object}[kind]
    out = np.empty(1, dtype=dtype)
    out[0] = _value(row, key, kind, errors)
    return out


def _value(row: dict, key: str, kind: str, errors: str):
    if "error" in row:
        if errors == "raise":
            raise FormatError(row["error"], row["filename"])
        return {"f": np.nan, "i": -1, "b": False, "O": "", "error": row["error"]}[kind if key != "error" else "error"]
    if key == "error":
        return ""
    value = row.get(key)
    if kind == "f":
        return np.float64(np.nan if value is None else value)
    if kind == "i":
        return np.int64(-1 if value is None else value)
    if kind == "b":
        return np.bool_(bool(value))
    return "" if value is None else str(value)


def statistics(
    paths: str | os.PathLike | xr.DataArray | Iterable[str | os.PathLike | xr.DataArray],
    *,
    seed: int = DEFAULT_SEED,
    version: str = "2021",
    legacy: bool = False,
    exact: bool = False,
    skip_offset: int = SKIPPER_OFFSET,
    average_offset: int = 0,
    polarity: str | int = "auto",
    nsamples: int = NSAMPLES,
    chunks: Any = None,
    errors: str = "raise",
    max_bins: int = kernels.DEFAULT_MAX_BINS,
) -> xr.Dataset:
    """Lazy skipper statistics of several files: an ``xarray.Dataset`` with dim ``image``.

    One variable per statistic (``nskips, aveImgS, dSdskip, imgNoise, skNoise, pixVar,
    clustVar, tailRatio, darkCurrent, aduConversion``), a ``*_err`` variable per fitted value,
    ``*_method``/``skNoise_reason`` strings, and ``exact, version, legacy, seed, size, mtime``;
    ``attrs["units"]`` of each variable gives its unit (``""`` dimensionless). Nothing is
    read until the Dataset is computed; all files are computed in one parallel pass and each
    file is read once for all of its statistics.

    Parameters
    ----------
    paths : path, DataArray or iterable of them
        Skipper FITS files (or cubes from :func:`lazyastro.skipper.open`).
    seed : int, optional
        Seed of the sampled ``pixVar``/``clustVar`` (recorded in the ``seed`` variable).
    version : {"2021", "2019"}, optional
        Legacy variable definitions: "2021" (Poisson (x) Gaussian fit for skNoise,
        darkCurrent, aduConversion and tailRatio, peak finder as fallback) or "2019" (peak
        finder and raw low-tail ratio).
    legacy : bool, optional
        Reproduce the legacy formulas exactly (1.4826 MAD, bin offsets, entropy edges, fit
        starts, degenerate fits reported as fitted). The default reports NaN, with the reason
        in ``skNoise_reason``, for fits that do not resolve anything.
    exact : bool, optional
        ``pixVar``: median over all pixels instead of ``nsamples`` sampled pixels.
    skip_offset : int, optional
        First skip of the variance statistics (legacy 2).
    average_offset : int, optional
        First skip of the average image (legacy 0: all skips).
    polarity : {"auto", 1, -1}, optional
        Sign of charge in ADU (2021: "auto" = +1 for average images, "Avg" in the name).
    nsamples : int, optional
        Sampled pixels and blocks of ``pixVar``/``clustVar`` (legacy 10000).
    chunks : optional
        Read chunks of :func:`lazyastro.skipper.open` (default: from the memory budget).
    errors : {"raise", "return"}, optional
        ``"raise"``: a bad file raises (when opened, or when computed); ``"return"``: its
        row holds NaN and the message in the ``error`` variable.
    max_bins : int, optional
        Largest exact histogram; wider value ranges are coarsened (``exact`` = False).

    Returns
    -------
    xarray.Dataset
        Lazy (dask-backed) variables along ``image`` (coordinate: absolute file names).

    Raises
    ------
    ParameterError
        For invalid options.
    FormatError, InputNotFoundError
        For a bad file with ``errors="raise"``.

    Examples
    --------
    >>> from lazyastro import skipper
    >>> _ = skipper.simulate("/tmp/_doc_sk/Img_1.fits", nrows=20, ncols=20, nskips=25, seed=1)
    >>> ds = skipper.statistics(["/tmp/_doc_sk/Img_1.fits"], seed=1)
    >>> ds.skNoise.dims, ds.skNoise.attrs["units"], ds.darkCurrent.attrs["units"]
    (('image',), 'adu', 'electron / pix')
    >>> int(ds.nskips.compute()[0])
    25
    """
    from .tables import dataset_from_columns

    options = {"seed": seed, "version": version, "legacy": legacy, "exact": exact, "skip_offset": skip_offset,
               "average_offset": average_offset, "polarity": polarity, "nsamples": nsamples, "max_bins": max_bins}
    rows, names = _lazy_rows(paths, errors, chunks, options)
    columns = {}
    from .tables import COLUMN_KINDS

    for key, kind in COLUMN_KINDS.items():
        dtype = {"f": np.float64, "i": np.int64, "b": np.bool_, "O": object}[kind]
        parts = [
            da.from_delayed(dask.delayed(_field, pure=True)(r, key, kind, errors), shape=(1,), dtype=dtype,
                            meta=np.empty((0,), dtype=dtype))
            for r in rows
        ]
        columns[key] = da.concatenate(parts) if parts else np.empty((0,), dtype=dtype)
    return dataset_from_columns(names, columns, {"seed": int(seed), "version": version, "legacy": bool(legacy)})


def compute_statistics(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    scheduler: str | None = None,
    progress: bool | None = None,
    errors: str = "raise",
    chunks: Any = None,
    **kwargs: Any,
) -> list[dict]:
    """Statistics of several files as table rows (dicts), computed together in one parallel pass.

    The eager companion of :func:`statistics` (same graph, same options); rows also hold
    ``"_plot"`` (the fitted histogram, for :func:`lazyastro.skipper.plot.plot_fit`).

    Parameters
    ----------
    paths : path or iterable of paths
        Skipper FITS files.
    scheduler, progress : optional
        How to compute (see :func:`lazyastro.compute`).
    errors : {"raise", "return"}, optional
        ``"raise"`` raises the first bad file's error; ``"return"`` leaves
        ``{"filename": ..., "error": message}`` entries in the list instead.
    chunks : optional
        Read chunks.
    **kwargs
        Options of :func:`statistics` (``seed``, ``version``, ``legacy``, ...).

    Returns
    -------
    list of dict

    Raises
    ------
    FormatError, InputNotFoundError, ParameterError

    Examples
    --------
    >>> from lazyastro import skipper
    >>> _ = skipper.simulate("/tmp/_doc_sk/Img_2.fits", nrows=20, ncols=20, nskips=4, seed=2)
    >>> (row,) = skipper.compute_statistics(["/tmp/_doc_sk/Img_2.fits"], scheduler="sync", progress=False)
    >>> row["nskips"]
    4
    """
    from ..core.execution import compute

    lazy_rows, _names = _lazy_rows(paths, errors, chunks, kwargs)
    lazy = [r for r in lazy_rows if not isinstance(r, dict)]
    results = iter(compute(*lazy, scheduler=scheduler, progress=progress, desc="skipper") if lazy else [])
    out = [r if isinstance(r, dict) else next(results) for r in lazy_rows]
    if errors == "raise":
        for r in out:
            if "error" in r:
                raise FormatError(r["error"], r["filename"])
    return out
