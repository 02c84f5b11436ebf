"""Storage backends: one module per format, registered by name behind :func:`open`.

This module declares the FITS, Zarr and HDF5 formats (:mod:`lazyastro.io.registry`); the
readers and writers themselves (:mod:`.fits`, :mod:`.zarr`, :mod:`.hdf5`, :mod:`.tiff`,
:mod:`.npy`) are imported when first used, so importing lazyastro stays fast.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .registry import (
    Format,
    Param,
    detect_format,
    formats,
    get_format,
    open,
    register,
    register_format,
    write,
)

__all__ = [
    "open", "write", "detect_format", "formats", "get_format", "register_format", "register",
    "Format", "Param", "open_fits", "to_fits", "open_zarr", "to_zarr", "open_hdf5", "to_hdf5",
    "open_tiff", "to_tiff", "open_npy", "to_npy", "FitsFormat", "ZarrFormat", "HDF5Format",
]

_LAZY = {
    "open_fits": "fits", "to_fits": "fits", "sniff_fits": "fits",
    "open_zarr": "zarr", "to_zarr": "zarr", "sniff_zarr": "zarr",
    "open_hdf5": "hdf5", "to_hdf5": "hdf5", "sniff_hdf5": "hdf5",
    "open_tiff": "tiff", "to_tiff": "tiff", "open_npy": "npy", "to_npy": "npy",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CHUNKS = Param("chunks", "shape", "read chunks, e.g. 1,1024,-1 (-1: whole axis; default: from the budget)")
_DIMS = Param("dims", "object", "dimension names")
_HOW = (
    Param("overwrite", "object", "replace an existing output", default=False),
    Param("compute", "object", "False: return the lazy store", default=True),
    Param("scheduler", "object", "scheduler for this write"),
    Param("progress", "object", "show a progress bar"),
)


class FitsFormat(Format):
    """FITS image HDU: positioned block reads, parallel byte-offset writes."""

    name = "fits"
    extensions = (".fits", ".fit", ".fts", ".fits.fz")
    kind = "image"
    description = "FITS image HDU (positioned reads per block, parallel byte-offset writes)"
    aliases = ("fits-cube",)
    # Cheap pre-check before the reader's sniffer (which looks into compressed containers).
    magic = (b"SIMPLE  =", b"\x1f\x8b", b"BZh", b"PK\x03\x04", b"\xfd7zXZ\x00")
    reader = "lazyastro.io.fits:open_fits"
    writer = "lazyastro.io.fits:to_fits"
    sniffer = "lazyastro.io.fits:sniff_fits"
    open_params = (
        Param("hdu", "int-or-str", "FITS HDU index or name (default: the first with data)"),
        _CHUNKS, _DIMS,
    )
    write_params = (Param("header", "object", "header cards (default: from attrs)"), *_HOW)

    def sniff(self, path: Path) -> bool:
        return path.is_file() and super().sniff(path)

    def describe(self, path, *, hdu=None, chunks=None, dims=None):
        """From the header only: astropy and numpy, no dask, no xarray."""
        import math

        from ..core.chunking import normalize_chunks
        from ..core.errors import ParameterError
        from ..core.stream import default_dims
        from .fits import fits_layout
        from .registry import Summary

        lay = fits_layout(path, hdu)
        dims = tuple(dims) if dims else default_dims(len(lay["shape"]))
        if len(dims) != len(lay["shape"]):
            raise ParameterError(f"dims {dims} do not match the {len(lay['shape'])}-D data", path)
        chunk_shape = normalize_chunks(chunks, lay["shape"], lay["dtype"], dims)
        nblocks = math.prod(-(-n // c) for n, c in zip(lay["shape"], chunk_shape))
        attrs = {"header": lay["header"], "source": str(path), "format": "fits", "hdu": lay["hdu"]}
        return Summary(dims, lay["shape"], lay["dtype"], tuple(chunk_shape), nblocks, attrs)

    def open_series(self, path, **options):
        # Row blocks: positioned reads make thin blocks cheap, and row bands (exact percentiles)
        # then read only the rows they need instead of whole frames.
        if options.get("chunks") is None:
            options["chunks"] = {"frame": 1, "y": 256}
        return self.open(path, **options)


class ZarrFormat(Format):
    """Zarr v2/v3 array (or the one array of a group); native, resumable store."""

    name = "zarr"
    extensions = (".zarr",)
    kind = "image"
    description = "Zarr v3 array (native store; resumable writes)"
    reader = "lazyastro.io.zarr:open_zarr"
    writer = "lazyastro.io.zarr:to_zarr"
    sniffer = "lazyastro.io.zarr:sniff_zarr"
    open_params = (
        Param("name", str, "array name inside a Zarr group"), _CHUNKS,
        Param("direct", bool, "read chunk files directly when the store allows (default: where it does)"),
    )
    write_params = (
        Param("chunks", "shape", "output chunk shape (default: the dask chunks)"),
        Param("shards", "shape", "shard shape (a whole multiple of the chunks)"),
        Param("codec", str, "Blosc codec", default="lz4", choices=("lz4", "zstd", "none")),
        Param("clevel", int, "compression level", default=5, min=0, max=9),
        *_HOW,
    )

    def sniff(self, path: Path) -> bool:
        return path.is_dir() and super().sniff(path)

    def open(self, path, direct: bool | None = None, **options):
        if direct:  # the direct chunk-file reader as a frames backend (simple local stores of 3-D arrays)
            from ..frames.formats import open_zarr_series

            return open_zarr_series(path, direct=True, **options)
        return super().open(path, direct="auto" if direct is None else False, **options)

    def open_series(self, path, **options):
        if options.get("direct") is None:
            options["direct"] = True
        return self.open(path, **options)


class HDF5Format(Format):
    """One HDF5 dataset: per-task file opens; written chunk by chunk from one process."""

    name = "hdf5"
    extensions = (".h5", ".hdf5", ".hdf", ".he5")
    kind = "image"
    description = "HDF5 dataset (per-task file opens; written chunk by chunk from one process)"
    magic = (b"\x89HDF\r\n\x1a\n",)
    reader = "lazyastro.io.hdf5:open_hdf5"
    writer = "lazyastro.io.hdf5:to_hdf5"
    open_params = (
        Param("dataset", str, "HDF5 dataset path inside the file (default: the only one)"), _CHUNKS, _DIMS,
    )
    write_params = (
        Param("dataset", str, "HDF5 output dataset name", default="data", flag="--dataset-out"),
        Param("compression", str, "HDF5 compression", default="blosc-lz4",
              choices=("gzip", "lzf", "blosc-lz4", "blosc-zstd", "none")),
        Param("level", int, "compression level", min=0, max=9),
        Param("chunks", "shape", "output chunk shape"),
        *_HOW,
    )
