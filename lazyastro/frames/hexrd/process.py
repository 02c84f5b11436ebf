"""Per-frame processing (hexrd ``ProcessedImageSeries``).

>>> from lazyastro.frames import hexrd
>>> ims = hexrd.open(None, "array", data=np.arange(8, dtype="u2").reshape(2, 2, 2))
>>> p = ProcessedImageSeries(ims, [("dark", np.full((2, 2), 0.5, "f4")), ("flip", "h")])
>>> p[0].dtype.name, p[0].tolist()
('float32', [[1.5, 2.5], [0.0, 0.5]])
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import scipy
import scipy.ndimage  # noqa: F401  (``scipy.ndimage`` is looked up at call time)
import xarray as xr

from ...core.errors import LazyAstroError
from .. import kernels
from ..ops import process as _lazy_process
from ._bridge import to_dataarray, with_meta
from .baseclass import ImageSeries

__all__ = ["ProcessedImageSeries"]


class ProcessedImageSeries(ImageSeries):
    """An image series with operations applied to each frame, in order, when it is read.

    Parameters
    ----------
    imser : image series
        The source.
    oplist : list of (name, data)
        Operations; the list object is kept (``oplist`` is mutable, changes apply
        to the next read). Built in:

        - ``("dark", img)``: ``frame - img`` with negatives set to 0, dtype by NumPy
          promotion (a float32 dark on uint16 frames gives float32);
        - ``("flip", code)``: ``y``/``v``, ``x``/``h``, ``vh``/``hv``/``r180``, ``t``/``T``,
          ``ccw90``/``r90``, ``cw90``/``r270``; an unknown code leaves the frame as it is;
        - ``("rectangle", ((r0, r1), (c0, c1)))``: crop (through the source's
          ``get_region`` when it is the first operation);
        - ``("add", x)``: ``frame + x`` (integer frames become float32 first);
        - ``("gauss_laplace", sigma)``: ``scipy.ndimage.gaussian_laplace``;
        - ``("add-row", i)`` / ``("add-column", i)``: insert a row / column of zeros.

        :meth:`addop` registers more.
    frame_list : sequence of int, optional
        Use only these frames of the source (``metadata["omega"]`` follows).

    Notes
    -----
    ``dtype`` and ``shape`` are those of processed frame 0. :meth:`to_xarray` is
    lazy: with only ``dark``/``flip``/``rectangle`` on a lazyastro-backed source it
    is :func:`lazyastro.frames.process` (chunked, parallel); otherwise each dask
    task reads and processes its frames through this object.
    """

    FLIP = "flip"
    DARK = "dark"
    RECT = "rectangle"
    ADD = "add"
    GAUSS_LAPLACE = "gauss_laplace"
    ADD_ROW = "add-row"
    ADD_COL = "add-column"

    def __init__(self, imser, oplist, **kwargs):
        self._imser = imser
        self._meta = copy.deepcopy(imser.metadata) if isinstance(imser.metadata, dict) else {}
        self._oplist = oplist
        self._frames = kwargs.pop("frame_list", None)
        self._hasframelist = self._frames is not None
        if self._hasframelist and "omega" in self._meta:
            self._meta["omega"] = np.asarray(self._meta["omega"])[np.asarray(self._frames)]
        self._opdict: dict = {}
        self.addop(self.DARK, self._subtract_dark)
        self.addop(self.FLIP, self._flip)
        self.addop(self.RECT, self._rectangle)
        self.addop(self.ADD, self._add)
        self.addop(self.GAUSS_LAPLACE, self._gauss_laplace)
        self.addop(self.ADD_ROW, self._add_row)
        self.addop(self.ADD_COL, self._add_col)
        self._builtin = dict(self._opdict)

    # ------------------------------------------------------------------ frames

    def __getitem__(self, key):
        if isinstance(key, tuple):
            idx, rest = key[0], tuple(key[1:])
        else:
            idx, rest = key, ()
        return self._process_frame(self._get_index(idx), rest)

    def _get_index(self, key):
        return self._frames[key] if self._hasframelist else key

    def __len__(self) -> int:
        return len(self._frames) if self._hasframelist else len(self._imser)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def _process_frame(self, idx, rest=()):
        oplist = list(self.oplist)
        if oplist and oplist[0][0] == self.RECT and self._opdict[self.RECT] == self._builtin[self.RECT]:
            img = self._imser.get_region(idx, oplist[0][1])
            oplist = oplist[1:]
        else:
            img = self._imser[idx]
        for name, data in oplist:
            img = self._opdict[name](img, data)
        return img[rest] if rest else img

    # ------------------------------------------------------------------ ops

    def _subtract_dark(self, img, dark):
        return kernels.subtract_dark(np.asarray(img), dark)

    def _rectangle(self, img, r):
        return img[r[0][0] : r[0][1], r[1][0] : r[1][1]]

    def _flip(self, img, flip):
        if flip not in kernels.FLIP_CODES:
            return img
        return kernels.flip(np.asarray(img), flip)

    def _add(self, img, addend):
        img = np.asarray(img)
        if not np.issubdtype(img.dtype, np.floating):
            img = img.astype(np.float32)
        return img + addend

    def _gauss_laplace(self, img, sigma):
        return scipy.ndimage.gaussian_laplace(img, sigma)

    def _add_row(self, img, index):
        return np.insert(img, index, 0, axis=0)

    def _add_col(self, img, index):
        return np.insert(img, index, 0, axis=1)

    # ------------------------------------------------------------------ API

    @property
    def dtype(self) -> np.dtype:
        return self[0].dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self[0].shape

    @property
    def metadata(self) -> dict:
        """A modifiable copy of the source's metadata (``omega`` subset by ``frame_list``)."""
        return self._meta

    def addop(self, key: str, func) -> None:
        """Register operation ``key``: ``func(img, data) -> img``."""
        self._opdict[key] = func

    @property
    def oplist(self) -> list:
        """The operations applied, in order (mutable)."""
        return self._oplist

    def set_option(self, key: str, value: Any) -> None:
        self._imser.set_option(key, value)

    def option_values(self) -> dict:
        return self._imser.option_values()

    def get_region(self, frame_idx: int, region) -> np.ndarray:
        (r0, r1), (c0, c1) = region
        return self[frame_idx][r0:r1, c0:c1]

    def to_xarray(self, nframes: int = 0) -> xr.DataArray:
        """The processed frames as a lazy lazyastro DataArray (see the class notes)."""
        from ..series import as_series, from_backend
        from ._bridge import ProtocolBackend

        lazy_ops = all(name in (self.DARK, self.FLIP, self.RECT) and self._opdict[name] == self._builtin[name]
                       and (name != self.FLIP or data in kernels.FLIP_CODES) for name, data in self.oplist)
        if lazy_ops:
            try:
                out = _lazy_process(to_dataarray(self._imser), list(self.oplist), frames=self._frames)
            except LazyAstroError:  # e.g. a rectangle beyond the frame: numpy slicing clips it
                out = None
            if out is not None:
                return as_series(with_meta(out, self._meta), nframes)
        return as_series(with_meta(from_backend(ProtocolBackend(self), name="hexrd-protocol"), self._meta), nframes)
