"""Write a set of statistic images (one per stat) to FITS, Zarr or HDF5, atomically.

>>> import numpy as np
>>> write_results({"max": np.zeros((2, 3), "f4")}, "/tmp/_doc_stats.h5", overwrite=True)
'/tmp/_doc_stats.h5'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from ...core.atomic import atomic_output
from ...core.errors import ParameterError
from ...core.metadata import json_attrs

__all__ = ["write_results", "result_kind"]


def result_kind(path) -> str:
    low = os.fspath(path).lower().rstrip("/")
    for ext, kind in ((".fits", "fits"), (".fit", "fits"), (".zarr", "zarr"), (".h5", "hdf5"), (".hdf5", "hdf5")):
        if low.endswith(ext):
            return kind
    raise ParameterError(f"output {path!r} must end in .fits, .zarr or .h5")


def _dims(arr: np.ndarray) -> list[str]:
    return ["quantile", "y", "x"] if arr.ndim == 3 else ["y", "x"]


def write_results(results: Mapping[str, np.ndarray], path, attrs: dict | None = None,
                  overwrite: bool = False) -> str:
    """One image per stat: FITS extensions (EXTNAME = stat), Zarr arrays or HDF5 datasets."""
    kind = result_kind(path)
    meta = json_attrs(dict(attrs or {}))
    with atomic_output(path, overwrite) as tmp:
        if kind == "fits":
            from astropy.io import fits

            hdus = [fits.PrimaryHDU()]
            for key, value in meta.items():
                if isinstance(value, int | float | str | bool) and len(key) <= 8:
                    hdus[0].header[key.upper()] = value
            for name, arr in results.items():
                hdu = fits.ImageHDU(np.asarray(arr), name=name.upper()[:68])
                hdu.header["STAT"] = name
                hdus.append(hdu)
            fits.HDUList(hdus).writeto(tmp)
        elif kind == "zarr":
            import zarr

            group = zarr.open_group(str(tmp), mode="w", attributes=meta)
            for name, arr in results.items():
                arr = np.asarray(arr)
                z = group.create_array(name.replace("/", "_"), shape=arr.shape, dtype=arr.dtype,
                                       chunks=arr.shape, dimension_names=_dims(arr), attributes={"stat": name})
                z[...] = arr
        else:
            import h5py

            with h5py.File(tmp, "w") as h5:
                for key, value in meta.items():
                    if isinstance(value, int | float | str | bool):
                        h5.attrs[key] = value
                for name, arr in results.items():
                    ds = h5.create_dataset(name.replace("/", "_"), data=np.asarray(arr))
                    ds.attrs["stat"] = name
    return os.fspath(path)
