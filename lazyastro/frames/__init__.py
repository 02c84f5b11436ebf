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

from ..io.registry import register_format
from .formats import (
    detect_series_format,
    open_series,
    sniff_fits_files,
    to_series,
    write_series,
)
from .formats.framecache import (
    open_fch5_cache,
    open_frame_cache,
    open_npz_cache,
    open_yml_cache,
    sniff_fch5_cache,
    sniff_npz_cache,
    sniff_yml_cache,
    write_frame_cache,
)
from .formats.hexrd_hdf5 import open_hexrd_hdf5, sniff_hexrd_hdf5, write_hexrd_hdf5
from .formats.imagefiles import open_fits_files, open_image_files, sniff_image_files
from .iterators import (
    average_iter,
    max_iter,
    mean_iter,
    median_iter,
    min_iter,
    percentile_iter,
    sum_iter,
)
from .ops import dark, flip, frame_list, process, rectangle
from .series import as_series, from_array
from .stats import (
    average,
    compute_stats,
    max,
    mean,
    median,
    min,
    nanmax,
    nanmean,
    nanmedian,
    nanmin,
    nanpercentile,
    nanstd,
    nansum,
    percentile,
    stat_by_name,
    std,
    sum,
)

open = open_series  # noqa: A001
write = write_series

__all__ = [
    "open", "write", "open_series", "write_series", "detect_series_format", "as_series", "from_array",
    "to_series", "open_hexrd_hdf5", "write_hexrd_hdf5", "open_frame_cache", "open_npz_cache",
    "open_fch5_cache", "open_yml_cache", "write_frame_cache", "open_image_files", "open_fits_files",
    "dark", "flip", "rectangle", "frame_list", "process",
    "max", "min", "sum", "mean", "average", "std", "percentile", "median", "nanmax", "nanmin",
    "nansum", "nanmean", "nanstd", "nanpercentile", "nanmedian", "compute_stats", "stat_by_name",
    "max_iter", "min_iter", "sum_iter", "average_iter", "mean_iter", "percentile_iter", "median_iter",
]


def _npz_writer(series, path, **kw):
    return write_frame_cache(series, path, style=kw.pop("style", "npz"), **kw)


def _fch5_writer(series, path, **kw):
    return write_frame_cache(series, path, style="fch5", **kw)


# Specific legacy layouts are sniffed before the generic containers (HDF5, YAML, directories).
register_format("hexrd-hdf5", open_hexrd_hdf5, write_hexrd_hdf5, sniff=sniff_hexrd_hdf5, priority=10,
                description="legacy hexrd image series: HDF5 group holding an 'images' dataset")
register_format("frame-cache", open_frame_cache, _npz_writer, extensions=(".npz",), sniff=sniff_npz_cache, priority=10,
                description="legacy hexrd sparse frame cache (npz; also reads fch5/yml)")
register_format("frame-cache-fch5", open_fch5_cache, _fch5_writer, extensions=(".fch5",),
                sniff=sniff_fch5_cache, priority=11, description="legacy hexrd sparse frame cache, HDF5 'fch5' style")
register_format("frame-cache-yml", open_yml_cache, sniff=sniff_yml_cache, priority=10,
                description="deprecated hexrd frame-cache YAML index (read only)")
register_format("image-files", open_image_files, sniff=sniff_image_files, priority=10,
                description="legacy hexrd image-files YAML (FITS/TIFF/PNG frames)")
register_format("fits-files", open_fits_files, sniff=sniff_fits_files, priority=5,
                description="directory of FITS files, one frame per file")
