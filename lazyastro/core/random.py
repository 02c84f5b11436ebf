"""Seeded randomness on a fixed grid of blocks.

The random numbers of block ``index`` of a fixed grid depend only on
``(seed, index)``: not on dask chunking, the scheduler, the order blocks run in,
or on a resume that recomputes some blocks. Each block gets its own
:class:`numpy.random.Generator` (PCG64) from a :class:`numpy.random.SeedSequence`
whose ``spawn_key`` is the block's grid index, so any block can be regenerated
alone and blocks are statistically independent.

:func:`grid_random` fills any region (a dask block that need not match the
grid) from the grid blocks it overlaps; :func:`grid_array` is the lazy dask
array of a whole grid, for any chunking.

>>> import numpy as np
>>> a = block_rng(42, (0, 1)).standard_normal(3)
>>> b = block_rng(42, (0, 1)).standard_normal(3)
>>> bool(np.array_equal(a, b)), bool(np.array_equal(a, block_rng(42, (1, 0)).standard_normal(3)))
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["block_rng", "check_seed", "grid_array", "grid_index", "grid_random", "standard_normal"]

Draw = Callable[[np.random.Generator, tuple], Any]


def check_seed(seed: int | None, *, name: str = "seed") -> int:
    """Validate a seed: a non-negative integer (``None`` draws a fresh one from the OS).

    Parameters
    ----------
    seed : int or None
        The seed to check.
    name : str, optional
        Name used in the error message.

    Returns
    -------
    int

    Raises
    ------
    ParameterError
        If ``seed`` is negative, a bool or not an integer.

    Examples
    --------
    >>> check_seed(7)
    7
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy % 2**63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"{name} must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ParameterError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def block_rng(seed: int, index: int | Sequence[int], *, stream: int = 0) -> np.random.Generator:
    """The generator of block ``index`` (an int or a tuple of ints) of a grid seeded by ``seed``.

    ``stream`` separates independent uses of one seed (e.g. noise vs. source
    positions) without changing either.

    Parameters
    ----------
    seed : int
        Non-negative seed of the whole grid.
    index : int or tuple of int
        Grid index of the block (non-negative).
    stream : int, optional
        Independent stream number (default 0).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ParameterError
        If the seed, the stream or an index is negative or not an integer.

    Examples
    --------
    >>> float(block_rng(1, 3).random()) == float(block_rng(1, (3,)).random())
    True
    """
    seed = check_seed(seed)
    idx = (index,) if isinstance(index, int | np.integer) else tuple(index)
    if any(isinstance(i, bool) or not isinstance(i, int | np.integer) or i < 0 for i in idx):
        raise ParameterError(f"block index must be non-negative integers, got {index!r}")
    key = (_check_int(stream, "stream"), *(int(i) for i in idx))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


def grid_index(start: Sequence[int], block: Sequence[int]) -> tuple[int, ...]:
    """Grid index of the block starting at ``start`` on a grid of ``block``-sized blocks.

    Parameters
    ----------
    start : sequence of int
        First element of the block along each axis.
    block : sequence of int
        Grid block shape.

    Returns
    -------
    tuple of int

    Raises
    ------
    ParameterError
        If ``start`` is not on the grid.

    Examples
    --------
    >>> grid_index((512, 1024), (256, 256))
    (2, 4)
    """
    if any(s % b for s, b in zip(start, block)):
        raise ParameterError(f"region start {tuple(start)} is not on the {tuple(block)} grid")
    return tuple(int(s) // int(b) for s, b in zip(start, block))


def _check_grid(shape, grid, region):
    shape = tuple(int(s) for s in shape)
    grid = tuple(int(g) for g in grid)
    if len(grid) != len(shape) or any(g < 1 for g in grid):
        raise ParameterError(f"grid {grid} must have one positive block size per axis of shape {shape}")
    if region is None:
        region = tuple(slice(0, s) for s in shape)
    region = tuple(region)
    if len(region) != len(shape) or not all(isinstance(r, slice) for r in region):
        raise ParameterError(f"region must be {len(shape)} slices, got {region!r}")
    if any(r.step not in (None, 1) for r in region):
        raise ParameterError(f"region slices must have step 1, got {region!r}")
    region = tuple(slice(*r.indices(s)[:2]) for r, s in zip(region, shape))
    region = tuple(slice(r.start, max(r.start, r.stop)) for r in region)
    return shape, grid, region


def grid_random(seed: int, shape: Sequence[int], grid: Sequence[int], draw: Draw, region=None, *,
                stream: int = 0, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
    """Fill ``region`` (slices of an array of ``shape``) from per-grid-block generators.

    ``draw(rng, block_shape)`` returns the values of one grid block (blocks at the
    far edges are smaller); the region may cover any part of any blocks, so dask
    chunks need not match the grid. Only the grid blocks the region overlaps are
    drawn.

    Parameters
    ----------
    seed : int
        Non-negative seed of the grid.
    shape : sequence of int
        Shape of the whole (virtual) array.
    grid : sequence of int
        Shape of one grid block; the random numbers follow this grid.
    draw : callable
        ``draw(rng, block_shape) -> array`` of ``block_shape``; a module-level
        function if the graph is run by processes or a cluster.
    region : tuple of slice, optional
        The part of the array to return (default: all of it).
    stream : int, optional
        Independent stream number (default 0).
    dtype : dtype, optional
        Output dtype (default float64).
    out : ndarray, optional
        Host array of the region's shape to fill instead of a new one.

    Returns
    -------
    numpy.ndarray
        The values of ``region``.

    Raises
    ------
    ParameterError
        If the grid, region or seed is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> full = grid_random(5, (6, 6), (4, 4), lambda r, s: r.random(s))
    >>> part = grid_random(5, (6, 6), (4, 4), lambda r, s: r.random(s), (slice(2, 5), slice(1, 6)))
    >>> bool(np.array_equal(full[2:5, 1:6], part))
    True
    """
    shape, grid, region = _check_grid(shape, grid, region)
    rshape = tuple(r.stop - r.start for r in region)
    if out is None:
        out = np.empty(rshape, dtype=dtype)
    elif tuple(out.shape) != rshape:
        raise ParameterError(f"out has shape {tuple(out.shape)}, the region {rshape}")
    if 0 in rshape:
        return out
    first = [r.start // g for r, g in zip(region, grid)]
    last = [(r.stop - 1) // g for r, g in zip(region, grid)]
    for idx in np.ndindex(*(b - a + 1 for a, b in zip(first, last))):
        gi = tuple(a + i for a, i in zip(first, idx))
        lo = [g * i for g, i in zip(grid, gi)]
        hi = [min(s, low + g) for s, low, g in zip(shape, lo, grid)]
        values = np.asarray(draw(block_rng(seed, gi, stream=stream), tuple(h - low for h, low in zip(hi, lo))))
        src = tuple(slice(max(r.start, low) - low, min(r.stop, h) - low) for r, low, h in zip(region, lo, hi))
        dst = tuple(slice(max(r.start, low) - r.start, min(r.stop, h) - r.start)
                    for r, low, h in zip(region, lo, hi))
        out[dst] = values[src]
    return out


def standard_normal(rng: np.random.Generator, shape: tuple, dtype=np.float32) -> np.ndarray:
    """``rng.standard_normal(shape, dtype)``: a picklable ``draw`` for :func:`grid_random` (float32).

    Examples
    --------
    >>> standard_normal(block_rng(0, 0), (2,)).dtype.name
    'float32'
    """
    return rng.standard_normal(shape, dtype=dtype)


def _grid_block(seed, shape, grid, draw, stream, dtype, like, block_info=None):
    region = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    values = grid_random(seed, shape, grid, draw, region, stream=stream, dtype=dtype)
    if like is None:
        return values
    from .backend import array_namespace

    return array_namespace(like).asarray(values)


def grid_array(seed: int, shape: Sequence[int], *, grid: Sequence[int], draw: Draw = standard_normal,
               chunks="auto", dtype=np.float32, stream: int = 0, like=None):
    """A lazy dask array of random numbers on a fixed grid: identical for any ``chunks``.

    Parameters
    ----------
    seed : int
        Non-negative seed of the grid.
    shape : sequence of int
        Shape of the array.
    grid : sequence of int
        Shape of one grid block (the unit the random numbers are drawn in).
    draw : callable, optional
        ``draw(rng, block_shape)``; default :func:`standard_normal` (float32).
    chunks : optional
        Dask chunks of the result (any; they need not match ``grid``).
    dtype : dtype, optional
        Dtype of the result (default float32).
    stream : int, optional
        Independent stream number (default 0).
    like : array, optional
        Blocks are made in the array module of ``like`` (numpy or CuPy); the
        values do not depend on it.

    Returns
    -------
    dask.array.Array

    Raises
    ------
    ParameterError
        If the seed, shape or grid is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> a = grid_array(3, (5, 7), grid=(2, 4), chunks=(5, 7)).compute()
    >>> b = grid_array(3, (5, 7), grid=(2, 4), chunks=(3, 2)).compute()
    >>> bool(np.array_equal(a, b)), a.dtype.name
    (True, 'float32')
    """
    import dask.array as da
    from dask.base import tokenize

    from .backend import meta_like

    seed = check_seed(seed)
    stream = _check_int(stream, "stream")
    shape, grid, _ = _check_grid(shape, grid, None)
    dtype = np.dtype(dtype)
    chunks = da.core.normalize_chunks(chunks, shape, dtype=dtype)
    meta = meta_like(np.empty(0) if like is None else like, ndim=len(shape), dtype=dtype)
    like = None if like is None else meta
    name = "grid-random-" + tokenize(seed, shape, grid, draw, stream, dtype.str, chunks, type(meta).__module__)
    return da.map_blocks(_grid_block, seed, shape, grid, draw, stream, dtype, like, chunks=chunks, dtype=dtype,
                         meta=meta, name=name)
