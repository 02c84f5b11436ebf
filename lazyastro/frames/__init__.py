"""Image series (frame stacks) and exact, out-of-core statistics over frames.

A series is a lazy ``xarray.DataArray`` with dims ``(frame, y, x)``; legacy hexrd
formats (HDF5, frame caches, image-files YAML) and FITS/Zarr are read lazily,
and every statistic is a dask graph.

>>> import numpy as np, lazyastro.frames as lf
>>> s = lf.open(np.arange(24, dtype="u2").reshape(4, 2, 3))
>>> lf.median(s).values[0].tolist()
[9.0, 10.0, 11.0]
"""

from __future__ import annotations

import importlib

# Public names -> the submodule defining them. They load on first use, so importing
# lazyastro.frames (and looking up its formats in the registry) stays light.
_LAZY = {
    "open_series": "formats", "write_series": "formats", "detect_series_format": "formats",
    "to_series": "formats", "sniff_fits_files": "formats",
    "open_fch5_cache": "formats.framecache", "open_frame_cache": "formats.framecache",
    "open_npz_cache": "formats.framecache", "open_yml_cache": "formats.framecache",
    "sniff_fch5_cache": "formats.framecache", "sniff_npz_cache": "formats.framecache",
    "sniff_yml_cache": "formats.framecache", "write_frame_cache": "formats.framecache",
    "open_hexrd_hdf5": "formats.hexrd_hdf5", "sniff_hexrd_hdf5": "formats.hexrd_hdf5",
    "write_hexrd_hdf5": "formats.hexrd_hdf5",
    "open_fits_files": "formats.imagefiles", "open_image_files": "formats.imagefiles",
    "sniff_image_files": "formats.imagefiles",
    **dict.fromkeys(
        ("average_iter", "max_iter", "mean_iter", "median_iter", "min_iter", "percentile_iter", "sum_iter"),
        "iterators",
    ),
    **dict.fromkeys(("dark", "flip", "frame_list", "process", "rectangle"), "ops"),
    "as_series": "series", "from_array": "series",
    **dict.fromkeys(
        ("average", "compute_stats", "max", "mean", "median", "min", "nanmax", "nanmean", "nanmedian",
         "nanmin", "nanpercentile", "nanstd", "nansum", "percentile", "stat_by_name", "std", "sum"),
        "reductions",
    ),
    "stats": "dataset", "parse_stat_list": "dataset",
}
_ALIASES = {"open": "open_series", "write": "write_series"}

__all__ = [
    "open", "write", "stats", "open_series", "write_series", "detect_series_format", "as_series", "from_array",
    "to_series", "open_hexrd_hdf5", "write_hexrd_hdf5", "open_frame_cache", "open_npz_cache",
    "open_fch5_cache", "open_yml_cache", "write_frame_cache", "open_image_files", "open_fits_files",
    "dark", "flip", "rectangle", "frame_list", "process",
    "max", "min", "sum", "mean", "average", "std", "percentile", "median", "nanmax", "nanmin",
    "nansum", "nanmean", "nanstd", "nanpercentile", "nanmedian", "compute_stats", "stat_by_name",
    "max_iter", "min_iter", "sum_iter", "average_iter", "mean_iter", "percentile_iter", "median_iter",
]


def __getattr__(name: str):
    target = _ALIASES.get(name, name)
    if target in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[target]}"), target)
        globals()[name] = value
        return value
    try:  # a submodule (kernels, stats, hexrd, ...)
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
