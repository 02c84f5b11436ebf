"""Frames of simple local Zarr arrays, read chunk file by chunk file.

The reader itself lives in :mod:`lazyastro.io.zarr` (``open_zarr(path,
direct="auto")`` uses it for every reader): :func:`~lazyastro.io.zarr.direct_layout`
says whether a store's chunks are plain local files with a Blosc (or no)
compressor, and :class:`~lazyastro.io.zarr.DirectZarrReader` reads them. This
module wraps it as a frames :class:`~lazyastro.frames.series.Backend`, so series
operations (median bands, ...) can ask for any region of frames.

>>> layout = direct_layout(zarr.open_array("series.zarr"), "series.zarr")  # doctest: +SKIP
"""

from __future__ import annotations

import os

import numpy as np

from ...io.zarr import DirectZarrReader, check_chunk_bytes
from ...io.zarr import direct_layout as _direct_layout
from ..series import Backend

__all__ = ["ZarrDirectBackend", "direct_layout", "check_chunk_bytes"]


def direct_layout(arr, path) -> dict | None:
    """The direct-read layout of a 3-D ``zarr.Array`` at ``path`` (see :func:`lazyastro.io.zarr.direct_layout`).

    Parameters
    ----------
    arr : zarr.Array
        The opened array.
    path : str or os.PathLike
        Its directory.

    Returns
    -------
    dict or None
        ``None`` for arrays that are not 3-D or whose layout zarr must read.

    Examples
    --------
    >>> import tempfile, zarr
    >>> path = os.path.join(tempfile.mkdtemp(), "s.zarr")
    >>> z = zarr.create_array(path, shape=(2, 3, 4), chunks=(1, 3, 4), dtype="u2", compressors=None)
    >>> direct_layout(z, path)["chunks"]
    (1, 3, 4)
    """
    if getattr(arr, "ndim", None) != 3:
        return None
    return _direct_layout(arr, path)


class ZarrDirectBackend(Backend):
    """Frames of a simple local Zarr array read chunk file by chunk file (see module doc)."""

    def __init__(self, shape, dtype, layout: dict):
        self.path = layout["root"]
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.layout = dict(layout)
        self._reader = DirectZarrReader(self.shape, self.dtype, self.layout)

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_reader"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._reader = DirectZarrReader(self.shape, self.dtype, self.layout)

    def token(self) -> str:
        from dask.base import tokenize

        try:
            st = os.stat(os.path.join(self.path, "zarr.json" if os.path.exists(
                os.path.join(self.path, "zarr.json")) else ".zarray"))
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        return tokenize(type(self).__name__, self.path, stamp, self.shape, str(self.dtype), self.layout)

    def _decode(self, idx, out: np.ndarray | None = None) -> np.ndarray | None:
        """Chunk ``idx`` as a full chunk-shaped array (into ``out`` if given); ``None`` if missing."""
        return self._reader.decode(idx, out)

    def read_region(self, start, stop, rows, cols):
        nf, ny, nx = self.shape
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            return self.read_region(start, stop, slice(None), slice(None))[:, rows, cols]
        y0, y1, ys = rows.indices(ny)
        x0, x1, xs = cols.indices(nx)
        if ys != 1 or xs != 1:
            return self.read_region(start, stop, slice(None), slice(None))[:, rows, cols]
        y1, x1 = max(y0, y1), max(x0, x1)
        out = np.empty((stop - start, y1 - y0, x1 - x0), self.dtype)
        self._reader.read_into((slice(start, stop), slice(y0, y1), slice(x0, x1)), out)
        return out

    def read(self, start, stop):
        return self.read_region(start, stop, slice(None), slice(None))
