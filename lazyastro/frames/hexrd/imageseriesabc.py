"""Abstract base of hexrd image series: a :class:`collections.abc.Sequence` of frames.

>>> issubclass(ImageSeriesABC, collections.abc.Sequence)
True
"""

from __future__ import annotations

import collections.abc

__all__ = ["ImageSeriesABC", "RegionType"]

#: ``((row_start, row_stop), (col_start, col_stop))`` as taken by ``get_region``.
RegionType = tuple[tuple[int, int], tuple[int, int]]


class ImageSeriesABC(collections.abc.Sequence):
    """A sequence of 2-D frames with ``shape`` (frame shape), ``dtype`` and ``metadata``."""
