"""Seeded generator noise on a fixed block grid: any region can be regenerated alone.

The noise of a field is ``N(0, 1)`` float32 of shape ``(y, x, channel)``, drawn per block of
``block x block`` noise pixels (all channels) by :func:`lazyastro.core.random.grid_random`
with the generator of ``(seed, block index)``. The values therefore do not depend on dask
chunks, tile size, overlap, the scheduler or a resume.

>>> import numpy as np
>>> a = noise_field((10, 12), channels=3, seed=1, block=4).compute()
>>> b = noise_window((10, 12), (slice(2, 9), slice(5, 12)), channels=3, seed=1, block=4)
>>> bool(np.array_equal(a[2:9, 5:12], b)), a.dtype.name
(True, 'float32')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import ParameterError
from ..core.random import check_seed, grid_array, grid_random, standard_normal

__all__ = ["noise_field", "noise_window", "DEFAULT_BLOCK"]

#: side of the noise blocks (noise pixels); part of what a seed means, so fixed by default
DEFAULT_BLOCK = 64


def _check(shape_yx, channels, block) -> tuple[tuple[int, int], int, int]:
    if isinstance(shape_yx, int | np.integer):
        shape_yx = (shape_yx, shape_yx)
    shape = tuple(shape_yx)
    if len(shape) != 2 or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1 for v in shape):
        raise ParameterError(f"noise shape must be two positive integers (y, x), got {shape_yx!r}")
    for name, v in (("channels", channels), ("block", block)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    return (int(shape[0]), int(shape[1])), int(channels), int(block)


def noise_window(shape_yx: Sequence[int], region: tuple[slice, slice], *, channels: int, seed: int,
                 block: int = DEFAULT_BLOCK) -> np.ndarray:
    """The noise of ``region`` (two slices) of a field of ``shape_yx``, drawn alone.

    Parameters
    ----------
    shape_yx : (int, int)
        Noise field shape.
    region : (slice, slice)
        Part of the field.
    channels : int
        Noise channels.
    seed : int
        Non-negative seed.
    block : int
        Side of the noise blocks.

    Returns
    -------
    numpy.ndarray (h, w, channels) float32

    Examples
    --------
    >>> noise_window((4, 4), (slice(0, 2), slice(1, 3)), channels=2, seed=0).shape
    (2, 2, 2)
    """
    shape, channels, block = _check(shape_yx, channels, block)
    seed = check_seed(seed)
    return grid_random(seed, (*shape, channels), (block, block, channels), standard_normal,
                       (region[0], region[1], slice(0, channels)), dtype=np.float32)


def noise_field(shape_yx: int | Sequence[int], *, channels: int, seed: int, block: int = DEFAULT_BLOCK,
                chunks=None):
    """A lazy ``(y, x, channel)`` float32 ``N(0, 1)`` noise field drawn per block from the seed.

    Parameters
    ----------
    shape_yx : int or (int, int)
        Noise field shape (noise pixels).
    channels : int
        Noise channels of the generator.
    seed : int
        Non-negative seed.
    block : int, optional
        Side of the fixed noise blocks (default 64); the values depend on it, not on ``chunks``.
    chunks : optional
        Dask chunks (default: ``block`` x ``block`` x all channels).

    Returns
    -------
    dask.array.Array

    Raises
    ------
    ParameterError
        Bad shape, channels, block or seed.

    Examples
    --------
    >>> import numpy as np
    >>> a = noise_field(6, channels=2, seed=3, block=4)
    >>> b = noise_field(6, channels=2, seed=3, block=4, chunks=(5, 1, 2))
    >>> bool(np.array_equal(a.compute(), b.compute())), a.shape
    (True, (6, 6, 2))
    """
    shape, channels, block = _check(shape_yx, channels, block)
    seed = check_seed(seed)
    if chunks is None:
        chunks = (block, block, channels)
    return grid_array(seed, (*shape, channels), grid=(block, block, channels), draw=standard_normal,
                      chunks=chunks, dtype=np.float32)
