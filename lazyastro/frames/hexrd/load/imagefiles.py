"""``image-files`` adapter: frames from a list of image files (hexrd ``ImageFilesImageSeriesAdapter``).

The YAML (a file name, or the YAML text itself)::

    image-files:
      directory: /data/run1
      files: "scan_*.tif dark_*.tif"   # space-separated globs; the combined list is sorted
    options: {empty-frames: 0, max-total-frames: 0, max-file-frames: 0, dtype: uint16}
    meta: {omega: "! load-numpy-array omega.npy"}

Files are opened with `fabio <https://github.com/silx-kit/fabio>`_ when it is
installed (every detector format hexrd reads); otherwise with lazyastro's own
readers (FITS, TIFF, PNG/JPEG), exposed here as the same small ``fabio.open``
interface. ``.gel`` data are inverted and squared (scale :data:`GEL_SCALE_FACTOR`).

>>> ims = ImageFilesImageSeriesAdapter("series.yml")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os

import numpy as np
import yaml

from ....core.errors import FormatError
from ...formats import imagefiles as _laf
from ...kernels import cast_checked
from ..errors import ImageSeriesFormatError
from . import ImageSeriesAdapter
from .metadata import yamlmeta

__all__ = ["ImageFilesImageSeriesAdapter", "FileInfo", "GEL_SCALE_FACTOR", "fabio"]

#: Scale of ``.gel`` images: ``value = (~raw) ** 2 * GEL_SCALE_FACTOR``.
GEL_SCALE_FACTOR = 2.9452155399372724e-07


class _Frame:
    def __init__(self, data):
        self.data = data


class _LazyAstroImage:
    """The part of a ``fabio`` image the adapter uses, read by lazyastro."""

    def __init__(self, filename):
        self.filename = os.fspath(filename)
        self.nframes, _, _ = _laf.frame_count(self.filename)
        self.classname = _laf._kind(self.filename).upper() + "Image"
        self.data = _laf.read_frame(self.filename, 0)

    def getframe(self, index: int) -> _Frame:
        return _Frame(_laf.read_frame(self.filename, int(index)))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


class _LazyAstroFabio:
    """``fabio.open`` on lazyastro's image readers (used when fabio is not installed)."""

    @staticmethod
    def open(filename) -> _LazyAstroImage:
        return _LazyAstroImage(filename)


try:  # pragma: no cover - depends on the environment
    import fabio  # type: ignore[import-not-found]
except ImportError:
    fabio = _LazyAstroFabio()


def _process_gel_data(array: np.ndarray) -> np.ndarray:
    """``.gel`` raw data to intensities: bitwise inversion, squared, times :data:`GEL_SCALE_FACTOR`."""
    return np.invert(array).astype(np.float64) ** 2 * GEL_SCALE_FACTOR


def _process_data(filename: str, data: np.ndarray) -> np.ndarray:
    if os.path.splitext(os.fspath(filename))[1] == ".gel":
        return _process_gel_data(data)
    return data


class FileInfo:
    """Frame count, shape, dtype and reader class of one image file.

    Parameters
    ----------
    filename : str
        The file.
    empty : int
        Frames skipped at the start of the file.
    max_frames : int
        At most this many frames of the file (0: all).

    Raises
    ------
    ValueError
        If ``empty`` is not smaller than the number of frames.
    """

    def __init__(self, filename, empty: int = 0, max_frames: int = 0):
        self.filename = filename
        with fabio.open(filename) as img:
            self._fabioclass = img.classname
            self._imgframes = int(img.nframes)
            self.dat = _process_data(filename, img.data)
        self._empty = int(empty or 0)
        self._maxframes = int(max_frames or 0) or self._imgframes
        if self._empty >= self._imgframes:
            raise ValueError(f"more empty frames than images: {self.filename}")

    def __str__(self) -> str:
        return (f"==== image file\n       name: {self.filename}\nfabio class: {self.fabioclass}\n"
                f"     frames: {self.nframes}\n      dtype: {self.dtype}\n      shape: {self.shape}\n")

    @property
    def empty(self) -> int:
        return self._empty

    @property
    def shape(self):
        return self.dat.shape

    @property
    def dtype(self):
        return self.dat.dtype

    @property
    def fabioclass(self):
        return self._fabioclass

    @property
    def nframes(self) -> int:
        return min(self._maxframes, self._imgframes - self._empty)


class ImageFilesImageSeriesAdapter(ImageSeriesAdapter):
    """Frames of the image files listed by an ``image-files`` YAML.

    Parameters
    ----------
    fname : str or path
        The YAML file, or YAML text (several lines).

    Raises
    ------
    FormatError
        Invalid YAML or a missing ``image-files`` section.
    ValueError
        Inconsistent shapes, dtypes or file types, or more empty frames than frames.
    """

    format = "image-files"

    def __init__(self, fname):
        self._fname = fname
        self._load_yml()
        self._process_files()

    def _load_yml(self) -> None:
        text = self._fname if isinstance(self._fname, str) and len(self._fname.splitlines()) > 1 else None
        where = "<image-files yaml>" if text is not None else os.fspath(self._fname)
        try:
            if text is None:
                with open(self._fname) as f:
                    text = f.read()
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FormatError(f"invalid YAML: {' '.join(str(exc).split())}", where) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("image-files"), dict):
            raise FormatError("missing section 'image-files'", where)
        spec = doc["image-files"]
        opts = doc.get("options") or {}
        directory = str(spec.get("directory", "."))
        self._files = []
        for pattern in str(spec.get("files", "")).split():
            self._files += glob.glob(os.path.join(directory, pattern))
        self._files.sort()
        self._empty = int(opts.get("empty-frames", 0) or 0)
        self._maxframes_tot = int(opts.get("max-total-frames", 0) or 0)
        self._maxframes_file = int(opts.get("max-file-frames", 0) or 0)
        self._dtype = np.dtype(opts["dtype"]) if opts.get("dtype") is not None else None
        # array files named relative to the YAML file's directory (YAML text: the working directory)
        self._meta = yamlmeta(doc.get("meta") or {}, path=None if where.startswith("<") else where)

    def _process_files(self) -> None:
        shape = dtype = fclass = None
        nf, infos, single = 0, [], True
        for f in self._files:
            info = FileInfo(f, empty=self._empty, max_frames=self._maxframes_file)
            infos.append(info)
            shape = self._checkvalue(shape, info.shape, "inconsistent image shapes")
            dtype = self._dtype if self._dtype is not None else self._checkvalue(
                dtype, info.dtype, "inconsistent image dtypes")
            fclass = self._checkvalue(fclass, info.fabioclass, "inconsistent image types")
            nf += info.nframes
            single = single and info.nframes == 1
        self._nframes, self._shape, self._dtype = nf, shape, dtype
        self._fabioclass, self._infolist, self._singleframes = fclass, infos, single
        self._cast = self._dtype is not None and any(i.dtype != self._dtype for i in infos)

    @staticmethod
    def _checkvalue(v, vtest, msg):
        """``vtest`` if ``v`` is unset, else ``v`` (``ValueError(msg)`` if they differ)."""
        if v is None:
            return vtest
        if vtest != v:
            raise ValueError(msg)
        return v

    def _file_and_frame(self, key: int) -> tuple[int, int]:
        """(file number, frame in that file) of series frame ``key`` (negative counts from the end)."""
        nf = len(self)
        if key < -nf or key >= nf:
            raise LookupError(f"frame out of range: {key}")
        k = key % nf
        for fnum, info in enumerate(self._infolist):
            if k < info.nframes:
                return fnum, k + info.empty
            k -= info.nframes
        raise LookupError(f"frame out of range: {key}")  # pragma: no cover

    def __len__(self) -> int:
        return min(self._nframes, self._maxframes_tot) if self._maxframes_tot > 0 else self._nframes

    def __getitem__(self, key):
        if not isinstance(key, int | np.integer):
            return self[key[0]][tuple(key[1:])]
        if self._singleframes:
            filename, frame = self._files[key], None
        else:
            fnum, frame = self._file_and_frame(int(key))
            filename = self._infolist[fnum].filename
        with fabio.open(filename) as img:
            data = img.data if frame is None else img.getframe(int(frame)).data
        data = _process_data(filename, data)
        if self._dtype is not None and np.asarray(data).dtype != self._dtype:
            try:
                return cast_checked(np.asarray(data), self._dtype)
            except ValueError as exc:
                raise ImageSeriesFormatError(f"specified dtype will truncate image ({exc})", filename) from None
        return data

    def __str__(self) -> str:
        return (f"==== imageseries from file list\n    fabio class: {self.fabioclass}\n"
                f"number of files: {len(self._files)}\n        nframes: {len(self)}\n"
                f"          dtype: {self.dtype}\n          shape: {self.shape}\n"
                f"  single frames: {self.singleframes}\n")

    @property
    def fname(self):
        return self._fname

    @property
    def metadata(self) -> dict:
        return self._meta

    @property
    def shape(self):
        return self._shape

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, value):
        self._dtype = np.dtype(value)

    @property
    def infolist(self) -> list[FileInfo]:
        return self._infolist

    @property
    def fabioclass(self):
        return self._fabioclass

    @property
    def singleframes(self) -> bool:
        """True if every file holds one frame."""
        return self._singleframes
