"""Aggregate images over the frames of a series, as lazy dask graphs.

Legacy dtypes: ``max``/``min`` keep the input dtype, ``sum`` is float64,
``mean``/``std``/``percentile``/``median`` are float32. ``mean`` accumulates in
float64 unless ``legacy=True`` (sequential float32 accumulation, bit-identical
to the legacy tool). ``percentile``/``median`` are exact (NumPy's linear
interpolation) and out-of-core: each task holds all frames of one band of rows,
band height chosen from the memory budget.

>>> import numpy as np
>>> s = np.arange(24, dtype="u2").reshape(4, 2, 3)
>>> int(max(s).values[1, 2]), float(median(s).values[0, 0])
(23, 9.0)
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Sequence
from functools import partial

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.backend import meta_like
from ..core.config import memory_budget
from ..core.errors import ParameterError
from . import kernels
from .bands import _workers, band_graph, band_rows, choose_plan
from .series import Backend, as_series, source_of

__all__ = [
    "max", "min", "sum", "mean", "average", "std", "percentile", "median",
    "nanmax", "nanmin", "nansum", "nanmean", "nanstd", "nanpercentile", "nanmedian",
    "band_rows", "STATS",
]

STATS = ("max", "min", "sum", "mean", "std", "median", "percentile",
         "nanmax", "nanmin", "nansum", "nanmean", "nanstd", "nanmedian", "nanpercentile")



def _image(series: xr.DataArray, data: da.Array, name: str, **attrs) -> xr.DataArray:
    dims = ("y", "x") if data.ndim == 2 else ("quantile", "y", "x")
    out = xr.DataArray(data, dims=dims, attrs={**series.attrs, "stat": name, "nframes": int(series.shape[0]), **attrs})
    out.name = name
    return out


def split_every(data: da.Array, itemsize: int = 8, budget: int | None = None) -> int:
    """Tree fan-in so that the partial images combined at once fit the memory budget.

    >>> split_every(da.zeros((64, 1024, 1024), chunks=(1, 1024, 1024)), budget=32 * 2**20)
    2
    """
    budget = memory_budget() if budget is None else int(budget)
    block = builtins.max(data.chunksize[1] * data.chunksize[2] * itemsize, 1)
    workers = os.cpu_count() or 1
    return int(builtins.min(32, builtins.max(2, budget // (2 * (workers + 1) * block))))


def fold_groups(nblocks: int, nspatial: int, workers: int | None = None) -> int:
    """Independent frame-block chains per spatial block: enough to keep every worker busy.

    >>> fold_groups(50, 1, workers=2), fold_groups(50, 8, workers=2), fold_groups(1, 1, workers=4)
    (2, 1, 1)
    """
    workers = workers or _workers()
    return int(builtins.max(1, builtins.min(nblocks, -(-workers // builtins.max(1, nspatial)))))


def _reader(series, nframes) -> tuple[xr.DataArray, Backend | None]:
    """The series (first ``nframes``) and its reader if it is a reader's array with nothing applied."""
    full = as_series(series)
    s = as_series(full, nframes)
    src = source_of(full.data)
    return s, src if isinstance(src, Backend) else None


def _fold(data: da.Array, kind: str, dtype, divide: int = 0, backend: Backend | None = None) -> da.Array:
    """Reduce over frames with a memory-bounded fold (see :func:`kernels.fold_step`).

    From a reader (``backend``): for every (y, x) block the frame blocks are split
    into a few consecutive groups (enough to keep all workers busy, see
    :func:`fold_groups`); each group is one task that reads its frame blocks one by
    one *itself* and folds each into a running image in place, so nothing can be
    read ahead; a last task per block combines the groups, divides and casts.
    Memory is, per worker, one input block and one image in the accumulator dtype,
    whatever the number of frames.

    Any other dask array: a tree reduction whose leaves (fused by dask with the
    input's own blockwise tasks) reduce a block to an image at once; the fan-in
    follows the budget (:func:`split_every`).
    """
    dtype = np.dtype(dtype)
    acc = kernels.sum_dtype(data.dtype, data.shape[0]).str if kind in ("sum", "nansum") else None
    if backend is not None:
        return _fold_backend(data, kind, dtype, divide, acc, backend)
    meta = meta_like(data, ndim=2, dtype=dtype)
    return da.reduction(
        data, partial(_fold_chunk, kind=kind, acc=acc),
        partial(_fold_aggregate, kind=kind, divide=divide, out_dtype=dtype.str),
        combine=partial(_fold_combine, kind=kind), axis=0, dtype=dtype, concatenate=False, meta=meta,
        split_every=split_every(data, np.dtype(acc or data.dtype).itemsize),
        name=f"fold-{kind}-" + tokenize(data.name, kind, dtype.str, divide),
    )


def _flat(parts) -> list:
    if isinstance(parts, list | tuple):
        return [p for item in parts for p in _flat(item)]
    return [parts]


def _fold_chunk(block, axis=None, keepdims=True, kind="max", acc=None, **_):
    return kernels.fold_step(kind, None, block, acc)[None]


def _fold_combine(parts, axis=None, keepdims=True, kind="max", **_):
    return kernels.fold_finish(kind, *[p[0] for p in _flat(parts)])[None]


def _fold_aggregate(parts, axis=None, keepdims=False, kind="max", divide=0, out_dtype=None, **_):
    out = kernels.fold_finish(kind, *[p[0] for p in _flat(parts)], divide=divide, dtype=np.dtype(out_dtype))
    return out[None] if keepdims else out


def _fold_backend(data, kind, dtype, divide, acc, backend) -> da.Array:
    nfb, nyb, nxb = (len(c) for c in data.chunks)
    groups = 1 if kind == "legacy" else fold_groups(nfb, nyb * nxb)
    cuts = np.linspace(0, nfb, groups + 1).round().astype(int)
    fstops = np.cumsum((0,) + data.chunks[0])
    bounds = tuple(tuple(int(f) for f in fstops[cuts[g] : cuts[g + 1] + 1]) for g in range(groups))
    token = tokenize(backend.token(), data.shape, data.chunks, kind, acc, dtype.str, divide, groups)
    part_dtype = np.dtype(acc or (np.float32 if kind == "legacy" else data.dtype))
    parts = da.map_blocks(_fold_group, chunks=((1,) * groups,) + data.chunks[1:], dtype=part_dtype,
                          meta=meta_like(data, ndim=3, dtype=part_dtype), name=f"fold-{kind}-{token}",
                          backend=backend, kind=kind, acc=acc, bounds=bounds)
    if kind == "legacy":
        return parts[0]
    return da.blockwise(_fold_finish, "yx", parts, "gyx", dtype=dtype, meta=meta_like(data, ndim=2, dtype=dtype),
                        name=f"fold-{kind}-finish-{token}", kind=kind, divide=divide, out_dtype=dtype.str)


def _fold_group(backend, kind, acc, bounds, block_info=None):
    """Fold frame blocks ``bounds[g]`` of one (y, x) block, each read here, one at a time."""
    (g, _), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    stops = bounds[g]
    out = None
    for f0, f1 in zip(stops[:-1], stops[1:]):
        block = backend[f0:f1, y0:y1, x0:x1]
        if kind == "legacy":
            out = kernels.fold_sum_float32(out, block)
        else:
            out = kernels.fold_step(kind, out, block, acc)
        del block
    return out[None]


def _fold_finish(parts, kind, divide, out_dtype):
    return kernels.fold_finish(kind, *[p[0] for p in _flat(parts)], divide=divide, dtype=np.dtype(out_dtype))


def _reduce(series, nframes, name, kind, dtype=None) -> xr.DataArray:
    s, backend = _reader(series, nframes)
    return _image(s, _fold(s.data, kind, dtype or s.dtype, backend=backend), name)


def max(series, nframes: int = 0) -> xr.DataArray:  # noqa: A001
    """Element-wise maximum over the first ``nframes`` frames (0 = all); input dtype.

    >>> int(max(np.arange(10.0).reshape(10, 1, 1), nframes=5).values[0, 0])
    4
    """
    return _reduce(series, nframes, "max", "max")


def min(series, nframes: int = 0) -> xr.DataArray:  # noqa: A001
    """Element-wise minimum over frames; input dtype (NaN propagates, see :func:`nanmin`)."""
    return _reduce(series, nframes, "min", "min")


def nanmax(series, nframes: int = 0) -> xr.DataArray:
    """Maximum over frames ignoring NaN."""
    return _reduce(series, nframes, "nanmax", "nanmax")


def nanmin(series, nframes: int = 0) -> xr.DataArray:
    """Minimum over frames ignoring NaN."""
    return _reduce(series, nframes, "nanmin", "nanmin")


def sum(series, nframes: int = 0) -> xr.DataArray:  # noqa: A001
    """Sum over frames, accumulated and returned in float64.

    >>> float(sum(np.arange(10.0).reshape(10, 1, 1)).values[0, 0])
    45.0
    """
    return _reduce(series, nframes, "sum", "sum", np.float64)


def nansum(series, nframes: int = 0) -> xr.DataArray:
    """Sum over frames ignoring NaN (float64)."""
    return _reduce(series, nframes, "nansum", "nansum", np.float64)


def _legacy_fold(data: da.Array, init: np.ndarray | None = None, backend: Backend | None = None) -> da.Array:
    """Sequential float32 sum of frames from ``init`` (legacy rounding), per (y, x) block.

    From a reader: one task per block reads and adds its frame blocks in order.
    Otherwise: a chain of delayed steps per block (``fold_sum_float32``), each
    adding the next frame block.
    """
    if backend is not None and init is None:
        return _fold_backend(data, "legacy", np.dtype(np.float32), 0, None, backend)
    name = "legacy-f32-fold-" + tokenize(data.name, init)
    blocks = data.to_delayed()
    ys = np.cumsum((0,) + data.chunks[1])
    xs = np.cumsum((0,) + data.chunks[2])
    meta = meta_like(data, ndim=2, dtype=np.float32)
    rows = []
    for j in range(len(data.chunks[1])):
        row = []
        for k in range(len(data.chunks[2])):
            prev = None if init is None else init[ys[j] : ys[j + 1], xs[k] : xs[k + 1]]
            for i in range(len(data.chunks[0])):
                prev = dask.delayed(kernels.fold_sum_float32, pure=True)(
                    prev, blocks[i, j, k], dask_key_name=(name + "-step", i, j, k))
            row.append(da.from_delayed(prev, shape=(int(ys[j + 1] - ys[j]), int(xs[k + 1] - xs[k])),
                                       dtype=np.float32, meta=meta))
        rows.append(row)
    return da.block(rows)


def mean(series, nframes: int = 0, legacy: bool = False, dtype=np.float32) -> xr.DataArray:
    """Mean over frames: float64 accumulation, ``dtype`` (float32) output.

    ``legacy=True`` reproduces the legacy float32 running sum exactly
    (16777216 + 1 stays 16777216).

    >>> float(mean(np.arange(10.0).reshape(10, 1, 1)).values[0, 0])
    4.5
    """
    s, backend = _reader(series, nframes)
    nf = s.shape[0]
    if legacy:
        data = (_legacy_fold(s.data, backend=backend) / nf).astype(np.float32)
    else:
        data = _fold(s.data, "sum", dtype, divide=nf, backend=backend)
    return _image(s, data, "mean", legacy=int(bool(legacy)))


average = mean


def nanmean(series, nframes: int = 0, dtype=np.float32) -> xr.DataArray:
    """Mean over frames ignoring NaN (float64 accumulation)."""
    s = as_series(series, nframes)
    return _image(s, da.nanmean(s.data, axis=0, dtype=np.float64, split_every=split_every(s.data, 16)).astype(dtype), "nanmean")


def std(series, nframes: int = 0, ddof: int = 0, dtype=np.float32) -> xr.DataArray:
    """Standard deviation over frames (float64 accumulation, ``dtype`` output)."""
    s = as_series(series, nframes)
    return _image(s, da.std(s.data, axis=0, ddof=ddof, dtype=np.float64, split_every=split_every(s.data, 24)).astype(dtype), "std")


def nanstd(series, nframes: int = 0, ddof: int = 0, dtype=np.float32) -> xr.DataArray:
    """Standard deviation over frames ignoring NaN."""
    s = as_series(series, nframes)
    return _image(s, da.nanstd(s.data, axis=0, ddof=ddof, dtype=np.float64, split_every=split_every(s.data, 24)).astype(dtype), "nanstd")


# ----------------------------------------------------------------------------- percentiles


def _check_q(q) -> tuple[np.ndarray, bool]:
    arr = np.asarray(q, dtype=np.float64)
    if arr.ndim > 1 or arr.size == 0:
        raise ParameterError(f"q must be a number or a list of numbers, got {q!r}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > 100):
        raise ParameterError(f"percentile q must be within [0, 100], got {q!r}")
    return arr, arr.ndim == 0


def percentile(series, q, nframes: int = 0, *, method: str = "linear", band_bytes: int | None = None,
               dtype=np.float32, plan: str | None = None, _nan: bool = False) -> xr.DataArray:
    """Exact percentile(s) over frames, bit-identical to ``np.percentile(axis=0)`` cast to ``dtype``.

    Computed in bands of pixels holding all frames (band height from the memory
    budget, or ``band_bytes`` of input per band). How the bands get their data is
    chosen from the storage layout and the budget (see :mod:`lazyastro.frames.bands`):
    rows read straight from the file when that decodes nothing twice, otherwise a
    first pass that reads each storage chunk once into band-shaped temporary tiles.
    Memory stays within the budget whatever the chunking, also when computed
    together with other stats.

    Parameters
    ----------
    series : DataArray or array
        Image series ``(frame, y, x)``.
    q : float or sequence of float
        Percentile(s) in ``[0, 100]``; a sequence gives dims ``(quantile, y, x)``.
    nframes : int
        Use the first ``nframes`` frames (0: all).
    method : str
        NumPy's percentile method (default ``linear``).
    band_bytes : int, optional
        Bytes of input per band instead of the memory budget.
    dtype : dtype
        Result dtype (float32).
    plan : {None, "direct", "rechunk", "spill"}
        Force a band plan (default: chosen).

    Returns
    -------
    DataArray
        Lazy image(s), attrs ``q``, ``band_rows`` and ``band_plan``.

    Raises
    ------
    ParameterError
        If ``q`` is outside ``[0, 100]`` or the plan is not possible.

    Examples
    --------
    >>> float(percentile(np.arange(10.0).reshape(10, 1, 1), 50).values[0, 0])
    4.5
    """
    qs, scalar = _check_q(q)
    s, backend = _reader(series, nframes)
    src = backend if backend is not None else source_of(as_series(series).data)
    bp = choose_plan(s.data, nq=qs.size, out_itemsize=np.dtype(dtype).itemsize, source=src,
                     band_bytes=band_bytes, plan=plan)
    data = band_graph(s.data, bp, qs, nan=_nan, method=method, dtype=dtype)
    if scalar:
        data = data[0]
    name = ("nan" if _nan else "") + "percentile"
    out = _image(s, data, name, q=qs.tolist(), band_rows=bp.rows, band_plan=bp.kind)
    if not scalar:
        out = out.assign_coords(quantile=qs)
    return out


def median(series, nframes: int = 0, **kw) -> xr.DataArray:
    """Exact median over frames: ``percentile(series, 50)``, float32.

    For float input the result equals ``np.percentile(a, 50, axis=0)`` (NumPy's
    linear interpolation of the two middle values), which can differ from
    ``np.median`` by one ulp (``np.median`` averages them as ``(a + b) / 2``);
    for integer input both agree exactly after the cast to float32.

    Parameters
    ----------
    series : DataArray or array
        Image series ``(frame, y, x)``.
    nframes : int
        Use the first ``nframes`` frames (0: all).
    **kw
        Options of :func:`percentile` (``band_bytes``, ``dtype``, ``plan``, ``method``).

    Returns
    -------
    DataArray
        Lazy ``(y, x)`` image.

    Examples
    --------
    >>> float(median(np.arange(10.0).reshape(10, 1, 1)).values[0, 0])
    4.5
    """
    out = percentile(series, 50, nframes, **kw)
    out.name = out.attrs["stat"] = "median"
    return out


def nanpercentile(series, q, nframes: int = 0, **kw) -> xr.DataArray:
    """Exact percentile over frames ignoring NaN (``np.nanpercentile``)."""
    return percentile(series, q, nframes, _nan=True, **kw)


def nanmedian(series, nframes: int = 0, **kw) -> xr.DataArray:
    """Exact median over frames ignoring NaN."""
    out = percentile(series, 50, nframes, _nan=True, **kw)
    out.name = out.attrs["stat"] = "nanmedian"
    return out


def compute_stats(series, stats: Sequence[str], nframes: int = 0, legacy: bool = False,
                  desc: str = "stats") -> dict[str, np.ndarray]:
    """Compute several named stats (``max``, ``percentile:99.5``...) in one pass; NumPy images.

    >>> compute_stats(np.arange(8.0).reshape(2, 2, 2), ["max", "median"])["median"].tolist()
    [[2.0, 3.0], [4.0, 5.0]]
    """
    from ..core.execution import compute

    lazy = [stat_by_name(series, name, nframes, legacy) for name in stats]
    values = compute(*[v.data for v in lazy], desc=desc)
    return {name: np.asarray(v) for name, v in zip(stats, values)}


def stat_by_name(series, spec: str, nframes: int = 0, legacy: bool = False) -> xr.DataArray:
    """Lazy stat from a name such as ``mean``, ``median`` or ``percentile:99.5``."""
    name, _, arg = spec.partition(":")
    name = name.strip().lower()
    if name in ("percentile", "nanpercentile"):
        if not arg:
            raise ParameterError(f"{name} needs a value, e.g. '{name}:99.5'")
        try:
            q = float(arg)
        except ValueError:
            raise ParameterError(f"invalid percentile {arg!r} in {spec!r}") from None
        return (nanpercentile if name.startswith("nan") else percentile)(series, q, nframes)
    if arg:
        raise ParameterError(f"stat {name!r} takes no value (got {spec!r})")
    if name in ("mean", "average"):
        return mean(series, nframes, legacy=legacy)
    funcs = {"max": max, "min": min, "sum": sum, "std": std, "median": median, "nanmax": nanmax,
             "nanmin": nanmin, "nansum": nansum, "nanmean": nanmean, "nanstd": nanstd, "nanmedian": nanmedian}
    if name not in funcs:
        raise ParameterError(f"unknown stat {name!r}; use one of {', '.join(STATS)} (percentile:Q)")
    return funcs[name](series, nframes)
