"""Helpers shared by the format readers: dim names and DataArray wrapping."""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import xarray as xr

from ..core.stream import default_dims

__all__ = ["default_dims", "wrap", "covering_box", "finish_box"]


def wrap(data: da.Array, dims: Sequence[str], attrs: dict, name: str | None = None) -> xr.DataArray:
    out = xr.DataArray(data, dims=tuple(dims), attrs=attrs)
    out.name = name  # xarray would otherwise take the dask graph name
    return out


def covering_box(key, shape) -> tuple[tuple[slice, ...], tuple]:
    """The contiguous box a basic/fancy index reads, and what to apply to it afterwards.

    Direct readers read ``box`` (steps of 1) and pass the result to :func:`finish_box`
    with ``post``: integer axes are squeezed, steps and index arrays applied in memory
    (dask fuses such indexing into the read tasks).

    >>> box, post = covering_box((2, slice(None, None, -2)), (4, 5))
    >>> box
    (slice(2, 3, None), slice(0, 5, None))
    >>> finish_box(np.arange(5)[None], post).tolist()
    [4, 2, 0]
    """
    key = key if isinstance(key, tuple) else (key,)
    key = key + (slice(None),) * (len(shape) - len(key))
    box, squeeze, step = [], [], []
    for ax, (k, n) in enumerate(zip(key, shape)):
        if isinstance(k, int | np.integer):
            k = int(k) + n if k < 0 else int(k)
            box.append(slice(k, k + 1))
            squeeze.append(ax)
            step.append(slice(None))
        elif isinstance(k, slice):  # the covering range, then the step
            start, stop, st = k.indices(n)
            lo, hi = (start, max(start, stop)) if st > 0 else (stop + 1, start + 1)
            box.append(slice(lo, max(lo, hi)))
            step.append(slice(None, None, st))
        else:  # index arrays: the covering box, then take
            idx = np.arange(n)[k]
            lo, hi = (int(idx.min()), int(idx.max()) + 1) if idx.size else (0, 0)
            box.append(slice(lo, hi))
            step.append(idx - lo)
    return tuple(box), (tuple(squeeze), tuple(step))


def finish_box(out: np.ndarray, post: tuple) -> np.ndarray:
    """Apply the squeezes, steps and index arrays of :func:`covering_box` to a read box."""
    squeeze, step = post
    if any(isinstance(s, np.ndarray) for s in step):
        for ax, s in enumerate(step):
            if isinstance(s, np.ndarray):
                out = np.take(out, s, axis=ax)
        step = tuple(slice(None) if isinstance(s, np.ndarray) else s for s in step)
    if any(s.step not in (None, 1) for s in step):
        out = out[step]
    return out.squeeze(axis=squeeze) if squeeze else out
