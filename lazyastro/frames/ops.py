"""Lazy per-frame processing, as the legacy ``ProcessedImageSeries``.

>>> import numpy as np
>>> s = as_series(np.arange(8, dtype="u2").reshape(2, 2, 2))
>>> process(s, [("dark", np.ones((2, 2), "u2")), ("flip", "h")]).values[0].tolist()
[[1, 2], [0, 0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import numpy as np
import xarray as xr

from ..core.backend import meta_like
from ..core.errors import ParameterError
from . import kernels
from .series import DIMS, as_series, derived

__all__ = ["dark", "flip", "rectangle", "frame_list", "process"]


def dark(series, dark_image) -> xr.DataArray:
    """Subtract a dark image from every frame, setting negative values to 0.

    The output dtype follows NumPy promotion, ``np.result_type(series, dark)``,
    as in hexrd: a float32 dark on uint16 frames gives float32 frames (nothing is
    truncated), a uint16 dark on uint16 frames stays uint16 (without wrap-around).

    Parameters
    ----------
    series : DataArray or array
        Image series ``(frame, y, x)``.
    dark_image : array or DataArray
        Dark image of the frame shape.

    Returns
    -------
    DataArray
        Lazy series of ``max(frame - dark, 0)``.

    Raises
    ------
    ParameterError
        If the dark image does not have the frame shape.

    Examples
    --------
    >>> dark(np.full((1, 1, 2), 3, "u2"), np.array([[1, 5]], "u2")).values.tolist()
    [[[2, 0]]]
    >>> dark(np.full((1, 1, 1), 3, "u2"), np.array([[0.5]], "f4")).dtype
    dtype('float32')
    """
    series = as_series(series)
    d = np.asarray(dark_image.values if isinstance(dark_image, xr.DataArray) else dark_image)
    if d.shape != series.shape[1:]:
        raise ParameterError(f"dark image shape {d.shape} does not match the frame shape {series.shape[1:]}")
    data = series.data
    dtype = np.result_type(series.dtype, d.dtype)
    dd = da.from_array(d, chunks=data.chunks[1:])
    out = da.map_blocks(kernels.subtract_dark, data, dd[None], dtype=dtype,
                        meta=data._meta.astype(dtype))
    return series.copy(data=derived(out, data, kernels.subtract_dark, d, dtype))  # stats read the file directly


def flip(series, code: str) -> xr.DataArray:
    """Flip or rotate every frame with a legacy code (``y``, ``x``, ``vh``, ``t``, ``r90``, ``cw90``...).

    >>> flip(np.arange(4).reshape(1, 2, 2), "v").values[0].tolist()
    [[1, 0], [3, 2]]
    """
    series = as_series(series)
    if code not in kernels.FLIP_CODES:
        raise ParameterError(f"unknown flip code {code!r}; use one of {', '.join(kernels.FLIP_CODES)}")
    data = series.data.rechunk({1: -1, 2: -1})
    swap = code in ("t", "T", "ccw90", "r90", "cw90", "r270")
    chunks = (data.chunks[0], data.chunks[2], data.chunks[1]) if swap else data.chunks
    out = data.map_blocks(kernels.flip, code, chunks=chunks, dtype=series.dtype, meta=meta_like(data))
    return xr.DataArray(out, dims=DIMS, coords={k: v for k, v in series.coords.items() if k not in ("y", "x")},
                        attrs=series.attrs, name=series.name)


def rectangle(series, rect: Sequence[Sequence[int]]) -> xr.DataArray:
    """Keep rows ``r0:r1`` and columns ``c0:c1`` of every frame: ``rect = ((r0, r1), (c0, c1))``.

    >>> rectangle(np.zeros((1, 4, 5)), ((1, 3), (0, 2))).shape
    (1, 2, 2)
    """
    series = as_series(series)
    try:
        (r0, r1), (c0, c1) = [(int(a), int(b)) for a, b in rect]
    except (TypeError, ValueError):
        raise ParameterError(f"rectangle must be ((r0, r1), (c0, c1)), got {rect!r}") from None
    ny, nx = series.shape[1:]
    if not (0 <= r0 < r1 <= ny and 0 <= c0 < c1 <= nx):
        raise ParameterError(f"rectangle {rect!r} is empty or outside the frame shape {(ny, nx)}")
    return series.isel(y=slice(r0, r1), x=slice(c0, c1))


def frame_list(series, frames: Sequence[int]) -> xr.DataArray:
    """Keep only the listed frames (in the given order); ``omega`` coords follow.

    >>> frame_list(np.arange(3).reshape(3, 1, 1), [2, 0]).values.ravel().tolist()
    [2, 0]
    """
    series = as_series(series)
    idx = np.asarray(list(frames), dtype=np.int64)
    n = series.shape[0]
    if idx.size == 0:
        raise ParameterError("frame_list is empty")
    if idx.min() < -n or idx.max() >= n:
        raise ParameterError(f"frame_list has indices outside 0..{n - 1}")
    return series.isel(frame=idx)


def process(series, oplist: Sequence[tuple[str, object]] = (), frames: Sequence[int] | None = None) -> xr.DataArray:
    """Apply legacy ops in order: ``("dark", img)``, ``("flip", code)``, ``("rectangle", rect)``.

    ``frames`` subsets the frames first (legacy ``frame_list``).
    """
    series = as_series(series)
    if frames is not None:
        series = frame_list(series, frames)
    table = {"dark": dark, "flip": flip, "rectangle": rectangle}
    for op in oplist:
        try:
            name, arg = op
        except (TypeError, ValueError):
            raise ParameterError(f"an op is a (name, argument) pair, got {op!r}") from None
        if name not in table:
            raise ParameterError(f"unknown op {name!r}; supported: {', '.join(table)}")
        series = table[name](series, arg)
    return series
