"""Skipper-CCD quick-look statistics (DAMIC-M image preprocessing).

>>> from lazyastro import skipper
>>> truth = skipper.simulate("/tmp/Img_01.fits", nskips=100)  # doctest: +SKIP
>>> cube = skipper.open("/tmp/Img_01.fits")  # doctest: +SKIP
>>> (row,) = skipper.compute_statistics(["/tmp/Img_01.fits"])  # doctest: +SKIP
"""

from .io import average, open, skipper_layout
from .simulate import simulate
from .stats import DEFAULT_SEED, compute_statistics, statistics
from .tables import format_legacy, to_dataset, to_table, write_rows

__all__ = [
    "open", "average", "skipper_layout", "simulate", "statistics", "compute_statistics", "DEFAULT_SEED",
    "to_table", "to_dataset", "write_rows", "format_legacy",
]


def _register() -> None:
    from ..io.registry import register_format
    from .io import sniff_skipper

    register_format(
        "skipper", reader=open, sniff=sniff_skipper,
        description="Skipper-CCD FITS (NAXIS1 = ncols * NDCMS) as a lazy (row, col, skip) cube",
    )


_register()
