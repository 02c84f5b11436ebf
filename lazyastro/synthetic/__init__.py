"""Synthetic data for demos, tests and benchmarks (deterministic, chunking-independent).

>>> import numpy as np
>>> a = deep_field_series(2, 300, 200, seed=4, chunks=(2, 300, 200)).values
>>> b = deep_field_series(2, 300, 200, seed=4, chunks=(1, 70, 64)).values
>>> bool(np.array_equal(a, b))
True
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.backend import array_namespace, meta_like
from ..core.chunking import auto_chunks
from ..core.errors import ParameterError
from ..core.random import check_seed
from .kernels import NOISE_GRID, STRIP, render_frames, source_catalogue

__all__ = ["deep_field_series"]


def _block(catalogue, shape, seed, block_info=None):
    (f0, f1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return render_frames(catalogue, range(f0, f1), y0, y1, x0, x1, shape=shape, seed=seed)


def deep_field_series(
    nframes: int = 64, ny: int = 4096, nx: int = 4096, *, seed: int = 0, chunks=None, like=None
) -> xr.DataArray:
    """A lazy ``(frame, y, x)`` float32 series: one deep field, independent noise per frame.

    Values depend only on ``seed`` and the shape (never on chunking, scheduler,
    or on which blocks are computed): random numbers come from
    :mod:`lazyastro.core.random` on a fixed grid.

    Parameters
    ----------
    nframes, ny, nx : int
        Shape of the series.
    seed : int, optional
        Non-negative seed (default 0).
    chunks : optional
        Dask chunks (default: from the memory budget, whole 256-row noise strips).
    like : array, optional
        Make the blocks in the array module of ``like`` (e.g. ``cupy.empty(0)``
        for blocks on a GPU); the values do not depend on it.

    Returns
    -------
    xarray.DataArray
        Lazy float32 series with ``seed`` and ``nsources`` in ``attrs``.

    Raises
    ------
    ParameterError
        If the shape is not positive or the seed is invalid.

    Examples
    --------
    >>> s = deep_field_series(4, 512, 512, seed=1)
    >>> s.dims, s.dtype.name
    (('frame', 'y', 'x'), 'float32')
    """
    if min(nframes, ny, nx) <= 0:
        raise ParameterError(f"series shape must be positive, got {(nframes, ny, nx)}")
    seed = check_seed(seed)
    shape = (int(nframes), int(ny), int(nx))
    if chunks is None:
        chunks = auto_chunks(shape, np.float32)
        if chunks[1] < ny:  # keep noise strips whole inside a block where possible
            chunks = (chunks[0], max(STRIP, chunks[1] // STRIP * STRIP), chunks[2])
    chunks = da.core.normalize_chunks(chunks, shape, dtype=np.float32)
    cat = source_catalogue(ny, nx, seed)
    xp = array_namespace(like)
    meta = meta_like(np.empty(0) if like is None else like, ndim=3, dtype=np.float32)
    name = "deep-field-" + tokenize(shape, seed, chunks, NOISE_GRID, xp.__name__)
    data = da.map_blocks(_block, xp.asarray(cat), shape, seed, chunks=chunks, dtype=np.float32, meta=meta,
                         name=name)
    attrs = {"OBJECT": "synthetic deep field", "seed": seed, "nsources": len(cat)}
    out = xr.DataArray(data, dims=("frame", "y", "x"), attrs=attrs)
    out.name = "deep_field"
    return out
