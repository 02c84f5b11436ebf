"""Skipper-CCD quick-look statistics (DAMIC-M image preprocessing).

Importing this package is cheap: the readers, graphs and fits (dask, xarray, scipy) load on
first use of a name.

>>> from lazyastro import skipper
>>> truth = skipper.simulate("/tmp/Img_01.fits", nskips=100)  # doctest: +SKIP
>>> ds = skipper.statistics(["/tmp/Img_01.fits"])             # doctest: +SKIP
>>> (row,) = skipper.compute_statistics(["/tmp/Img_01.fits"])  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ..core.lazyimport import lazy_exports
from ..io.registry import Format, Param
from .simulate import simulate  # light (numpy); binds the name over the submodule

__all__ = [
    "open", "average", "skipper_layout", "simulate", "statistics", "compute_statistics", "DEFAULT_SEED",
    "run_directory", "select_files", "to_table", "to_dataset", "to_rows", "write_rows", "format_legacy",
    "UNITS", "SkipperFormat",
]

# name -> module defining it (imported on first access)
_LAZY = {
    "open": ".io", "average": ".io", "skipper_layout": ".io",
    "statistics": ".stats", "compute_statistics": ".stats", "DEFAULT_SEED": ".stats",
    "run_directory": ".directory", "select_files": ".directory",
    "to_table": ".tables", "to_dataset": ".tables", "to_rows": ".tables", "write_rows": ".tables",
    "format_legacy": ".tables", "UNITS": ".units",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)


class SkipperFormat(Format):
    """Skipper-CCD FITS (``NAXIS1 = ncols * NDCMS``) read as a lazy ``(row, col, skip)`` cube.

    A skipper file is also a plain FITS image, so detection prefers ``fits``; pass
    ``format="skipper"`` to get the cube.

    Examples
    --------
    >>> SkipperFormat().kind
    'cube'
    """

    name = "skipper"
    kind = "cube"
    priority = -1
    description = "Skipper-CCD FITS (NAXIS1 = ncols * NDCMS) as a lazy (row, col, skip) cube"
    reader = "lazyastro.skipper.io:open"
    sniffer = "lazyastro.skipper.io:sniff_skipper"
    open_params = (
        Param("chunks", "shape", "read chunks (rows, cols, skips); -1: whole axis (default: from the budget)"),
        Param("name", "object", "dask graph name"),
    )

    def sniff(self, path: Path) -> bool:
        return Path(path).is_file() and super().sniff(path)
