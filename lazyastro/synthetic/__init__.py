"""Synthetic data for demos, tests and benchmarks (deterministic, chunking-independent)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.chunking import auto_chunks
from ..core.errors import ParameterError
from .kernels import STRIP, render_frames, source_catalogue

__all__ = ["deep_field_series"]


def _block(catalogue, nx, seed, block_info=None):
    (f0, f1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    return render_frames(catalogue, range(f0, f1), y0, y1, x0, x1, nx, seed)


def deep_field_series(
    nframes: int = 64, ny: int = 4096, nx: int = 4096, seed: int = 0, chunks=None
) -> xr.DataArray:
    """A lazy ``(frame, y, x)`` float32 series: one deep field, independent noise per frame.

    Values depend only on ``seed`` (never on chunking or scheduler).

    >>> s = deep_field_series(4, 512, 512, seed=1)
    >>> s.dims, s.dtype.name
    (('frame', 'y', 'x'), 'float32')
    """
    if min(nframes, ny, nx) <= 0:
        raise ParameterError(f"series shape must be positive, got {(nframes, ny, nx)}")
    if chunks is None:
        chunks = auto_chunks((nframes, ny, nx), np.float32)
        if chunks[1] < ny:  # keep noise strips whole inside a block where possible
            chunks = (chunks[0], max(STRIP, chunks[1] // STRIP * STRIP), chunks[2])
    cat = source_catalogue(ny, nx, seed)
    name = "deep-field-" + tokenize(nframes, ny, nx, seed, chunks)
    data = da.map_blocks(
        _block, cat, nx, seed, chunks=da.core.normalize_chunks(chunks, (nframes, ny, nx)),
        dtype=np.float32, meta=np.empty((0, 0, 0), np.float32), name=name,
    )
    attrs = {"OBJECT": "synthetic deep field", "seed": seed, "nsources": len(cat)}
    out = xr.DataArray(data, dims=("frame", "y", "x"), attrs=attrs)
    out.name = "deep_field"
    return out
