"""Chunk sizes derived from one memory budget.

A chunk is sized so that every worker thread can hold a few chunks (input,
output and a temporary) without the process exceeding the budget.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

from .config import memory_budget
from .errors import ParameterError

__all__ = ["chunk_bytes_for_budget", "auto_chunks", "normalize_chunks", "regular_chunks"]

# Copies of one chunk a worker may hold at once (input, result, temporaries).
COPIES_PER_WORKER = 4
MIN_CHUNK_BYTES = 1 * 2**20
MAX_CHUNK_BYTES = 256 * 2**20


def chunk_bytes_for_budget(budget: int | None = None, workers: int | None = None) -> int:
    """Target bytes per chunk: ``budget / (COPIES_PER_WORKER * (workers + 1))``, clamped."""
    budget = memory_budget() if budget is None else int(budget)
    workers = workers or os.cpu_count() or 1
    target = budget // (COPIES_PER_WORKER * (workers + 1))
    return int(min(MAX_CHUNK_BYTES, max(MIN_CHUNK_BYTES, target)))


def auto_chunks(
    shape: Sequence[int],
    dtype: np.dtype | str,
    budget: int | None = None,
    target_bytes: int | None = None,
) -> tuple[int, ...]:
    """Chunk shape of about ``target_bytes`` that splits the leading (slowest) axes first.

    Trailing axes are kept whole as long as possible, so a chunk is one contiguous
    byte range of a C-ordered file (a FITS or raw image), which is what makes
    reading and writing by byte offset efficient.

    >>> auto_chunks((64, 4096, 4096), "float32", target_bytes=32 * 2**20)
    (1, 2048, 4096)
    """
    shape = tuple(int(s) for s in shape)
    itemsize = np.dtype(dtype).itemsize
    target = target_bytes or chunk_bytes_for_budget(budget)
    target_items = max(1, target // itemsize)
    chunks = list(shape)
    # Walk from the last axis to the first: keep trailing axes whole while they fit.
    inner = 1
    for ax in range(len(shape) - 1, -1, -1):
        size = max(shape[ax], 1)
        if inner * size <= target_items:
            inner *= size
            continue
        n = max(1, target_items // inner)
        # Round down to a power of two: aligned chunks compose with shards and tiles.
        chunks[ax] = 1 << (n.bit_length() - 1)
        for lead in range(ax):
            chunks[lead] = 1
        break
    return tuple(max(1, min(c, s)) if s else 1 for c, s in zip(chunks, shape))


def normalize_chunks(
    chunks, shape: Sequence[int], dtype, dims: Sequence[str] | None = None
) -> tuple[int, ...]:
    """Turn ``None``/``"auto"``/int/tuple/``{dim: size}`` into a chunk shape (-1 = whole axis)."""
    shape = tuple(shape)
    if chunks is None or chunks == "auto":
        return auto_chunks(shape, dtype)
    if isinstance(chunks, int):
        chunks = (chunks,) * len(shape)
    if isinstance(chunks, Mapping):
        base = list(auto_chunks(shape, dtype))
        names = list(dims or [])
        for key, value in chunks.items():
            ax = names.index(key) if key in names else key
            if not isinstance(ax, int) or not -len(shape) <= ax < len(shape):
                raise ParameterError(f"chunks refers to unknown dimension {key!r}; dims are {names}")
            base[ax] = value
        chunks = tuple(base)
    if len(chunks) != len(shape):
        raise ParameterError(f"chunks {chunks} do not match an array of {len(shape)} dimensions")
    out = []
    for c, s in zip(chunks, shape):
        if c is None or c == -1 or c == "auto":
            c = s
        if not isinstance(c, int | np.integer) or c <= 0:
            raise ParameterError(f"invalid chunk size {c!r}")
        out.append(int(min(c, s)) if s else 1)
    return tuple(out)


def regular_chunks(chunks: tuple[tuple[int, ...], ...]) -> bool:
    """True if all chunks along each axis are equal except possibly the last."""
    return all(len(set(c[:-1])) <= 1 and (len(c) < 2 or c[-1] <= c[0]) for c in chunks)


def blocks_per_axis(shape: Sequence[int], chunk: Sequence[int]) -> tuple[int, ...]:
    return tuple(math.ceil(s / c) if s else 0 for s, c in zip(shape, chunk))


def reduction_chunks(
    shape: Sequence[int],
    dtype: np.dtype | str,
    axes: Sequence[int],
    budget: int | None = None,
    target_bytes: int | None = None,
) -> tuple[int, ...]:
    """Chunks for reducing over ``axes``: whole along them, split along the others.

    A reduction whose blocks span the reduced axes needs no large tree of
    partial results (which, in float64, can outweigh the input), so memory stays
    bounded by a few blocks.

    >>> reduction_chunks((64, 4096, 4096), "float32", axes=(0,), target_bytes=32 * 2**20)
    (64, 32, 4096)
    """
    shape = tuple(int(s) for s in shape)
    axes = {a % len(shape) for a in axes}
    itemsize = np.dtype(dtype).itemsize
    # Reductions make float64 temporaries several times the block size: use smaller blocks.
    target_items = max(1, (target_bytes or chunk_bytes_for_budget(budget) // 4) // itemsize)
    chunks = list(shape)
    reduced = math.prod(shape[a] for a in axes) or 1
    if reduced > target_items:  # even one output pixel's stack is too big: split the reduced axes
        return auto_chunks(shape, dtype, budget, target_bytes)
    # Split the kept axes, slowest first, keeping trailing kept axes whole while they fit.
    inner = reduced
    kept = [a for a in range(len(shape)) if a not in axes]
    for i in range(len(kept) - 1, -1, -1):
        ax = kept[i]
        if inner * max(shape[ax], 1) <= target_items:
            inner *= max(shape[ax], 1)
            continue
        n = max(1, target_items // inner)
        chunks[ax] = 1 << (n.bit_length() - 1)
        for lead in kept[:i]:
            chunks[lead] = 1
        break
    return tuple(max(1, min(c, s)) if s else 1 for c, s in zip(chunks, shape))


def grow_chunks(
    base: Sequence[int], shape: Sequence[int], dtype: np.dtype | str, target_bytes: int | None = None
) -> tuple[int, ...]:
    """Whole multiples of a storage chunk ``base`` that approach ``target_bytes`` per block.

    Grows the last axis first and an earlier axis only once all later axes are
    whole, so each dask task reads several neighbouring storage chunks in one call
    (fewer, larger tasks) without ever splitting a storage chunk.

    >>> grow_chunks((1, 256, 4096), (64, 4096, 4096), "float32", target_bytes=32 * 2**20)
    (1, 2048, 4096)
    """
    itemsize = np.dtype(dtype).itemsize
    target = target_bytes or chunk_bytes_for_budget()
    out = [min(int(b), int(s)) if s else 1 for b, s in zip(base, shape)]
    for ax in range(len(out) - 1, -1, -1):
        block = math.prod(out) * itemsize
        if block * 2 > target:
            break
        room = target // block
        out[ax] = int(min(shape[ax], out[ax] * max(1, room))) if shape[ax] else 1
        if out[ax] < shape[ax]:
            out[ax] = max(base[ax], out[ax] // base[ax] * base[ax])
            break
    return tuple(out)
