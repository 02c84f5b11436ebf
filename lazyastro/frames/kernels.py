"""Pure kernels on one in-memory block of an image series (numpy or CuPy).

No dask, no files, no printing: every function takes arrays and returns arrays,
taking its array module from its input (:func:`lazyastro.core.backend.array_namespace`),
so the same kernel runs on a CuPy block on a GPU. ``np`` is used only for dtypes.

>>> import numpy as np
>>> chunk_stops(10, 3).tolist()
[3, 6, 9]
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from ..core.backend import array_namespace, to_numpy

__all__ = [
    "chunk_stops",
    "densify",
    "sparsify",
    "subtract_dark",
    "flip",
    "FLIP_CODES",
    "fold_sum_float32",
    "fold_step",
    "sum_dtype",
    "fold_finish",
    "FOLDS",
    "band_percentile",
    "running_combine",
    "cast_checked",
]


def chunk_stops(n: int, nchunks: int) -> np.ndarray:
    """Inclusive index of the last item of each of ``nchunks`` chunks of ``n`` items.

    Legacy hexrd ``_chunk_stops``: sizes ``n // nchunks``, the first ``n % nchunks``
    get one more, the first size gets one less, cumulative sum.

    >>> chunk_stops(10, 4).tolist()
    [2, 5, 7, 9]
    """
    n, nchunks = int(n), int(nchunks)
    if nchunks < 1:
        raise ValueError("number of chunks must be at least 1")
    if nchunks > n:
        raise ValueError("number of chunks cannot exceed number of items")
    sizes = np.full(nchunks, n // nchunks, dtype=np.int64)
    sizes[: n % nchunks] += 1
    sizes[0] -= 1
    return np.cumsum(sizes)


def densify(shape: Sequence[int], dtype, rows, cols, values) -> np.ndarray:
    """Dense frame of ``shape`` from sparse (row, col, value) triplets.

    >>> densify((2, 3), "u2", [0, 1], [2, 0], [5, 7]).tolist()
    [[0, 0, 5], [7, 0, 0]]
    """
    xp = array_namespace(values, rows, cols)
    out = xp.zeros(tuple(shape), dtype=dtype)
    out[xp.asarray(rows, dtype=np.intp), xp.asarray(cols, dtype=np.intp)] = xp.asarray(values)
    return out


def sparsify(frame: np.ndarray, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, cols (uint16) and values of the pixels strictly above ``threshold``.

    >>> r, c, v = sparsify(np.array([[0, 3], [1, 0]]), 1)
    >>> r.tolist(), c.tolist(), v.tolist()
    ([0], [1], [3])
    """
    xp = array_namespace(frame)
    rows, cols = xp.nonzero(frame > threshold)
    return rows.astype(np.uint16), cols.astype(np.uint16), frame[rows, cols]


def subtract_dark(block: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """``block - dark`` with negative values set to 0, in NumPy's promoted dtype.

    The output dtype is ``np.result_type(block, dark)`` (as hexrd's
    ``ProcessedImageSeries``): a float32 dark on uint16 frames gives float32
    frames, keeping the fractional part. Unsigned results never wrap around
    (pixels where ``dark > frame`` are 0); signed integers are computed in 64 bits
    and clipped to the range of the output dtype.

    Parameters
    ----------
    block : ndarray
        Frames (any shape broadcastable with ``dark``), NumPy or CuPy.
    dark : ndarray
        Dark image, broadcast against ``block``.

    Returns
    -------
    ndarray
        ``max(block - dark, 0)`` in ``result_type(block, dark)``.

    Examples
    --------
    >>> subtract_dark(np.array([[1, 5]], "u2"), np.array([2, 2], "u2")).tolist()
    [[0, 3]]
    >>> out = subtract_dark(np.array([3], "u2"), np.array([0.5], "f4"))
    >>> out.dtype.name, out.tolist()
    ('float32', [2.5])
    """
    xp = array_namespace(block)
    dark = xp.asarray(dark)
    dtype = np.result_type(block.dtype, dark.dtype)
    if dtype.kind == "u":  # in the output dtype (no 64-bit temporary): wrapped values are zeroed
        out = xp.subtract(block, dark, dtype=dtype)
        out[xp.less(block, dark)] = 0
        return out
    if dtype.kind in "ib":
        out = xp.subtract(block, dark, dtype=np.int64)
        info = np.iinfo(dtype) if dtype.kind != "b" else None
        xp.clip(out, 0, None if info is None else info.max, out=out)
        return out.astype(dtype, copy=False)
    out = xp.subtract(block, dark, dtype=dtype)
    out[out < 0] = 0
    return out


FLIP_CODES = ("y", "v", "x", "h", "vh", "hv", "r180", "t", "T", "ccw90", "r90", "cw90", "r270")


def flip(block: np.ndarray, code: str) -> np.ndarray:
    """Apply a legacy flip code to the last two axes (rows, cols) of ``block``.

    ``y``/``v`` mirror columns, ``x``/``h`` mirror rows, ``vh``/``hv``/``r180``
    rotate 180 degrees, ``t``/``T`` transpose, ``ccw90``/``r90`` rotate 90 degrees
    counter-clockwise, ``cw90``/``r270`` clockwise.

    >>> flip(np.array([[1, 2], [3, 4]]), "r90").tolist()
    [[2, 4], [1, 3]]
    """
    xp = array_namespace(block)
    if code in ("y", "v"):
        out = block[..., :, ::-1]
    elif code in ("x", "h"):
        out = block[..., ::-1, :]
    elif code in ("vh", "hv", "r180"):
        out = block[..., ::-1, ::-1]
    elif code in ("t", "T"):
        out = xp.swapaxes(block, -1, -2)
    elif code in ("ccw90", "r90"):
        out = xp.rot90(block, 1, axes=(-2, -1))
    elif code in ("cw90", "r270"):
        out = xp.rot90(block, -1, axes=(-2, -1))
    else:
        raise ValueError(f"unknown flip code {code!r}; use one of {', '.join(FLIP_CODES)}")
    return xp.ascontiguousarray(out)


def fold_sum_float32(acc: np.ndarray | None, block: np.ndarray) -> np.ndarray:
    """Add the frames of ``block`` one by one to a float32 accumulator (legacy ``average``).

    Reproduces the legacy rounding exactly: the first frame is cast to float32 and
    every later frame is added in place in float32.

    >>> fold_sum_float32(None, np.array([[16777216], [1]], "u4")).tolist()
    [16777216.0]
    """
    start = 0
    if acc is None:
        acc = block[0].astype(np.float32)
        start = 1
    else:
        acc = array_namespace(acc).array(acc, dtype=np.float32, copy=True)
    for frame in block[start:]:
        acc += frame
    return acc


FOLDS = ("max", "min", "nanmax", "nanmin", "sum", "nansum")
_FOLD_UFUNC = {"max": np.maximum, "min": np.minimum, "nanmax": np.fmax, "nanmin": np.fmin}


def sum_dtype(dtype, nframes: int) -> np.dtype:
    """Exact, compact accumulator for summing ``nframes`` frames of ``dtype``.

    8/16-bit integers sum exactly in (u)int32 while the total cannot overflow;
    converted to float64 at the end this equals float64 accumulation bit for bit
    (integer sums below 2**53 are exact in both), with half the memory and about
    twice the speed. Everything else accumulates in float64.

    >>> sum_dtype("u2", 200), sum_dtype("u2", 70000), sum_dtype("f4", 2)
    (dtype('uint32'), dtype('float64'), dtype('float64'))
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        acc = np.dtype(np.uint32 if dtype.kind == "u" else np.int32)
        if int(nframes) * builtins.max(abs(info.min), info.max) <= np.iinfo(acc).max:
            return acc
    return np.dtype(np.float64)


def fold_step(kind: str, acc: np.ndarray | None, block: np.ndarray, acc_dtype=None) -> np.ndarray:
    """Fold the frames of ``block`` (axis 0) into the running image ``acc``.

    ``max``/``min`` (NaN propagates) and ``nanmax``/``nanmin`` (NaN ignored) stay
    in the input dtype; ``sum``/``nansum`` accumulate in ``acc_dtype`` (float64, or
    see :func:`sum_dtype`). ``acc`` is updated **in place** (it must be owned by the
    caller, i.e. the result of an earlier ``fold_step``): no temporary is ever the
    size of the block, so a step holds one block and one image. ``acc=None``
    starts a new image.

    >>> fold_step("sum", fold_step("sum", None, np.ones((2, 1, 2), "u1")), np.ones((3, 1, 2), "u1")).tolist()
    [[5.0, 5.0]]
    """
    xp = array_namespace(block, acc)
    block = xp.asarray(block)
    if block.shape[0] == 0:
        return acc
    if kind in _FOLD_UFUNC:
        op = getattr(xp, _FOLD_UFUNC[kind].__name__)
        if acc is None:
            return op.reduce(block, axis=0)
        for frame in block:
            op(acc, frame, out=acc)
        return acc
    if kind not in ("sum", "nansum"):
        raise ValueError(f"unknown fold {kind!r}; use one of {', '.join(FOLDS)}")
    acc_dtype = np.dtype(acc_dtype or np.float64)
    nan = kind == "nansum" and block.dtype.kind in "fc"
    if acc is None:
        if not nan:
            return xp.sum(block, axis=0, dtype=acc_dtype)
        acc = xp.zeros(block.shape[1:], acc_dtype)
    for frame in block:
        if nan and xp is np:
            xp.add(acc, frame, out=acc, where=~xp.isnan(frame))
        elif nan:  # CuPy ufuncs take no ``where=``
            xp.add(acc, xp.where(xp.isnan(frame), 0, frame), out=acc, casting="unsafe")
        else:
            xp.add(acc, frame, out=acc, casting="unsafe")
    return acc


def fold_finish(kind: str, *partials: np.ndarray, divide: int = 0, dtype=None) -> np.ndarray:
    """Combine partial images of :func:`fold_step` (same ``kind``), then ``/ divide`` and cast.

    Division is done in float64 whatever the accumulator, then rounded to ``dtype``.

    >>> fold_finish("sum", np.array([1.0, 2.0]), np.array([3.0, 4.0]), divide=2, dtype="f4").tolist()
    [2.0, 3.0]
    """
    parts = [p for p in partials if p is not None]
    out = parts[0]
    xp = array_namespace(out)
    if len(parts) > 1:
        op = getattr(xp, _FOLD_UFUNC.get(kind, np.add).__name__)
        out = xp.array(out, copy=True) if not getattr(out.flags, "writeable", True) else out
        for p in parts[1:]:
            op(out, p, out=out)
    dtype = out.dtype if dtype is None else np.dtype(dtype)
    if divide:
        res = xp.empty(out.shape, dtype)
        return xp.divide(out, divide, out=res, dtype=np.float64, casting="unsafe")
    return out.astype(dtype, copy=False)


def running_combine(stat: str, acc: np.ndarray | None, part: np.ndarray) -> np.ndarray:
    """Combine a running ``max``/``min``/``sum`` image with the result of the next frames."""
    xp = array_namespace(part, acc)
    if acc is None:
        return xp.array(part, copy=True)
    if stat == "max":
        return xp.maximum(acc, part)
    if stat == "min":
        return xp.minimum(acc, part)
    if stat == "sum":
        return acc + part
    raise ValueError(f"unknown running statistic {stat!r}")


def band_percentile(
    q, *pieces: np.ndarray, nan: bool = False, method: str = "linear", dtype=np.float32
) -> np.ndarray:
    """Exact percentile over axis 0 of the frames stacked from ``pieces``.

    ``pieces`` are consecutive frame blocks of the same rows; they are copied into
    one fresh array with frames as the last, contiguous axis (partitioning along
    a strided axis is much slower) which is then partitioned in place. The order
    statistics do not depend on the layout, so the result is bit-identical to
    ``np.percentile(np.concatenate(pieces), q, axis=0)``.

    >>> band_percentile(50, np.zeros((1, 1, 2)), np.ones((1, 1, 2))).tolist()
    [[0.5, 0.5]]
    """
    xp = array_namespace(*pieces)
    pieces = [xp.asarray(p) for p in pieces]
    nf = builtins.sum(p.shape[0] for p in pieces)
    dtype_in = np.result_type(*(p.dtype for p in pieces))
    # frames last and contiguous: the partition then walks contiguous memory per pixel
    band = xp.empty(pieces[0].shape[1:] + (nf,), dtype_in)
    view = xp.moveaxis(band, -1, 0)
    # thin pieces (a few frames) are stacked first: a transposing copy of a piece only a
    # few frames deep writes one element per cache line and is many times slower
    f0, group = 0, []
    for i, p in enumerate(pieces):
        group.append(p)
        if builtins.sum(g.shape[0] for g in group) < 32 and i + 1 < len(pieces):
            continue
        block = group[0] if len(group) == 1 else xp.concatenate(group, axis=0)
        xp.copyto(view[f0 : f0 + block.shape[0]], block)
        f0 += block.shape[0]
        group = []
    if xp is np and not nan and method == "linear":
        return _linear_percentile_last(band, q).astype(dtype, copy=False)
    if nan and not hasattr(xp, "nanpercentile"):  # CuPy has no nanpercentile: order statistics on the host
        out = xp.asarray(np.nanpercentile(to_numpy(band), q, axis=-1, method=method, overwrite_input=True))
    else:
        func = xp.nanpercentile if nan else xp.percentile
        out = func(band, q if xp is np else xp.asarray(q, dtype=np.float64), axis=-1, method=method,
                   overwrite_input=True)
    return xp.asarray(out).astype(dtype, copy=False)


def _linear_percentile_last(band: np.ndarray, q) -> np.ndarray:
    """``np.percentile(band, q, axis=-1)`` (linear), bit for bit, sorting ``band`` in place.

    NumPy moves the axis to the front and partitions along it (strided, slow);
    here the contiguous last axis is partitioned, or radix-sorted for integers of
    at most 16 bits (``kind="stable"``, several times faster than a partition),
    and NumPy's own index, weight and interpolation formulas are applied, with
    the same dtype promotion (a Python number ``q`` is a weak scalar).
    """
    n = band.shape[-1]
    weak = type(q) in (int, float)
    virtual = np.asanyarray((n - 1) * np.true_divide(q, 100))
    prev = np.atleast_1d(np.floor(virtual))
    nxt = prev + 1
    v = np.atleast_1d(virtual)
    prev[v >= n - 1] = nxt[v >= n - 1] = -1
    prev[v < 0] = nxt[v < 0] = 0
    prev, nxt = prev.astype(np.intp), nxt.astype(np.intp)
    gammas = v - prev
    prev, nxt = prev % n, nxt % n
    radix = band.dtype.kind in "biu" and band.dtype.itemsize <= 2
    if radix:
        band.sort(axis=-1, kind="stable")  # radix sort
    else:
        # partitioned at the lower neighbours only: the upper one is the minimum of what follows
        band.partition(np.unique(prev), axis=-1)
    out = []
    for j in range(len(v)):
        t = float(gammas[j]) if weak else gammas[j]
        a = band[..., prev[j]]
        b = a if nxt[j] == prev[j] else band[..., nxt[j]] if radix else band[..., prev[j] + 1 :].min(axis=-1)
        diff = b - a
        res = np.add(a, diff * t)
        np.subtract(b, diff * (1 - t), out=res, where=t >= 0.5, casting="unsafe", dtype=res.dtype)
        out.append(res)
    out = out[0] if virtual.ndim == 0 else np.stack(out)
    if band.dtype.kind in "fc":  # NumPy gives NaN where a pixel has one (NaN sorts last)
        nans = np.isnan(band[..., -1]) if radix else np.isnan(band).any(axis=-1)
        if nans.any():
            np.copyto(out, np.asarray(np.nan, out.dtype), where=nans)
    return out


def cast_checked(frame: np.ndarray, dtype) -> np.ndarray:
    """Cast ``frame`` to ``dtype``; raise ``ValueError`` if any value would change.

    >>> cast_checked(np.array([1.0, 2.0]), "u1").tolist()
    [1, 2]
    """
    xp = array_namespace(frame)
    dtype = np.dtype(dtype)
    if frame.dtype == dtype:
        return frame
    out = frame.astype(dtype)
    with np.errstate(invalid="ignore"):
        same = bool(xp.array_equal(out.astype(frame.dtype), frame, equal_nan=frame.dtype.kind in "fc"))
    if not same:
        raise ValueError(f"converting {frame.dtype} to {dtype} would truncate values")
    return out
