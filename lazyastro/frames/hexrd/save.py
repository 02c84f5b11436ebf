"""Write image series (hexrd ``imageseries.save``), with lazyastro's streaming writers.

``write(ims, fname, fmt, **kwargs)`` looks the writer up by format name:

* ``"hdf5"``: :func:`lazyastro.frames.write_hexrd_hdf5` (group ``path``, dataset
  ``images``; ``gzip`` 0..9, ``shuffle``, ``chunk_rows``, ``compression``);
* ``"frame-cache"``: :func:`lazyastro.frames.write_frame_cache` (``threshold``
  required; ``style`` ``"npz"`` or ``"fch5"``; ``cache_file``; ``output_yaml``
  writes the deprecated YAML index too).

``fname`` may be an open ``h5py.File`` / ``h5py.Group`` (``hdf5``, and
``frame-cache`` with ``style="fch5"`` and an optional ``path``), as hexrd allows.
Files are written atomically (nothing appears under the name until complete)
and replaced when they exist, as hexrd does.

>>> from lazyastro.frames import hexrd
>>> ims = hexrd.open(None, "array", data=np.eye(4, dtype="u2")[None])
>>> write(ims, "/tmp/_doc_hexrd.npz", "frame-cache", threshold=0)
"""

from __future__ import annotations

import os
import warnings

import h5py
import numpy as np
import yaml

from ...core.atomic import atomic_output
from ...core.errors import ParameterError
from ..formats.framecache import write_frame_cache
from ..formats.hexrd_hdf5 import write_hexrd_hdf5
from ._bridge import to_dataarray
from .errors import UnknownFormatError, UnknownStyleError

__all__ = ["write", "Writer", "WriteH5", "WriteFrameCache", "MAX_NZ_FRACTION"]

#: A frame with more than this fraction of its pixels kept triggers a warning.
MAX_NZ_FRACTION = 0.1


def write(ims, fname, fmt: str, **kwargs) -> None:
    """Write an image series to a file with format-specific options.

    Parameters
    ----------
    ims : image series or array
        The frames (``ims.metadata`` is written too).
    fname : str, path, h5py.File or h5py.Group
        Output.
    fmt : str
        ``"hdf5"`` or ``"frame-cache"``.
    **kwargs
        Options of the writer (:class:`WriteH5`, :class:`WriteFrameCache`).

    Raises
    ------
    UnknownFormatError
        (a ``KeyError``) for an unknown ``fmt``.
    """
    wcls = _Registry.getwriter(fmt)
    w = wcls(ims, fname, **kwargs)
    w.write()


class _Registry:
    """Writers by format name."""

    writer_registry: dict = {}

    @classmethod
    def register(cls, wcls) -> None:
        if wcls.__name__ != "Writer":
            cls.writer_registry[wcls.fmt] = wcls

    @classmethod
    def getwriter(cls, name: str):
        try:
            return cls.writer_registry[name]
        except KeyError:
            raise UnknownFormatError(
                f"unknown image-series writer {name!r}; known: {', '.join(sorted(cls.writer_registry))}"
            ) from None


class Writer:
    """Base class of writers; subclasses with a ``fmt`` register themselves."""

    fmt: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _Registry.register(cls)

    def __init__(self, ims, fname, **kwargs):
        self._ims = ims
        self._shape = tuple(ims.shape)
        self._dtype = ims.dtype
        self._nframes = len(ims)
        self._meta = ims.metadata
        self._fname = fname
        self._opts = kwargs
        filename = fname.file.filename if isinstance(fname, h5py.Group) else os.fspath(fname)
        self._fname_dir, base = os.path.split(filename)
        self._fname_base, self._fname_suff = os.path.splitext(base)

    @property
    def fname(self):
        return self._fname

    @property
    def fname_dir(self) -> str:
        return self._fname_dir

    @property
    def opts(self) -> dict:
        return self._opts

    def _series(self):
        return to_dataarray(self._ims)


class WriteH5(Writer):
    """hexrd HDF5 layout: dataset ``path/images`` ``(nframes, rows, cols)``, metadata as attributes.

    Parameters
    ----------
    ims : image series
        The frames.
    fname : str, path, h5py.File or h5py.Group
        Output.
    path : str
        Group (required).
    gzip : int
        0..9, default 1 (0: no compression).
    chunk_rows : int
        Rows per chunk (default, or out of range: whole frames).
    shuffle : bool
        Shuffle filter with gzip (default True).
    compression : mapping, optional
        ``create_dataset`` filter keywords (e.g. ``hdf5plugin.Blosc()``), used as they are.
    """

    fmt = "hdf5"
    dflt_gzip = 1
    dflt_chrows = 0
    dflt_shuffle = True

    def __init__(self, ims, fname, **kwargs):
        super().__init__(ims, fname, **kwargs)
        self._path = self._opts["path"]

    @property
    def h5opts(self) -> dict:
        """The ``create_dataset`` keywords: filters and ``chunks``."""
        d: dict = {}
        compression = self._opts.get("compression")
        if compression is not None:
            d.update(dict(compression))
        else:
            d["shuffle"] = self._opts.get("shuffle", self.dflt_shuffle)
            level = self._opts.get("gzip", self.dflt_gzip)
            if not 0 <= int(level) <= 9:
                raise ParameterError(f"gzip level must be in 0..9, got {level}")
            if level > 0:
                d["compression"] = "gzip"
                d["compression_opts"] = level
        rows, cols = self._shape
        chrows = self._opts.get("chunk_rows", self.dflt_chrows) or 0
        d["chunks"] = (1, chrows if 1 <= chrows <= rows else rows, cols)
        return d

    def write(self) -> None:
        """Write the series (replaces an existing file)."""
        opts = self.h5opts
        chunks = opts.pop("chunks")
        if "compression" not in opts:
            opts.pop("shuffle", None)  # shuffle alone does not compress
        write_hexrd_hdf5(self._series(), self._fname, group=self._path, compression=opts,
                         chunk_rows=chunks[1], overwrite=True)


class WriteFrameCache(Writer):
    """Sparse frame cache: pixels strictly above ``threshold``.

    Parameters
    ----------
    ims : image series
        The frames.
    fname : str, path, h5py.File or h5py.Group
        Output (for ``output_yaml``, the YAML index; the data go to ``cache_file``).
    threshold : float
        Keep pixels strictly above it (required).
    style : {"npz", "fch5"}
        Container (default ``"npz"``).
    cache_file : str, optional
        Data file, relative to ``fname``'s directory unless absolute.
    path : str, optional
        With an open ``h5py`` object and ``fch5``: a new group to write into.
    max_workers : int, optional
        Accepted for compatibility (frames are computed by lazyastro's scheduler).

    Raises
    ------
    UnknownStyleError
        (a ``TypeError``) for an unknown style.
    """

    fmt = "frame-cache"

    def __init__(self, ims, fname, style: str = "npz", **kwargs):
        super().__init__(ims, fname, **kwargs)
        self._thresh = self._opts["threshold"]
        self._path = self._opts.get("path")
        self._cache, self.cachename = self._set_cache()
        self.max_workers = kwargs.get("max_workers", os.cpu_count())
        if style not in ("npz", "fch5"):
            raise UnknownStyleError(
                f"Unknown file style for writing framecache: {style}. Supported formats are ['npz', 'fch5']"
            )
        self.style = style

    def _set_cache(self):
        cf = self._opts.get("cache_file")
        if isinstance(self._fname, h5py.Group):
            return self._fname, self._fname.file.filename
        if cf is None:
            return os.fspath(self._fname), os.fspath(self._fname)
        cache = cf if os.path.isabs(cf) else os.path.join(os.path.dirname(os.fspath(self._fname)), cf)
        return cache, cf

    @property
    def cache(self):
        """Where the frames are written."""
        return self._cache

    def _process_meta(self, save_omegas: bool = False) -> dict:
        """Metadata for the YAML index: arrays saved beside the cache as ``<base>-<key>.npy``."""
        d = {}
        for k, v in self._meta.items():
            if isinstance(v, dict):
                warnings.warn(f"nested metadata {k!r} is not written to the frame-cache index", stacklevel=2)
                continue
            if isinstance(v, np.ndarray) and save_omegas:
                cdir = os.path.dirname(os.fspath(self._cache))
                fname = os.path.join(cdir, f"{self._fname_base}-{k}.npy")
                if not os.path.exists(fname):
                    np.save(fname, v, allow_pickle=False)
                d[k] = f"! load-numpy-array {fname}"
            else:
                d[k] = v.item() if isinstance(v, np.generic) else v
        return d

    def _write_yml(self) -> None:
        info = {
            "data": {"file": os.fspath(self.cachename), "dtype": str(np.dtype(self._dtype)),
                     "nframes": int(self._nframes), "shape": [int(n) for n in self._shape]},
            "meta": self._process_meta(save_omegas=True),
        }
        with atomic_output(self._fname, overwrite=True) as tmp:
            with open(tmp, "w") as f:
                yaml.safe_dump(info, f)

    def _check_sparsity(self, frame_id: int, count: int, buff_size: int) -> None:
        """Warn if more than :data:`MAX_NZ_FRACTION` of a frame's pixels are kept."""
        fullness = count / float(buff_size)
        if fullness > MAX_NZ_FRACTION:
            warnings.warn(f"frame {frame_id} is {100.0 * (1 - fullness):4.2f}% sparse (cutoff is 95%)", stacklevel=2)

    def _write_frames(self) -> None:
        if self.style == "npz":
            self._write_frames_npz()
        else:
            self._write_frames_fch5()

    def _write_frames_npz(self) -> None:
        if isinstance(self._cache, h5py.Group):
            raise ParameterError("an open HDF5 file or group can only receive style='fch5'")
        write_frame_cache(self._series(), self._cache, threshold=self._thresh, style="npz", overwrite=True)

    def _write_frames_fch5(self) -> None:
        if isinstance(self._cache, h5py.Group):
            write_frame_cache(self._series(), self._cache, threshold=self._thresh, style="fch5", group=self._path)
        else:
            write_frame_cache(self._series(), self._cache, threshold=self._thresh, style="fch5", overwrite=True)

    def write(self, output_yaml: bool = False) -> None:
        """Write the frames (and, deprecated, the YAML index)."""
        self._write_frames()
        if output_yaml:
            warnings.warn("YAML output for frame-cache is deprecated", DeprecationWarning, stacklevel=2)
            self._write_yml()
