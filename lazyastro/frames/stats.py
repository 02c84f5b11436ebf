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

import dask._task_spec as ts
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.core import flatten
from dask.highlevelgraph import HighLevelGraph

from ..core.config import memory_budget
from ..core.errors import ParameterError
from . import kernels
from .series import as_series

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


def _workers() -> int:
    """Threads (or processes) that run blocks at once: dask's ``num_workers`` or the CPU count."""
    import dask

    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def fold_groups(nblocks: int, nspatial: int, workers: int | None = None) -> int:
    """Independent frame-block chains per spatial block: enough to keep every worker busy.

    >>> fold_groups(50, 1, workers=2), fold_groups(50, 8, workers=2), fold_groups(1, 1, workers=4)
    (2, 1, 1)
    """
    workers = workers or _workers()
    return int(builtins.max(1, builtins.min(nblocks, -(-workers // builtins.max(1, nspatial)))))


def _inlined_blocks(data: da.Array) -> tuple[dict, dict]:
    """The (optimised) task graph of ``data`` with each block's private subtree inlined.

    Returns ``(graph, nodes)``: ``nodes[block_key]`` is a task that computes the block
    inside the task that uses it (reads included); ``graph`` holds what stays shared
    (data nodes such as a file reader or an in-memory array, tasks used by several
    blocks). A consumer that embeds its block's node reads the block only when it
    runs, so the scheduler cannot read blocks ahead of the fold and hold them.
    """
    keys = list(flatten(data.__dask_keys__()))
    dsk = data.__dask_optimize__(data.__dask_graph__(), keys)
    dsk = ts.convert_legacy_graph(dict(dsk))
    dependents: dict = {k: 0 for k in dsk}
    for node in dsk.values():
        for d in node.dependencies:
            if d in dependents:
                dependents[d] += 1
    keyset = set(keys)
    inlined: set = set()

    def inline(node):
        subs = {}
        for d in node.dependencies:
            dep = dsk.get(d)
            if dep is None or isinstance(dep, ts.DataNode) or dependents[d] != 1 or d in keyset:
                continue
            subs[d] = inline(dep)
            inlined.add(d)
        return node.substitute(subs) if subs else node

    nodes = {}
    for k in keys:
        node = dsk[k]
        if isinstance(node, ts.DataNode):
            nodes[k] = ts.TaskRef(k)
            continue
        nodes[k] = inline(node)
        inlined.add(k)
    graph = {k: v for k, v in dsk.items() if k not in inlined}
    return graph, nodes


def _fold(data: da.Array, kind: str, dtype, divide: int = 0) -> da.Array:
    """Reduce over frames with a memory-bounded fold graph (see :func:`kernels.fold_step`).

    For every (y, x) block the frame blocks are split into a few consecutive groups
    (enough chains to keep all workers busy, see :func:`fold_groups`); each group is a
    chain of tasks that reads one block (the read is inlined in the task) and folds
    it into a running image in place; a last task combines the groups' images,
    divides and casts. Memory is, per worker, one input block and one image in the
    accumulator dtype, whatever the number of frames.
    """
    dtype = np.dtype(dtype)
    acc = kernels.sum_dtype(data.dtype, data.shape[0]).str if kind in ("sum", "nansum") else None
    name = f"fold-{kind}-" + tokenize(data, kind, dtype.str, divide)
    nfb, nyb, nxb = (len(c) for c in data.chunks)
    groups = fold_groups(nfb, nyb * nxb)
    bounds = np.linspace(0, nfb, groups + 1).round().astype(int)
    layer, nodes = _inlined_blocks(data)
    for j in range(nyb):
        for k in range(nxb):
            lasts = []
            for g in range(groups):
                prev = None
                for i in range(bounds[g], bounds[g + 1]):
                    key = (name + "-step", i, j, k)
                    ref = ts.TaskRef(prev) if prev is not None else None
                    layer[key] = ts.Task(key, kernels.fold_step, kind, ref, nodes[(data.name, i, j, k)], acc)
                    prev = key
                lasts.append(ts.TaskRef(prev))
            key = (name, j, k)
            layer[key] = ts.Task(key, _fold_finish, kind, divide, dtype.str, *lasts)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, chunks=data.chunks[1:], dtype=dtype, meta=np.empty((0, 0), dtype))


def _fold_finish(kind, divide, dtype, *partials):
    return kernels.fold_finish(kind, *partials, divide=divide, dtype=np.dtype(dtype))


def _reduce(series, nframes, name, kind, dtype=None) -> xr.DataArray:
    s = as_series(series, nframes)
    return _image(s, _fold(s.data, kind, dtype or s.dtype), name)


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


def _legacy_fold(data: da.Array, init: np.ndarray | None = None) -> da.Array:
    """Sequential float32 sum of frames from ``init`` (legacy rounding): a task chain per (y, x) block."""
    name = "legacy-f32-fold-" + tokenize(data, init)
    layer: dict = {}
    ys = np.cumsum((0,) + data.chunks[1])
    xs = np.cumsum((0,) + data.chunks[2])
    for j in range(len(data.chunks[1])):
        for k in range(len(data.chunks[2])):
            prev = None if init is None else init[ys[j] : ys[j + 1], xs[k] : xs[k + 1]]
            for i in range(len(data.chunks[0])):
                key = (name + "-step", i, j, k)
                layer[key] = (kernels.fold_sum_float32, prev, (data.name, i, j, k))
                prev = key
            layer[(name, j, k)] = prev
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[data])
    return da.Array(graph, name, chunks=data.chunks[1:], dtype=np.float32, meta=np.empty((0, 0), np.float32))


def mean(series, nframes: int = 0, legacy: bool = False, dtype=np.float32) -> xr.DataArray:
    """Mean over frames: float64 accumulation, ``dtype`` (float32) output.

    ``legacy=True`` reproduces the legacy float32 running sum exactly
    (16777216 + 1 stays 16777216).

    >>> float(mean(np.arange(10.0).reshape(10, 1, 1)).values[0, 0])
    4.5
    """
    s = as_series(series, nframes)
    nf = s.shape[0]
    if legacy:
        data = (_legacy_fold(s.data) / nf).astype(np.float32)
    else:
        data = _fold(s.data, "sum", dtype, divide=nf)
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


BAND_COPIES = 3


def band_rows(nframes: int, nrows: int, ncols: int, itemsize: int, budget: int | None = None,
              workers: int | None = None) -> int:
    """Rows per band so that all bands being processed at once fit the memory budget.

    A band task holds its input pieces, one contiguous copy and the partition's
    working memory (measured: about 2.3 x band bytes, counted as 3 x);
    ``workers + 1`` bands may be in flight.

    >>> band_rows(200, 2048, 2048, 2, budget=512 * 2**20, workers=2)
    72
    """
    budget = memory_budget() if budget is None else int(budget)
    workers = workers or _workers()
    per_row = builtins.max(1, nframes * ncols * itemsize)
    rows = budget // (BAND_COPIES * (workers + 1) * per_row)
    return int(builtins.min(nrows, builtins.max(1, rows)))


def _align_rows(rows: int, ychunks: tuple[int, ...]) -> int:
    """Align band height to the input's row chunks so each chunk is split evenly.

    >>> _align_rows(42, (128, 128)), _align_rows(300, (128, 128, 44))
    (32, 256)
    """
    c = ychunks[0]
    if len(ychunks) < 2 or rows == c:
        return rows
    if rows > c:
        return rows // c * c
    return c // -(-c // rows)


def _private_copy(arr: da.Array, token: str) -> da.Array:
    """A copy of ``arr``'s graph with renamed task keys, so no task is shared with other bands.

    Shared source reads would let one band's reads hold pieces of every band in
    memory; private copies read (and, for sliceable sources, fuse to) only the band.
    Constants (data nodes such as a reader or a dark image) stay shared.
    """
    keys = list(flatten(arr.__dask_keys__()))
    dsk = ts.convert_legacy_graph(dict(arr.__dask_graph__().cull(set(keys))))
    rename = {
        k: ((f"{k[0]}-{token}",) + tuple(k[1:]) if isinstance(k, tuple) else f"{k}-{token}")
        for k, node in dsk.items()
        if not isinstance(node, ts.DataNode)
    }
    if not all(k in rename for k in keys):
        return arr  # in-memory blocks: nothing is read, nothing to keep private
    layer = {rename.get(k, k): node.substitute(rename, key=rename.get(k, k)) for k, node in dsk.items()}
    name = f"{arr.name}-{token}"
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, chunks=arr.chunks, meta=arr._meta)


def _band_graph(data: da.Array, qs: np.ndarray, scalar: bool, nan: bool, method: str,
                rows: int, dtype, source: da.Array | None = None) -> da.Array:
    """One task per row band, reading every frame block of that band itself.

    Each band reads through a private copy of the input graph (only its rows), and
    those reads are inlined in the band task, so a band's input exists only while
    its task runs: memory is bounded by the bands in flight, not by read-ahead.
    """
    nf, ny, nx = data.shape
    starts = list(range(0, ny, rows))
    sizes = tuple(builtins.min(rows, ny - r0) for r0 in starts)
    q = float(qs) if scalar else qs
    name = "band-percentile-" + tokenize(data, qs.tolist(), nan, method, rows, np.dtype(dtype).str)
    layer: dict = {}
    # ``source``: the reader's array that ``data`` is the first frames of (``nframes``)
    backend_key = _plain_backend(source if source is not None else data, nf)
    for b, r0 in enumerate(starts):
        key = (name, b, 0) if scalar else (name, 0, b, 0)
        if backend_key is not None:
            # a file reader straight from the source: one read of the band's rows, all frames
            read = ts.Task(None, _read_band, ts.TaskRef(backend_key), r0, r0 + sizes[b], nf)
            layer[key] = ts.Task(key, _band_task, q, nan, method, np.dtype(dtype).str, read)
            continue
        band = data[:, r0 : r0 + sizes[b], :]
        if len(band.chunks[1]) > 1 or len(band.chunks[2]) > 1:
            band = band.rechunk({1: -1, 2: -1})
        band = _private_copy(band, f"b{b}-{tokenize(name)}")
        graph, nodes = _inlined_blocks(band)
        layer.update(graph)
        pieces = [nodes[(band.name, i, 0, 0)] for i in range(len(band.chunks[0]))]
        layer[key] = ts.Task(key, _band_task, q, nan, method, np.dtype(dtype).str, *pieces)
    if backend_key is not None:
        src = source if source is not None else data
        layer[backend_key] = ts.convert_legacy_graph(dict(src.__dask_graph__()))[backend_key]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    chunks = (sizes, (nx,)) if scalar else ((len(qs),), sizes, (nx,))
    return da.Array(graph, name, chunks=chunks, dtype=dtype, meta=np.empty((0,) * len(chunks), dtype))


def _plain_backend(data: da.Array, nframes: int | None = None):
    """Key of the :class:`Backend` data node if ``data`` is exactly a reader's array, else ``None``.

    With ``nframes``, the reader must have at least that many frames of the same shape.
    """
    from .series import Backend

    graph = data.__dask_graph__()
    if len(graph.layers) > 2 or not all(str(n).endswith(data.name) for n in graph.layers):
        return None  # a reader's array: its own layer plus the "original-" data node, nothing applied
    dsk = dict(graph)
    found = [k for k, v in dsk.items() if isinstance(getattr(v, "value", v), Backend)]
    if len(found) != 1:
        return None
    backend = getattr(dsk[found[0]], "value", dsk[found[0]])
    if tuple(backend.shape) != tuple(data.shape) or (nframes is not None and nframes > backend.shape[0]):
        return None
    return found[0]


def _read_band(backend, r0: int, r1: int, nframes: int) -> np.ndarray:
    return backend[:nframes, r0:r1, :]


def _band_task(q, nan, method, dtype, *pieces):
    return kernels.band_percentile(q, *pieces, nan=nan, method=method, dtype=np.dtype(dtype))


def percentile(series, q, nframes: int = 0, *, method: str = "linear", band_bytes: int | None = None,
               dtype=np.float32, _nan: bool = False) -> xr.DataArray:
    """Exact percentile(s) over frames, bit-identical to ``np.percentile(axis=0)`` cast to ``dtype``.

    Computed in bands of rows holding all frames (band height from the memory
    budget, or ``band_bytes`` per band); a list ``q`` gives dims ``(quantile, y, x)``.
    Each band reads its rows through a private copy of the input graph, so it can
    be computed together with other stats without holding the series in memory.

    >>> float(percentile(np.arange(10.0).reshape(10, 1, 1), 50).values[0, 0])
    4.5
    """
    qs, scalar = _check_q(q)
    s = as_series(series, nframes)
    nf, ny, nx = s.shape
    if band_bytes is not None:
        rows = band_rows(nf, ny, nx, s.dtype.itemsize, budget=BAND_COPIES * 2 * int(band_bytes), workers=1)
    else:
        # the bands share the budget with the result image (and its assembled copy)
        out_bytes = 2 * ny * nx * np.dtype(dtype).itemsize * qs.size
        rows = band_rows(nf, ny, nx, s.dtype.itemsize, budget=builtins.max(1, memory_budget() - out_bytes))
    rows = _align_rows(rows, s.data.chunks[1])
    full = as_series(series)
    data = _band_graph(s.data, qs, scalar, _nan, method, rows, dtype, source=full.data)
    name = ("nan" if _nan else "") + "percentile"
    out = _image(s, data, name, q=qs.tolist(), band_rows=rows)
    if not scalar:
        out = out.assign_coords(quantile=qs)
    return out


def median(series, nframes: int = 0, **kw) -> xr.DataArray:
    """Exact median over frames (``percentile(series, 50)``), float32."""
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
