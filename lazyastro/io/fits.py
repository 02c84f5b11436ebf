"""FITS: lazy reading through byte offsets, parallel streaming writes.

Reading never loads the whole HDU: every dask task opens the file itself and
reads its block from the data section (``np.fromfile`` for contiguous blocks, a
memory map otherwise), so graphs pickle and run under any scheduler. Writing
puts the header first, pre-sizes the file, then every dask block is written by
its own task at its own byte offset (no astropy ``writeto`` of a dask array,
which writes zeros under ``distributed``), and the file is renamed into place
only when every block is on disk.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..core.chunking import normalize_chunks
from ..core.errors import (
    FormatError,
    InputNotFoundError,
    LazyAstroError,
    ParameterError,
    block_text,
    reading,
)
from ..core.paths import is_regular_file, require_input
from ..core.stream import default_dims

__all__ = ["open_fits", "to_fits", "FitsTarget", "build_header", "sniff_fits", "fits_layout", "apply_scaling"]

BLOCK = 2880
_BITPIX_DTYPE = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


# Compressed containers: astropy decompresses them in memory and reports offsets of the
# decompressed stream, so positioned reads must go to a decompressed copy.
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"PK\x03\x04", "zip"), (b"\xfd7zXZ\x00", "xz"))
_DECOMPRESSED: dict[tuple, str] = {}
_DECOMPRESS_LOCK = threading.Lock()


def _container(path: str | os.PathLike) -> str | None:
    """``"gzip"``, ``"bzip2"``, ``"zip"`` or ``"xz"`` from the first bytes of a regular file, else ``None``."""
    with open(path, "rb") as f:
        head = f.read(6)
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _open_container(path: str | os.PathLike, container: str):
    """A binary stream of the decompressed content (zip: its only member)."""
    if container == "gzip":
        import gzip

        return gzip.open(path, "rb")
    if container == "bzip2":
        import bz2

        return bz2.open(path, "rb")
    if container == "xz":
        import lzma

        return lzma.open(path, "rb")
    import zipfile

    zf = zipfile.ZipFile(path)
    members = [i for i in zf.infolist() if not i.is_dir()]
    if len(members) != 1:
        zf.close()
        raise FormatError(f"zip archive with {len(members)} members; a zipped FITS file holds exactly one", path)
    return zf.open(members[0])


def _head(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of the (decompressed) content of a regular file."""
    container = _container(path)
    if container is None:
        with open(path, "rb") as f:
            return f.read(n)
    with _open_container(path, container) as f:
        return f.read(n)


def _decompress_to(source: str, container: str, dest: str) -> None:
    import shutil

    tmp = f"{dest}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with _open_container(source, container) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 16 * 2**20)
        os.replace(tmp, dest)
    except LazyAstroError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        if exc.filename == tmp or exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            # the temporary copy could not be written (TMPDIR full, read-only, ...)
            raise FormatError(f"cannot write the decompressed copy {dest} ({exc.strerror or exc}); "
                              "set TMPDIR to a directory with room", source) from None
        raise FormatError(f"cannot decompress the {container} data: {' '.join(str(exc).split())}", source) from None
    except (EOFError, ValueError, RuntimeError) as exc:
        _remove_quietly(tmp)
        raise FormatError(f"cannot decompress the {container} data: {' '.join(str(exc).split())}", source) from None
    except Exception as exc:
        _remove_quietly(tmp)
        raise FormatError(f"cannot decompress the {container} data: {type(exc).__name__}: {exc}", source) from None


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _decompressed(source: Path, container: str) -> str:
    """Path of a decompressed copy of ``source`` (made once per file version, in the temp directory).

    The copy lives in ``$TMPDIR/lazyastro-decompressed/`` under a name derived from
    the source's resolved path, size and mtime, and is removed when the process
    that made it exits; a task that finds it missing (another machine, a cleaned
    temp directory) makes it again.
    """
    import atexit
    import hashlib
    import tempfile

    st = os.stat(source)
    key = (str(source.resolve()), st.st_size, st.st_mtime_ns)
    with _DECOMPRESS_LOCK:
        dest = _DECOMPRESSED.get(key)
        if dest is not None and os.path.exists(dest):
            return dest
        folder = Path(tempfile.gettempdir()) / "lazyastro-decompressed"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FormatError(f"cannot make {folder} for the decompressed copy ({exc.strerror or exc}); "
                              "set TMPDIR to a writable directory", source) from None
        digest = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
        dest = str(folder / f"{source.name}.{digest}.fits")
        if not os.path.exists(dest):
            _decompress_to(str(source), container, dest)
            atexit.register(_remove_quietly, dest)
        _DECOMPRESSED[key] = dest
        return dest


def _ensure_local(lay: dict) -> str:
    """The file a task reads: the decompressed copy (re-made if missing) or the source itself."""
    if lay.get("container") and not os.path.exists(lay["path"]):
        _decompress_to(lay["source"], lay["container"], lay["path"])
    return lay["path"]


def sniff_fits(path: Path) -> bool:
    """True if ``path`` is a regular file whose (decompressed) content starts like a FITS header.

    gzip, bzip2, xz and single-member zip containers are looked into; FIFOs and
    devices are never opened.
    """
    if not is_regular_file(path):
        return False
    try:
        return _head(Path(path), 9) == b"SIMPLE  ="
    except (OSError, EOFError, ValueError, LazyAstroError):
        return False
    except Exception:  # zlib/bz2/lzma errors on corrupt containers
        return False


def _open_hdul(path: Path, source: Path | None = None):
    from astropy.io import fits

    source = source or path
    try:
        return fits.open(path, memmap=True, lazy_load_hdus=True, ignore_missing_simple=False)
    except KeyError as exc:  # astropy: a required card (NAXISn, BITPIX...) is missing
        raise FormatError(f"not a readable FITS file (header card {exc.args[0]!r} is missing)", source) from None
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise FormatError(f"not a readable FITS file ({' '.join(str(exc).split())})", source) from None


def fits_layout(path: str | os.PathLike, hdu: int | str | None = None) -> dict[str, Any]:
    """Header, shape, raw dtype, data offset and scaling of one image HDU (reads headers only).

    The header is validated here, before any graph is built. gzip, bzip2, xz and
    zip containers are decompressed once to a temporary file (``layout["path"]``),
    which the read tasks use; ``layout["source"]`` is the file the user named.

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file (possibly compressed).
    hdu : int or str, optional
        HDU index or name; ``None`` takes the first HDU with data.

    Returns
    -------
    dict
        ``header``, ``shape``, ``dtype`` (after scaling), ``raw_dtype``, ``offset``,
        ``bzero``, ``bscale``, ``blank``, ``compressed`` (tile compression),
        ``container``, ``path`` (file to read) and ``source``.

    Raises
    ------
    InputNotFoundError
        If the file or the HDU does not exist.
    FormatError
        If the input is not a regular FITS file, its header is invalid (missing or
        negative ``NAXISn``, non-numeric ``BZERO``/``BSCALE``, bad ``BITPIX``), the
        data are truncated or the container cannot be decompressed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from astropy.io import fits
    >>> p = os.path.join(tempfile.mkdtemp(), "a.fits")
    >>> fits.writeto(p, np.zeros((4, 6), "i2"))
    >>> fits_layout(p)["shape"]
    (4, 6)
    """
    source = require_input(path, kind="file")
    with warnings.catch_warnings():
        # astropy warns about truncation/odd cards; we check and report those ourselves.
        warnings.simplefilter("ignore")
        try:
            container = _container(source)
        except OSError as exc:
            raise FormatError(f"cannot read the file ({exc.strerror or exc})", source) from None
        local = Path(_decompressed(source, container)) if container else source
        with reading(source, "FITS header"):
            lay = _layout(local, hdu, source)
    lay.update(path=os.path.abspath(local), source=str(source), container=container)
    return lay


def _card_number(header, key: str, default, source: Path, index: int, kind=float):
    value = header.get(key, default)
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise FormatError(f"HDU {index}: header {key} = {value!r} is not a number", source)
    if kind is int and float(value) != int(value):
        raise FormatError(f"HDU {index}: header {key} = {value!r} is not an integer", source)
    if not math.isfinite(float(value)):
        raise FormatError(f"HDU {index}: header {key} = {value!r} is not finite", source)
    return kind(value)


def _layout(path: Path, hdu: int | str | None, source: Path) -> dict[str, Any]:
    from astropy.io import fits

    with _open_hdul(path, source) as hdul:
        try:
            n = len(hdul)
        except (OSError, ValueError) as exc:
            raise FormatError(f"corrupt FITS structure ({exc})", source) from None
        if hdu is None:
            candidates = [i for i in range(n) if _naxis(hdul[i].header) > 0]
            if not candidates:
                raise FormatError("no HDU with image data", source)
            index = candidates[0]
        else:
            try:
                index = hdul.index_of(hdu)
                if index >= n:
                    raise IndexError
            except (KeyError, IndexError):
                raise InputNotFoundError(f"HDU {hdu!r} not found (file has {n} HDUs)", source) from None
        h = hdul[index]
        header = h.header.copy()
        compressed = isinstance(h, fits.CompImageHDU)
        if not (h.is_image or compressed):
            raise FormatError(f"HDU {index} is a table, not an image", source)
        naxis = _card_number(header, "NAXIS", 0, source, index, int)
        if not 0 <= naxis <= 999:
            raise FormatError(f"HDU {index}: NAXIS = {naxis} is not in 0..999", source)
        if naxis == 0:
            raise FormatError(f"HDU {index} has no data (NAXIS = 0)", source)
        sizes = []
        for i in range(1, naxis + 1):
            if f"NAXIS{i}" not in header:
                raise FormatError(f"HDU {index}: header card NAXIS{i} is missing (NAXIS = {naxis})", source)
            size = _card_number(header, f"NAXIS{i}", 0, source, index, int)
            if size < 0:
                raise FormatError(f"HDU {index}: NAXIS{i} = {size} is negative", source)
            if size == 0:
                raise FormatError(f"HDU {index} has no data (NAXIS{i} = 0)", source)
            sizes.append(size)
        shape = tuple(reversed(sizes))
        if "BITPIX" not in header:
            raise FormatError(f"HDU {index}: header card BITPIX is missing", source)
        bitpix = header["BITPIX"]
        if isinstance(bitpix, bool) or not isinstance(bitpix, int) or bitpix not in _BITPIX_DTYPE:
            raise FormatError(f"BITPIX = {bitpix!r} is not a valid FITS value", source)
        info = hdul.fileinfo(index)
        offset = int(info["datLoc"])
    raw = np.dtype(_BITPIX_DTYPE[bitpix])
    bzero = _card_number(header, "BZERO", 0.0, source, index)
    bscale = _card_number(header, "BSCALE", 1.0, source, index) or 1.0
    blank = header.get("BLANK") if bitpix > 0 else None
    if isinstance(blank, bool) or not isinstance(blank, int | np.integer):
        blank = None  # astropy ignores a non-integer BLANK (with a warning)
    nbytes = math.prod(shape) * raw.itemsize
    if not compressed:
        size = path.stat().st_size
        if size < offset + nbytes:
            raise FormatError(
                f"truncated FITS file: HDU {index} needs {nbytes} data bytes from offset {offset} "
                f"but the {'decompressed ' if path != source else ''}file has {size} bytes",
                source,
            )
    unsigned = bitpix > 8 and bscale == 1 and bzero == 2 ** (bitpix - 1)
    signed_byte = bitpix == 8 and bscale == 1 and bzero == -128
    if unsigned:
        out = np.dtype(f"uint{bitpix}")
    elif signed_byte:
        out = np.dtype("int8")
    elif bscale != 1 or bzero != 0 or blank is not None:
        # As astropy: scaled (or BLANK-flagged) integers become floats, BLANK pixels NaN.
        out = np.dtype("float32") if bitpix in (8, 16, -32) else np.dtype("float64")
    else:
        out = raw.newbyteorder("=")
    return {
        "path": str(path), "hdu": index, "header": header, "shape": shape, "raw_dtype": raw.str,
        "dtype": out, "offset": offset, "bzero": bzero, "bscale": bscale, "blank": blank,
        "compressed": compressed, "unsigned": unsigned or signed_byte,
    }


def _naxis(header) -> int:
    value = header.get("NAXIS", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def apply_scaling(raw: np.ndarray, lay: dict) -> np.ndarray:
    """Raw FITS values -> physical values, as astropy computes them.

    Parameters
    ----------
    raw : numpy.ndarray
        Raw (big-endian) values of a block.
    lay : dict
        A layout from :func:`fits_layout` (``dtype``, ``bzero``, ``bscale``, ``blank``, ``unsigned``).

    Returns
    -------
    numpy.ndarray
        ``raw * BSCALE + BZERO`` in ``lay["dtype"]``; unsigned integers by a sign-bit
        flip; integer pixels equal to ``BLANK`` become NaN.

    Examples
    --------
    >>> lay = {"dtype": np.dtype("f4"), "unsigned": False, "bzero": 0.0, "bscale": 1.0, "blank": -1}
    >>> apply_scaling(np.array([-1, 3], ">i2"), lay).tolist()
    [nan, 3.0]
    """
    out = np.dtype(lay["dtype"])
    if lay["unsigned"]:
        # Flip the sign bit: exact and cheap (BZERO = 2**(bits-1)).
        bits = raw.dtype.itemsize * 8
        native = raw.astype(raw.dtype.newbyteorder("="), copy=False)
        if bits == 8:
            return (native.view(np.uint8) ^ np.uint8(0x80)).view(np.int8)
        return (native.view(f"uint{bits}") ^ np.array(1 << (bits - 1), dtype=f"uint{bits}")).astype(out)
    blank = lay.get("blank")
    if lay["bscale"] != 1 or lay["bzero"] != 0 or blank is not None:
        data = raw.astype(out)
        if lay["bscale"] != 1:
            data *= out.type(lay["bscale"])
        if lay["bzero"] != 0:
            data += out.type(lay["bzero"])
        if blank is not None:
            data[raw == blank] = np.nan
        return data
    return raw.astype(out, copy=False)


def _read_block(lay: dict, slices: tuple[slice, ...]) -> np.ndarray:
    shape = lay["shape"]
    raw_dtype = np.dtype(lay["raw_dtype"])
    bshape = tuple(s.stop - s.start for s in slices)
    path = _ensure_local(lay)
    source = lay.get("source", path)
    if lay["compressed"]:
        from astropy.io import fits

        with fits.open(path, memmap=False) as hdul:
            return np.asarray(hdul[lay["hdu"]].section[slices]).astype(lay["dtype"], copy=False)
    from ..core.filecache import cached_fd, read_box

    raw = np.empty(bshape, dtype=raw_dtype)
    # Positioned reads (pread) on a descriptor from the shared file cache, straight into the
    # block where the bytes are one run (no memory map, no open per block).
    try:
        with cached_fd(path) as fd:
            read_box(fd, lay["offset"], tuple(shape), tuple(slices), raw, str(source))
    except EOFError:
        raise FormatError(f"{block_text(slices)}: file shrank while reading (truncated FITS data)",
                          source) from None
    return apply_scaling(raw, lay)


def _read_task(lay: dict, block_info=None) -> np.ndarray:
    slices = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with reading(lay.get("source", lay["path"]), block_text(slices)):
        return _read_block(lay, slices)


def open_fits(
    path: str | os.PathLike,
    hdu: int | str | None = None,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
) -> Any:
    """Open one FITS image HDU lazily as a dask-backed DataArray.

    ``hdu=None`` takes the first HDU with data. Dims are ``(y, x)`` for images
    and ``(frame, y, x)`` for cubes unless ``dims`` is given. BZERO/BSCALE are
    applied per block (unsigned integers come back as ``uint16``/``uint32``).
    ``attrs`` holds the ``header`` (and ``wcs`` when the header has one).

    >>> import lazyastro
    >>> img = lazyastro.open_fits("deep.fits", chunks={"y": 1024})  # doctest: +SKIP
    >>> img.mean().compute()  # doctest: +SKIP
    """
    lay = fits_layout(path, hdu)
    dims = tuple(dims) if dims else default_dims(len(lay["shape"]))
    if len(dims) != len(lay["shape"]):
        raise ParameterError(f"dims {dims} do not match the {len(lay['shape'])}-D data", path)
    chunk_shape = normalize_chunks(chunks, lay["shape"], lay["dtype"], dims)
    stat = Path(path).stat()
    import dask.array as da
    from dask.base import tokenize

    from .common import wrap

    name = "open-fits-" + tokenize(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, lay["hdu"], chunk_shape)
    lay_task = {k: v for k, v in lay.items() if k != "header"}
    data = da.map_blocks(
        _read_task, lay_task, chunks=da.core.normalize_chunks(chunk_shape, lay["shape"]),
        dtype=lay["dtype"], meta=np.empty((0,) * len(lay["shape"]), dtype=lay["dtype"]), name=name,
    )
    attrs: dict[str, Any] = {"header": lay["header"], "source": str(path), "format": "fits", "hdu": lay["hdu"]}
    if any(k.startswith("CTYPE") for k in lay["header"]):
        try:
            from astropy.wcs import WCS

            attrs["wcs"] = WCS(lay["header"])
        except Exception:  # a malformed WCS must not make the data unreadable
            pass
    return wrap(data, dims, attrs)


# ----------------------------------------------------------------------------- writing
# The writer lives in ``fits_write`` (the streaming engine's FITS target).
from .fits_write import FitsTarget, build_header, to_fits  # noqa: E402
