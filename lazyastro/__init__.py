"""lazyastro: lazy, chunked, out-of-core image analysis for astronomy and physics.

Everything is a chunked dask array wrapped in an xarray object with named dims;
statistics are reduction graphs; outputs stream to disk chunk by chunk.

Importing lazyastro is cheap: readers, writers, dask and the task packages
(``lazyastro.frames``, ``lazyastro.skipper``, ...) load on first use.

>>> import lazyastro
>>> img = lazyastro.open("deep.fits")            # doctest: +SKIP
>>> lazyastro.to_zarr(img, "deep.zarr")          # doctest: +SKIP
"""

from __future__ import annotations

from .core.config import memory_budget, set_options
from .core.errors import (
    FormatError,
    IncompleteOutputError,
    InputNotFoundError,
    LazyAstroError,
    OutputExistsError,
    ParameterError,
    UnsupportedDtypeError,
)
from .core.lazyimport import lazy_exports
from .io.registry import detect_format, formats, open, register_format, write

__version__ = "0.1.0"

__all__ = [
    "open", "write", "open_fits", "open_zarr", "open_hdf5", "open_tiff", "open_npy",
    "to_fits", "to_zarr", "to_hdf5", "to_tiff", "to_npy",
    "compute", "cluster", "set_options", "memory_budget", "detect_format", "formats",
    "register_format", "LazyAstroError", "FormatError", "InputNotFoundError", "OutputExistsError",
    "UnsupportedDtypeError", "IncompleteOutputError", "ParameterError",
]

# name -> module that defines it (imported on first access)
_LAZY = {
    "open_fits": "lazyastro.io.fits", "to_fits": "lazyastro.io.fits",
    "open_zarr": "lazyastro.io.zarr", "to_zarr": "lazyastro.io.zarr",
    "open_hdf5": "lazyastro.io.hdf5", "to_hdf5": "lazyastro.io.hdf5",
    "open_tiff": "lazyastro.io.tiff", "to_tiff": "lazyastro.io.tiff",
    "open_npy": "lazyastro.io.npy", "to_npy": "lazyastro.io.npy",
    "compute": "lazyastro.core.execution", "cluster": "lazyastro.core.execution",
}
_SUBPACKAGES = ("frames", "skipper", "synthetic", "io", "core", "cli")

# lazyastro.frames.mean(...) works without importing lazyastro.frames first
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__, submodules=_SUBPACKAGES)
