"""lazyastro: lazy, chunked, out-of-core image analysis for astronomy and physics.

Everything is a chunked dask array wrapped in an xarray object with named dims;
statistics are reduction graphs; outputs stream to disk chunk by chunk.

>>> import lazyastro
>>> img = lazyastro.open("deep.fits")            # doctest: +SKIP
>>> lazyastro.to_zarr(img, "deep.zarr")          # doctest: +SKIP
"""

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
from .core.execution import cluster, compute
from .io import (
    detect_format,
    formats,
    open,
    open_fits,
    open_hdf5,
    open_zarr,
    register_format,
    to_fits,
    to_hdf5,
    to_zarr,
    write,
)

__version__ = "0.1.0"

__all__ = [
    "open", "write", "open_fits", "open_zarr", "open_hdf5", "to_fits", "to_zarr", "to_hdf5",
    "compute", "cluster", "set_options", "memory_budget", "detect_format", "formats",
    "register_format", "LazyAstroError", "FormatError", "InputNotFoundError", "OutputExistsError",
    "UnsupportedDtypeError", "IncompleteOutputError", "ParameterError",
]


def _load_task_packages() -> None:
    """Import task subpackages so their formats and CLI commands register."""
    import importlib

    for name in ("frames", "skipper"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_load_task_packages()
