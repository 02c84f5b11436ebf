"""``raw-image`` adapter: frames in a headerless binary file (hexrd ``RawImageSeriesAdapter``).

The YAML describes the layout::

    filename: data.bin          # relative to the YAML's directory
    shape: "2048 2048"          # rows cols
    skip: 0                     # header bytes before the first frame
    scalar: {type: i, bytes: 2, signed: false, endian: little}   # type i | f | d | b

>>> RawImageSeriesAdapter.typechars("i", 2, False, True)
'<H'
"""

from __future__ import annotations

import os
import threading

import numpy as np
import yaml

from ....core.errors import FormatError
from . import ImageSeriesAdapter

__all__ = ["RawImageSeriesAdapter"]


class RawImageSeriesAdapter(ImageSeriesAdapter):
    """Frames of a raw binary file described by a YAML file.

    Parameters
    ----------
    fname : str or path
        The YAML description.

    Raises
    ------
    ValueError
        A bad ``endian``, or a file size that is not ``skip`` plus whole frames.
    """

    format = "raw-image"

    def __init__(self, fname, **kwargs):
        with open(fname) as f:
            try:
                y = yaml.safe_load(f)
            except yaml.YAMLError as exc:
                raise FormatError(f"invalid YAML: {' '.join(str(exc).split())}", fname) from None
        self.fname = os.path.join(os.path.dirname(os.fspath(fname)), str(y["filename"]))
        self.dtype = self._get_dtype(y["scalar"])
        self._shape = tuple(int(s) for s in str(y["shape"]).split())
        self._frame_size = int(np.prod(self._shape))
        self._frame_bytes = self._frame_size * self.dtype.itemsize
        self.skipbytes = int(y.get("skip", 0) or 0)
        self._len = self._get_length()
        self._meta: dict = {}
        self.kwargs = kwargs
        self._lock = threading.Lock()
        self.f = open(self.fname, "rb")  # noqa: SIM115 - held for the life of the adapter, as hexrd

    def _get_dtype(self, scalar: dict) -> np.dtype:
        endian = scalar["endian"]
        if endian not in ("little", "big"):
            raise ValueError('endian must be "big" for "little"')
        return np.dtype(self.typechars(scalar["type"], scalar["bytes"], scalar["signed"], endian == "little"))

    def _get_length(self) -> int:
        nbytes = os.path.getsize(self.fname)
        data = nbytes - self.skipbytes
        if data < 0 or data % self._frame_bytes:
            raise ValueError(
                f"Total number of bytes ({nbytes}) does not work with skipbytes ({self.skipbytes}) and "
                f"_frame_size ({self._frame_size}). Check the skipbytes value."
            )
        return data // self._frame_bytes

    @staticmethod
    def typechars(numtype: str, bytes_: int = 4, signed: bool = False, little: bool = True) -> str:
        """NumPy type string for a scalar description (``"i"`` with 1/2/4/8 bytes, ``"f"``, ``"d"``, ``"b"``)."""
        if numtype == "i":
            char = {1: "b", 2: "h", 4: "i", 8: "l"}[int(bytes_)]
            char = char if signed else char.upper()
        else:
            char = {"f": "f", "d": "d", "b": "?"}[numtype]
        return ("<" if little else ">") + char

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, key):
        if not isinstance(key, int | np.integer):
            return self[key[0]][tuple(key[1:])]
        i = int(key) + (self._len if key < 0 else 0)
        if not 0 <= i < self._len:
            raise IndexError(f"frame {key} is out of range for {self._len} frames")
        with self._lock:
            self.f.seek(i * self._frame_bytes + self.skipbytes, 0)
            frame = np.fromfile(self.f, self.dtype, count=self._frame_size)
        return frame.reshape(self.shape)

    def close(self) -> None:
        """Close the data file."""
        self.f.close()

    def __del__(self):
        f = getattr(self, "f", None)
        if f is not None:
            f.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("f"), state.pop("_lock")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.f = open(self.fname, "rb")  # noqa: SIM115

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    @property
    def metadata(self) -> dict:
        return self._meta
