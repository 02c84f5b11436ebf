"""Write a Dataset of statistic images to FITS, Zarr or HDF5 through the streaming engine.

One pass over the series computes every statistic; the output is resumable
after an interruption and appears only when complete. FITS gets one IMAGE
extension per statistic (``EXTNAME`` = the statistic, the input header and WCS
kept in every HDU), Zarr one array per statistic in a group, HDF5 one dataset
per statistic.

>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"max": (("y", "x"), np.zeros((2, 3), "f4"))})
>>> write_results(ds, "/tmp/_doc_stats.h5", overwrite=True, progress=False)
'/tmp/_doc_stats.h5'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ...core.errors import ParameterError

__all__ = ["write_results", "result_kind"]


def result_kind(path) -> str:
    """``fits``, ``zarr`` or ``hdf5`` from the output's extension."""
    low = os.fspath(path).lower().rstrip("/")
    for ext, kind in ((".fits", "fits"), (".fit", "fits"), (".zarr", "zarr"), (".h5", "hdf5"), (".hdf5", "hdf5")):
        if low.endswith(ext):
            return kind
    raise ParameterError(f"output {os.fspath(path)!r} must end in .fits, .zarr or .h5")


def write_results(results: xr.Dataset | Mapping[str, np.ndarray], path, *, attrs: dict | None = None,
                  overwrite: bool = False, progress: bool | None = None,
                  scheduler: str | None = None) -> str:
    """One image per statistic: FITS extensions, Zarr arrays or HDF5 datasets (lazy input streamed)."""
    from ...io import to_fits, to_hdf5, to_zarr

    kind = result_kind(path)
    if not isinstance(results, xr.Dataset):
        dims = {2: ("y", "x"), 3: ("quantile", "y", "x")}
        results = xr.Dataset({k: (dims[np.ndim(v)], np.asarray(v), {"stat": k}) for k, v in results.items()})
    if attrs:
        results = results.assign_attrs(attrs)
    kw = {"overwrite": overwrite, "progress": progress, "scheduler": scheduler}
    if kind == "fits":
        return to_fits(results, path, **kw)
    if kind == "zarr":
        return to_zarr(results, path, **kw)
    return to_hdf5(results, path, "", **kw)
