"""Series readers and writers, chosen by name, content or extension.

>>> from lazyastro.frames.formats import open_series
>>> s = open_series("cache.npz")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ...core.chunking import chunk_bytes_for_budget
from ...core.errors import FormatError, InputNotFoundError, ParameterError
from ..series import as_series, from_backend, series_meta
from .framecache import (
    open_fch5_cache,
    open_frame_cache,
    open_npz_cache,
    open_yml_cache,
    sniff_fch5_cache,
    sniff_npz_cache,
    sniff_yml_cache,
    write_frame_cache,
)
from .hexrd_hdf5 import open_hexrd_hdf5, sniff_hexrd_hdf5, write_hexrd_hdf5
from .imagefiles import _FITS, open_fits_files, open_image_files, sniff_image_files
from .zarr_direct import ZarrDirectBackend, direct_layout

__all__ = ["open_series", "write_series", "detect_series_format", "READERS", "WRITERS", "to_series"]


def to_series(arr: xr.DataArray) -> xr.DataArray:
    """A generic DataArray (FITS cube, Zarr, HDF5 dataset) as a ``(frame, y, x)`` series.

    An ``omega`` attribute of shape ``(nframes, 2)`` becomes coordinates.
    """
    if arr.ndim not in (2, 3):
        raise FormatError(f"expected a 2-D or 3-D image array, got dims {arr.dims}", arr.attrs.get("source"))
    data = arr.data[None] if arr.ndim == 2 else arr.data
    series = as_series(data)
    coords, attrs = series_meta(dict(arr.attrs), series.shape[0])
    return series.assign_coords(coords).assign_attrs(attrs)


def _open_fits_cube(path, hdu=None, chunks=None):
    from ...io import open_fits

    if chunks is None:
        # Positioned reads make thin row blocks cheap, and row bands (exact percentiles) then
        # read only the rows they need instead of whole frames.
        chunks = {"frame": 1, "y": 256}
    return to_series(open_fits(path, hdu=hdu, chunks=chunks))


def _open_zarr(path, name=None, chunks=None, direct: bool = True):
    """Zarr series; simple local stores are read chunk file by chunk file (see ``zarr_direct``).

    Without ``chunks``, dask blocks are whole storage chunks stacked along frames
    up to the block size the memory budget allows.
    """
    from ...io import open_zarr
    from ...io.zarr import open_zarr_array

    arr = open_zarr(path, name=name, chunks=chunks)
    series = to_series(arr)
    if not direct or arr.ndim != 3:
        return series
    zarr_arr = open_zarr_array(Path(os.fspath(path)), name)
    root = Path(os.fspath(path)) / zarr_arr.path if zarr_arr.path else Path(os.fspath(path))
    layout = direct_layout(zarr_arr, root)
    if layout is None:
        return series
    backend = ZarrDirectBackend(zarr_arr.shape, zarr_arr.dtype, layout)
    if chunks is None:
        cf, cy, cx = layout["chunks"]
        nf = backend.shape[0]
        per = max(1, chunk_bytes_for_budget() // max(1, cf * cy * cx * backend.dtype.itemsize))
        chunks = (min(nf, cf * per), min(cy, backend.shape[1]), min(cx, backend.shape[2]))
    data = from_backend(backend, chunks=chunks, name="zarr").data
    return series.copy(data=data)


def _open_plain_hdf5(path, dataset=None, chunks=None):
    from ...io import open_hdf5

    return to_series(open_hdf5(path, dataset=dataset, chunks=chunks))


READERS = {
    "hexrd-hdf5": open_hexrd_hdf5,
    "frame-cache": open_frame_cache,
    "frame-cache-npz": open_npz_cache,
    "frame-cache-fch5": open_fch5_cache,
    "frame-cache-yml": open_yml_cache,
    "image-files": open_image_files,
    "fits-files": open_fits_files,
    "fits": _open_fits_cube,
    "zarr": _open_zarr,
    "plain-hdf5": _open_plain_hdf5,
}
_ALIASES = {"hdf5": "hexrd-hdf5", "fch5": "frame-cache-fch5", "npz": "frame-cache-npz",
            "frame-cache-yaml": "frame-cache-yml", "fits-cube": "fits"}
_SNIFFERS = (
    ("frame-cache-fch5", sniff_fch5_cache),
    ("frame-cache-npz", sniff_npz_cache),
    ("frame-cache-yml", sniff_yml_cache),
    ("image-files", sniff_image_files),
    ("hexrd-hdf5", sniff_hexrd_hdf5),
)


def sniff_fits_files(path: Path) -> bool:
    """A directory of FITS files (one per frame) that is not a Zarr store."""
    return path.is_dir() and not (path / "zarr.json").exists() and not (path / ".zarray").exists() and any(
        p.name.lower().endswith(_FITS) for p in path.iterdir()
    )


def detect_series_format(path) -> str:
    """Series format of ``path`` from its content (legacy formats first), else the core registry."""
    p = Path(os.fspath(path))
    if not p.exists():
        raise InputNotFoundError("no such file or directory", p)
    for name, sniff in _SNIFFERS:
        try:
            if sniff(p):
                return name
        except OSError:
            continue
    if sniff_fits_files(p):
        return "fits-files"
    from ...io.registry import detect_format

    name = detect_format(p)
    if name == "hdf5":
        return "plain-hdf5"
    if name in READERS:
        return name
    raise FormatError(f"format {name!r} is not an image series format", p)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def open_series(source, format: str | None = None, **kw) -> xr.DataArray:  # noqa: A002
    """Open an image series lazily: a path, a glob / list of frame files, or an array.

    ``format`` is one of ``array``, ``hdf5`` (legacy hexrd layout), ``frame-cache``
    (npz/fch5/yml), ``frame-cache-fch5``, ``image-files``, ``fits`` (3-D cube),
    ``fits-files``, ``zarr``; detected from the content when omitted.
    """
    if format in ("array",) or isinstance(source, np.ndarray | xr.DataArray) or hasattr(source, "dask"):
        from ..series import from_array

        data = kw.pop("data", source)
        return from_array(data, meta=kw.pop("meta", None), chunks=kw.pop("chunks", None), **kw)
    if isinstance(source, list | tuple):
        return open_fits_files(source, **kw)
    if format is None and isinstance(source, str) and _is_glob(source) and not Path(source).exists():
        if not glob.glob(source):
            raise InputNotFoundError("no files match the pattern", source)
        return open_fits_files(source, **kw)
    name = _ALIASES.get(format, format) if format else detect_series_format(source)
    if name not in READERS:
        raise ParameterError(f"unknown series format {format!r}; known: {', '.join(sorted(READERS))}")
    if name != "image-files" and not Path(os.fspath(source)).exists():
        raise InputNotFoundError("no such file or directory", source)
    return READERS[name](source, **kw)


def _write_zarr(series, path, overwrite=False, **kw):
    from ...io import to_zarr
    from ._common import series_to_meta

    s = as_series(series)
    arr = xr.DataArray(s.data, dims=s.dims, attrs=series_to_meta(s))
    return to_zarr(arr, path, overwrite=overwrite, **kw)


def _write_fits(series, path, overwrite=False, **kw):
    from ...io import to_fits

    s = as_series(series)
    attrs = {k: v for k, v in s.attrs.items() if k == "header" or np.ndim(v) == 0}
    return to_fits(xr.DataArray(s.data, dims=s.dims, attrs=attrs), path, overwrite=overwrite, **kw)


def _write_fch5(series, path, **kw):
    return write_frame_cache(series, path, style="fch5", **kw)


def _write_npz(series, path, **kw):
    return write_frame_cache(series, path, style="npz", **kw)


WRITERS = {
    "hexrd-hdf5": write_hexrd_hdf5,
    "frame-cache": _write_npz,
    "frame-cache-npz": _write_npz,
    "frame-cache-fch5": _write_fch5,
    "zarr": _write_zarr,
    "fits": _write_fits,
}
_EXT_WRITERS = ((".fch5", "frame-cache-fch5"), (".npz", "frame-cache-npz"), (".h5", "hexrd-hdf5"),
                (".hdf5", "hexrd-hdf5"), (".zarr", "zarr"), (".fits", "fits"), (".fit", "fits"))


def write_series(series, path, format: str | None = None, **kw) -> str:  # noqa: A002
    """Write a series: ``hdf5`` (legacy), ``frame-cache`` (npz, needs ``threshold``),
    ``frame-cache-fch5``, ``zarr`` or ``fits`` (cube); from the extension when omitted.

    >>> write_series(np.zeros((2, 4, 4), "u2"), "/tmp/_doc.fch5", threshold=0, overwrite=True)
    '/tmp/_doc.fch5'
    """
    if format is None:
        low = os.fspath(path).lower().rstrip("/")
        format = next((f for ext, f in _EXT_WRITERS if low.endswith(ext)), None)
        if format is None:
            raise ParameterError(f"cannot tell the series format from the extension of {path!r}; pass format=...")
    name = _ALIASES.get(format, format)
    if name not in WRITERS:
        raise ParameterError(f"cannot write series format {format!r}; writable: {', '.join(sorted(WRITERS))}")
    return WRITERS[name](series, path, **kw)
