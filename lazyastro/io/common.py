"""Helpers shared by the format readers: dim names and DataArray wrapping."""

from __future__ import annotations

from collections.abc import Sequence

import dask.array as da
import xarray as xr

from ..core.stream import default_dims

__all__ = ["default_dims", "wrap"]


def wrap(data: da.Array, dims: Sequence[str], attrs: dict, name: str | None = None) -> xr.DataArray:
    out = xr.DataArray(data, dims=tuple(dims), attrs=attrs)
    out.name = name  # xarray would otherwise take the dask graph name
    return out
