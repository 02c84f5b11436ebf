"""Storage backends: one module per format, registered by name behind :func:`open`."""

from .fits import open_fits, sniff_fits, to_fits
from .hdf5 import open_hdf5, sniff_hdf5, to_hdf5
from .registry import detect_format, formats, get_format, open, register_format, write
from .zarr import open_zarr, sniff_zarr, to_zarr

register_format(
    "fits", open_fits, to_fits, extensions=(".fits", ".fit", ".fts", ".fits.fz"), sniff=sniff_fits,
    description="FITS image HDU (positioned reads per block, parallel byte-offset writes)",
)
register_format(
    "zarr", open_zarr, to_zarr, extensions=(".zarr",), sniff=sniff_zarr,
    description="Zarr v3 array (native store; resumable writes)",
)
register_format(
    "hdf5", open_hdf5, to_hdf5, extensions=(".h5", ".hdf5", ".hdf", ".he5"), sniff=sniff_hdf5,
    description="HDF5 dataset (per-task file opens; written chunk by chunk from one process)",
)

__all__ = [
    "open", "write", "detect_format", "formats", "get_format", "register_format",
    "open_fits", "to_fits", "open_zarr", "to_zarr", "open_hdf5", "to_hdf5",
]
