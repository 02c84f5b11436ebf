"""Helpers shared by the format modules: coercion to dask and block geometry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..core.chunking import auto_chunks

__all__ = ["as_dask", "default_dims", "block_slices", "wrap"]


def default_dims(ndim: int) -> tuple[str, ...]:
    """Conventional dim names: ``(y, x)``, ``(frame, y, x)``, ``(band, frame, y, x)``."""
    names = {1: ("x",), 2: ("y", "x"), 3: ("frame", "y", "x"), 4: ("band", "frame", "y", "x")}
    return names.get(ndim, tuple(f"dim_{i}" for i in range(ndim)))


def as_dask(array: Any) -> tuple[da.Array, tuple[str, ...], dict]:
    """Return ``(dask_array, dims, attrs)`` for a DataArray, dask array or ndarray."""
    if isinstance(array, xr.DataArray):
        data = array.data
        dims = tuple(str(d) for d in array.dims)
        attrs = dict(array.attrs)
    else:
        data = array
        dims = None
        attrs = {}
    if not isinstance(data, da.Array):
        data = np.asarray(data)
        data = da.from_array(data, chunks=auto_chunks(data.shape, data.dtype))
    return data, dims or default_dims(data.ndim), attrs


def wrap(data: da.Array, dims: Sequence[str], attrs: dict, name: str | None = None) -> xr.DataArray:
    out = xr.DataArray(data, dims=tuple(dims), attrs=attrs)
    out.name = name  # xarray would otherwise take the dask graph name
    return out


def block_slices(chunks: tuple[tuple[int, ...], ...]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """Yield ``(block_index, slices)`` for every block of a chunked array, in C order."""
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in chunks]
    for idx in itertools.product(*(range(len(c)) for c in chunks)):
        yield idx, tuple(
            slice(int(starts[ax][i]), int(starts[ax][i] + chunks[ax][i])) for ax, i in enumerate(idx)
        )
