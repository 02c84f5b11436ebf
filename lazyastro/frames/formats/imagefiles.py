"""Series made of image files: the legacy ``image-files`` YAML and one FITS file per frame.

Legacy YAML::

    image-files:
      directory: /data/run1
      files: "scan_*.tif dark_*.tif"     # space-separated globs, matches sorted
    options:
      empty-frames: 0         # frames skipped at the start of each file
      max-total-frames: 0     # 0 = no limit
      max-file-frames: 0      # 0 = no limit
      dtype: uint16           # refused if it would truncate values
    meta:
      omega: "! load-numpy-array omega.npy"

FITS (2-D or 3-D), TIFF (multi-page) and PNG/JPEG frames are supported.

>>> s = open_image_files("series.yml")  # doctest: +SKIP
>>> s = open_fits_files("frames/*.fits")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ...core.errors import FormatError, InputNotFoundError, ParameterError, reading
from ...core.paths import require_input
from ...core.validate import int_problem
from ..kernels import cast_checked
from ..series import Backend, from_backend
from ._common import load_yaml, read_text, sniff_yaml_mapping
from .framecache import _resolve_meta

__all__ = ["open_image_files", "open_fits_files", "sniff_image_files", "frame_count", "read_frame"]

_FITS = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_TIFF = (".tif", ".tiff")
_PIL = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_TOP_KEYS = {"image-files", "options", "meta"}
_IF_KEYS = {"directory", "files"}
_OPT_KEYS = {"empty-frames", "max-total-frames", "max-file-frames", "dtype"}


def _kind(path: str) -> str:
    name = path.lower()
    if name.endswith(_FITS):
        return "fits"
    if name.endswith(_TIFF):
        return "tiff"
    if name.endswith(_PIL):
        return "pil"
    raise FormatError("unsupported image file type (use FITS, TIFF or PNG/JPEG)", path)


def _fits_frames(path: str) -> dict:
    """The :func:`lazyastro.io.fits.fits_layout` of a frame file's first image HDU (2-D or more)."""
    from ...io.fits import fits_layout

    lay = fits_layout(path)
    if len(lay["shape"]) < 2:
        raise FormatError(f"HDU {lay['hdu']} holds a {len(lay['shape'])}-D array, not an image", path)
    return lay


def frame_count(path: str) -> tuple[int, tuple[int, int], np.dtype]:
    """Number of frames, frame shape and dtype of an image file, from its header.

    FITS files are described by :func:`lazyastro.io.fits.fits_layout` (validated
    header; BZERO/BSCALE/BLANK give the dtype astropy reads; gzip/bzip2/zip FITS
    are decompressed once), so frames read as astropy reads them.

    Parameters
    ----------
    path : str
        A FITS, TIFF or PNG/JPEG file.

    Returns
    -------
    tuple
        ``(nframes, (rows, cols), dtype)``.

    Raises
    ------
    InputNotFoundError
        If the file does not exist.
    FormatError
        If it is not a regular file or its header cannot be read.

    Examples
    --------
    >>> frame_count("frame_0001.fits")  # doctest: +SKIP
    (1, (2048, 2048), dtype('uint16'))
    """
    kind = _kind(path)
    require_input(path, kind="file")
    with reading(path, "image header"):
        if kind == "fits":
            lay = _fits_frames(path)
            shape = lay["shape"]
            n = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            return n, tuple(shape[-2:]), np.dtype(lay["dtype"])
        if kind == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                shape = series.shape
                n = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
                return n, tuple(shape[-2:]), np.dtype(series.dtype)
        from PIL import Image

        with Image.open(path) as im:
            first = np.asarray(im)
            return int(getattr(im, "n_frames", 1)), first.shape[:2], first.dtype


def read_frame(path: str, index: int) -> np.ndarray:
    """Frame ``index`` of an image file as a 2-D array.

    Parameters
    ----------
    path : str
        A FITS, TIFF or PNG/JPEG file.
    index : int
        Frame number inside the file (0 for a 2-D image).

    Returns
    -------
    numpy.ndarray
        The frame (FITS: scaled as astropy scales it, BLANK pixels NaN).

    Raises
    ------
    FormatError
        If the file cannot be read (the message names the file and the frame).

    Examples
    --------
    >>> read_frame("frame_0001.fits", 0).shape  # doctest: +SKIP
    (2048, 2048)
    """
    kind = _kind(path)
    with reading(path, f"frame {index}"):
        if kind == "fits":
            from ...io.fits import _read_block

            lay = _fits_frames(path)
            shape = lay["shape"]
            lead = np.unravel_index(index, shape[:-2]) if len(shape) > 2 else ()
            slices = tuple(slice(int(i), int(i) + 1) for i in lead) + (slice(0, shape[-2]), slice(0, shape[-1]))
            return _read_block(lay, slices).reshape(shape[-2:])
        if kind == "tiff":
            import tifffile

            with tifffile.TiffFile(path) as tf:
                series = tf.series[0]
                if len(series.shape) == 2:
                    return series.asarray()
                if len(tf.pages) == int(np.prod(series.shape[:-2])):
                    return tf.pages[index].asarray()
                return series.asarray().reshape((-1,) + series.shape[-2:])[index]
        from PIL import Image

        with Image.open(path) as im:
            im.seek(index)
            return np.array(im)


class ImageFilesBackend(Backend):
    """Frames given as ``(file, index-in-file)`` pairs, optionally cast with a truncation check."""

    def __init__(self, path, frames, shape, dtype, cast: bool):
        self.path = os.fspath(path)
        self.frames = [(str(f), int(i)) for f, i in frames]
        self.shape, self.dtype, self.cast = tuple(shape), np.dtype(dtype), cast

    def read(self, start, stop):
        out = np.empty((stop - start,) + self.shape[1:], self.dtype)
        for k, (f, i) in enumerate(self.frames[start:stop]):
            img = read_frame(f, i)  # errors name the file and the frame
            if img.shape != self.shape[1:]:
                raise FormatError(f"frame shape {img.shape} differs from {self.shape[1:]}", f)
            if self.cast:
                try:
                    img = cast_checked(img, self.dtype)
                except ValueError as exc:
                    raise FormatError(f"option 'dtype': {exc}", f) from exc
            out[k] = img
        return out


def _build(source, files, empty=0, max_file=0, max_total=0, dtype=None, meta=None, chunks=None):
    if not files:
        raise FormatError("no image files found", source)
    frames, shape, native = [], None, None
    for f in files:
        n, fshape, fdtype = frame_count(f)
        if shape is None:
            shape, native = fshape, fdtype
        elif fshape != shape:
            raise FormatError(f"frame shape {fshape} differs from {shape} of {files[0]}", f)
        idx = list(range(empty, n))
        if max_file:
            idx = idx[:max_file]
        frames.extend((f, i) for i in idx)
        if max_total and len(frames) >= max_total:
            frames = frames[:max_total]
            break
    if not frames:
        raise FormatError("zero length image series (all frames skipped)", source)
    out_dtype = np.dtype(dtype) if dtype is not None else native
    backend = ImageFilesBackend(source, frames, (len(frames),) + tuple(shape), out_dtype,
                                cast=out_dtype != native)
    return from_backend(backend, meta=meta, chunks=chunks, name="image-files")


def sniff_image_files(path: Path) -> bool:
    """YAML file with a top-level ``image-files`` key."""
    doc = sniff_yaml_mapping(path)
    return doc is not None and "image-files" in doc


def _int_option(opts, key, source) -> int:
    value = opts.get(key, 0)
    number, problem = int_problem(0 if value is None else value, min=0)
    if problem:
        raise FormatError(f"option {key!r} {problem}", source)
    return number


def open_image_files(path_or_text, chunks=None) -> xr.DataArray:
    """Open a legacy ``image-files`` YAML (a path, or the YAML text itself)."""
    text, source, base = str(path_or_text), None, Path.cwd()
    if "\n" not in text and os.path.lexists(text):
        source = Path(text)
        text, base = read_text(source), source.parent
    elif "\n" not in text and not text.lstrip().startswith("image-files"):
        raise InputNotFoundError("no such file", text)
    src = source or "<image-files yaml>"
    doc = load_yaml(text, src)
    if not isinstance(doc, dict) or not isinstance(doc.get("image-files"), dict):
        raise FormatError("missing section 'image-files'", src)
    for section, allowed, value in (("", _TOP_KEYS, doc), ("image-files", _IF_KEYS, doc["image-files"]),
                                    ("options", _OPT_KEYS, doc.get("options") or {})):
        if not isinstance(value, dict):
            raise FormatError(f"section {section!r} must be a mapping", src)
        unknown = set(value) - allowed
        if unknown:
            where = f" in section {section!r}" if section else ""
            raise FormatError(f"unknown key(s) {sorted(unknown)}{where}; allowed: {sorted(allowed)}", src)
    spec, opts = doc["image-files"], doc.get("options") or {}
    if "files" not in spec:
        raise FormatError("missing field 'image-files.files'", src)
    directory = Path(str(spec.get("directory", ".")))
    if not directory.is_absolute():
        directory = base / directory
    files = []
    for pattern in str(spec["files"]).split():
        files.extend(glob.glob(str(directory / pattern)))
    files.sort()  # the combined list, as hexrd sorts it
    dtype = opts.get("dtype")
    if dtype is not None:
        try:
            dtype = np.dtype(str(dtype))
        except TypeError as exc:
            raise FormatError(f"option 'dtype': invalid dtype {dtype!r}", src) from exc
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise FormatError("section 'meta' must be a mapping", src)
    return _build(
        src, files,
        empty=_int_option(opts, "empty-frames", src),
        max_file=_int_option(opts, "max-file-frames", src),
        max_total=_int_option(opts, "max-total-frames", src),
        dtype=dtype, meta=_resolve_meta(meta, base, src), chunks=chunks,
    )


def open_fits_files(paths, meta=None, chunks=None) -> xr.DataArray:
    """One FITS (or TIFF/PNG) file per frame: a directory, a glob pattern or a list of paths.

    >>> s = open_fits_files("frames/frame_*.fits")  # doctest: +SKIP
    """
    if isinstance(paths, str | os.PathLike) and Path(paths).is_dir():
        d = require_input(paths, kind="dir")
        files = sorted(str(p) for p in d.iterdir() if p.name.lower().endswith(_FITS))
        source = d
    elif isinstance(paths, str | os.PathLike):
        files = sorted(glob.glob(os.fspath(paths)))
        source = os.fspath(paths)
    else:
        files = [os.fspath(p) for p in paths]
        if not files:
            raise ParameterError("empty list of frame files")
        source = files[0]
    for f in files:
        require_input(f, kind="file")  # missing files, FIFOs, devices, link loops
    return _build(source, files, meta=meta, chunks=chunks)
