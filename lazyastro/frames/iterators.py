"""Partial results for progress bars and previews (legacy ``*_iter`` semantics).

Frame iterators (``max_iter``, ``min_iter``, ``sum_iter``, ``average_iter``) split
the frames at :func:`_chunk_stops` and yield the running result after each
chunk; ``percentile_iter``/``median_iter`` split the *rows* and yield the full
float32 image with rows not yet computed left at 0. Each step is a small dask
graph run with the active scheduler; the last yield is the final result.

>>> import numpy as np
>>> s = np.arange(10, dtype="u2").repeat(4).reshape(10, 2, 2)
>>> [float(a[0, 0]) for a in average_iter(s, 3)]
[1.5, 3.0, 4.5]
"""

from __future__ import annotations

from collections.abc import Iterator

import dask.array as da
import numpy as np

from ..core.config import memory_budget
from ..core.errors import ParameterError
from ..core.execution import compute
from . import kernels
from . import reductions as stats
from .series import as_series

__all__ = ["max_iter", "min_iter", "sum_iter", "average_iter", "mean_iter", "percentile_iter",
           "median_iter", "_chunk_stops", "_alloc_buffer", "_toarray"]


def _chunk_stops(n: int, nchunks: int) -> list[int]:
    """Legacy chunk stops: inclusive index of the last item of each chunk.

    >>> _chunk_stops(10, 4)
    [2, 5, 7, 9]
    """
    try:
        return kernels.chunk_stops(n, nchunks).tolist()
    except ValueError as exc:
        raise ParameterError(str(exc)) from None


def _frame_chunks(ims, nchunk, nframes):
    s = as_series(ims, nframes)
    stops = _chunk_stops(s.shape[0], nchunk)
    start = 0
    for stop in stops:
        yield s, start, stop + 1
        start = stop + 1


def _running(ims, nchunk, nframes, stat) -> Iterator[np.ndarray]:
    func = {"max": da.max, "min": da.min, "sum": lambda x, axis: da.sum(x, axis=axis, dtype=np.float64)}[stat]
    acc = None
    for s, a, b in _frame_chunks(ims, nchunk, nframes):
        (part,) = compute(func(s.data[a:b], axis=0), progress=False)
        acc = kernels.running_combine(stat, acc, np.asarray(part))
        yield acc.copy()


def max_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running maximum after each of ``nchunk`` frame chunks (input dtype).

    >>> [int(a[0, 0]) for a in max_iter(np.arange(10.0).reshape(10, 1, 1), 2)]
    [4, 9]
    """
    return _running(ims, nchunk, nframes, "max")


def min_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running minimum after each frame chunk (input dtype)."""
    return _running(ims, nchunk, nframes, "min")


def sum_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running float64 sum after each frame chunk (a fresh copy each time)."""
    return _running(ims, nchunk, nframes, "sum")


def average_iter(ims, nchunk: int, nframes: int = 0, legacy: bool = False) -> Iterator[np.ndarray]:
    """Mean of the frames so far after each frame chunk, float32.

    Accumulates in float64; ``legacy=True`` reproduces the legacy float32 running sum.
    """
    acc = None
    for s, a, b in _frame_chunks(ims, nchunk, nframes):
        if legacy:
            (acc,) = compute(stats._legacy_fold(s.data[a:b], acc), progress=False)
        else:
            (part,) = compute(da.sum(s.data[a:b], axis=0, dtype=np.float64), progress=False)
            acc = part if acc is None else acc + part
        yield (acc / b).astype(np.float32)


mean_iter = average_iter


def percentile_iter(ims, pctl, nchunks: int, nframes: int = 0, use_buffer: bool = True) -> Iterator[np.ndarray]:
    """Exact percentile over frames, ``nchunks`` bands of rows at a time.

    Each yield is the full float32 image; rows not computed yet are 0.
    ``use_buffer`` is accepted for compatibility: rows are always read band by
    band within the memory budget, so no whole-frame buffer is needed.

    >>> s = np.arange(10.0).repeat(16).reshape(10, 4, 4)
    >>> [a[:, 0].tolist() for a in percentile_iter(s, 50, 2, use_buffer=False)]
    [[4.5, 4.5, 0.0, 0.0], [4.5, 4.5, 4.5, 4.5]]
    """
    s = as_series(ims, nframes)
    qs, scalar = stats._check_q(pctl)
    ny = s.shape[1]
    stops = _chunk_stops(ny, nchunks)
    result = np.zeros(s.shape[1:] if scalar else (len(qs),) + s.shape[1:], dtype=np.float64)
    r0 = 0
    for stop in stops:
        r1 = stop + 1
        part = stats.percentile(s.isel(y=slice(r0, r1)), pctl, dtype=np.float64)
        (values,) = compute(part.data, progress=False)
        result[..., r0:r1, :] = values
        r0 = r1
        yield result.astype(np.float32)


def median_iter(ims, nchunks: int, nframes: int = 0, use_buffer: bool = True) -> Iterator[np.ndarray]:
    """:func:`percentile_iter` at 50."""
    return percentile_iter(ims, 50, nchunks, nframes, use_buffer)


def _alloc_buffer(ims, nframes: int, buffer_bytes: int | None = None) -> np.ndarray:
    """Legacy frame buffer: as many whole frames as fit ``buffer_bytes`` (default: budget).

    >>> _alloc_buffer(np.zeros((10, 4, 4), "f4"), 10, buffer_bytes=100).shape
    (1, 4, 4)
    """
    s = as_series(ims)
    ny, nx = s.shape[1:]
    budget = memory_budget() if buffer_bytes is None else int(buffer_bytes)
    nbf = int(np.floor(budget / (ny * nx * s.dtype.itemsize)))
    return np.empty((min(int(nframes), nbf), ny, nx), dtype=s.dtype)


def _toarray(ims, nframes: int, rows: tuple[int, int] | None = None, buffer: np.ndarray | None = None) -> np.ndarray:
    """Frames ``0..nframes-1`` (rows ``r0:r1`` if given) as one array (legacy helper).

    With a ``buffer``, the first ``len(buffer)`` frames are copied into it when
    ``r0 == 0`` and taken from it afterwards; later frames are read again.
    """
    s = as_series(ims, nframes)
    nf, ny, nx = s.shape
    if rows is None:
        (out,) = compute(s.data, progress=False)
        return np.asarray(out)
    r0, r1 = int(rows[0]), int(rows[1])
    nbf = 0 if buffer is None else min(len(buffer), nf)
    out = np.empty((nf, r1 - r0, nx), dtype=s.dtype)
    if nbf:
        if r0 == 0:
            (buffer[:nbf],) = compute(s.data[:nbf], progress=False)
        out[:nbf] = buffer[:nbf, r0:r1]
    if nbf < nf:
        (out[nbf:],) = compute(s.data[nbf:, r0:r1], progress=False)
    return out
