"""Aggregate images over frames (hexrd ``imageseries.stats``), computed by lazyastro.

Each function takes any image series (a facade series, a foreign object with
hexrd's protocol, or a NumPy / dask / xarray array, 3-D arrays included for
``percentile``/``median`` too) and returns a NumPy image. The work is a
lazyastro dask graph: memory-bounded, parallel, exact.

========================  =====================================  ============
function                  semantics                              output dtype
========================  =====================================  ============
``max``/``min``           over frames ``0..nframes-1``           input dtype
``sum``                   float64 accumulation                   float64
``average``               mean, float64 accumulation             float32
``percentile``/``median`` exact, NumPy linear interpolation      float32
========================  =====================================  ============

``nframes=0`` means all frames, otherwise the first ``min(len, nframes)``.
``average(..., legacy=True)`` reproduces hexrd's float32 running sum bit for bit.
The ``*_iter`` generators yield partial results for progress bars exactly as
hexrd's (see :mod:`lazyastro.frames.iterators`).

>>> import numpy as np
>>> a = np.arange(10.0, dtype="f4").repeat(4).reshape(10, 2, 2)
>>> float(median(a)[0, 0]), float(average(a, nframes=5)[0, 0])
(4.5, 2.0)
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...core.execution import compute, resolve_scheduler
from .. import iterators as _it
from .. import reductions as _st
from ._bridge import is_local_only, to_dataarray

__all__ = ["max", "min", "sum", "average", "percentile", "median", "max_iter", "min_iter", "sum_iter",
           "average_iter", "percentile_iter", "median_iter", "STATS_BUFFER"]

#: Bytes for the legacy percentile frame buffer (:func:`_alloc_buffer`). ``None`` (default): the
#: lazyastro memory budget at call time (``lazyastro.set_options(memory_budget=...)``).
STATS_BUFFER: int | None = None


def _run(series, lazy) -> np.ndarray:
    scheduler = None
    if is_local_only(series) and resolve_scheduler(None) not in ("sync", "threads"):
        scheduler = "threads"  # a foreign object is read in this process
    (out,) = compute(lazy.data if hasattr(lazy, "dims") else lazy, scheduler=scheduler)
    return np.asarray(out)


def max(ims, nframes: int = 0) -> np.ndarray:  # noqa: A001
    """Element-wise maximum over frames, in the input dtype.

    Parameters
    ----------
    ims : image series or array
        The frames.
    nframes : int
        0 for all frames, else the first ``nframes``.

    Returns
    -------
    ndarray
        The maximum image.

    Examples
    --------
    >>> int(max(np.arange(8).reshape(2, 2, 2))[1, 1])
    7
    """
    s = to_dataarray(ims, nframes)
    return _run(s, _st.max(s))


def min(ims, nframes: int = 0) -> np.ndarray:  # noqa: A001
    """Element-wise minimum over frames, in the input dtype (see :func:`max`)."""
    s = to_dataarray(ims, nframes)
    return _run(s, _st.min(s))


def sum(ims, nframes: int = 0) -> np.ndarray:  # noqa: A001
    """Sum over frames, accumulated in float64 (see :func:`max`)."""
    s = to_dataarray(ims, nframes)
    return _run(s, _st.sum(s))


def average(ims, nframes: int = 0, *, legacy: bool = False) -> np.ndarray:
    """Mean over frames as float32; float64 accumulation (``legacy=True``: hexrd's float32 running sum).

    Parameters
    ----------
    ims : image series or array
        The frames.
    nframes : int
        0 for all frames, else the first ``nframes``.
    legacy : bool
        Reproduce hexrd's float32 accumulation (loses integer precision beyond 2**24).

    Returns
    -------
    ndarray
        float32 mean image.

    Examples
    --------
    >>> x = np.array([[[16777216]], [[1]], [[1]]], "u4")
    >>> float(average(x)[0, 0]), float(average(x, legacy=True)[0, 0])
    (5592406.0, 5592405.5)
    """
    s = to_dataarray(ims, nframes)
    return _run(s, _st.mean(s, legacy=legacy))


def percentile(ims, pctl, nframes: int = 0) -> np.ndarray:
    """Exact percentile over frames (NumPy linear interpolation), float32; any array is accepted.

    Parameters
    ----------
    ims : image series or array
        The frames.
    pctl : float or sequence of float
        Percentile(s) in 0..100.
    nframes : int
        0 for all frames, else the first ``nframes``.

    Returns
    -------
    ndarray
        float32 image (``(len(pctl), rows, cols)`` for a sequence).

    Examples
    --------
    >>> float(percentile(np.arange(10.0).reshape(10, 1, 1), 90)[0, 0])
    8.100000381469727
    """
    s = to_dataarray(ims, nframes)
    return _run(s, _st.percentile(s, pctl))


def median(ims, nframes: int = 0) -> np.ndarray:
    """``percentile(ims, 50, nframes)``."""
    return percentile(ims, 50, nframes)


def max_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running maximum after each of ``nchunk`` frame chunks (:func:`_chunk_stops`)."""
    return _it.max_iter(to_dataarray(ims), nchunk, nframes)


def min_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running minimum after each of ``nchunk`` frame chunks."""
    return _it.min_iter(to_dataarray(ims), nchunk, nframes)


def sum_iter(ims, nchunk: int, nframes: int = 0) -> Iterator[np.ndarray]:
    """Running float64 sum after each of ``nchunk`` frame chunks."""
    return _it.sum_iter(to_dataarray(ims), nchunk, nframes)


def average_iter(ims, nchunk: int, nframes: int = 0, *, legacy: bool = False) -> Iterator[np.ndarray]:
    """Mean of the frames so far (float32) after each of ``nchunk`` frame chunks."""
    return _it.average_iter(to_dataarray(ims), nchunk, nframes, legacy=legacy)


def percentile_iter(ims, pctl, nchunks: int, nframes: int = 0, use_buffer: bool = True) -> Iterator[np.ndarray]:
    """Percentile over frames by ``nchunks`` bands of rows; rows not computed yet are 0 (float32)."""
    return _it.percentile_iter(to_dataarray(ims), pctl, nchunks, nframes, use_buffer)


def median_iter(ims, nchunks: int, nframes: int = 0, use_buffer: bool = True) -> Iterator[np.ndarray]:
    """:func:`percentile_iter` at 50."""
    return percentile_iter(ims, 50, nchunks, nframes, use_buffer)


def _chunk_stops(n: int, nchunks: int) -> list[int]:
    """Inclusive index of the last item of each of ``nchunks`` chunks (``ValueError`` if ``nchunks > n``).

    >>> _chunk_stops(10, 3)
    [3, 6, 9]
    """
    return _it._chunk_stops(n, nchunks)


def _alloc_buffer(ims, nframes: int) -> np.ndarray:
    """Legacy frame buffer: as many whole frames as fit :data:`STATS_BUFFER` bytes."""
    budget = STATS_BUFFER
    return _it._alloc_buffer(to_dataarray(ims), nframes, buffer_bytes=None if budget is None else int(budget))


def _toarray(ims, nframes: int, rows=None, buffer=None) -> np.ndarray:
    """Frames ``0..nframes-1`` (rows ``r0:r1``) as one array, using the legacy frame ``buffer``."""
    return _it._toarray(to_dataarray(ims), nframes, rows=rows, buffer=buffer)

