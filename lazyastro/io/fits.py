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

import math
import os
import warnings
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.atomic import check_output, finalize, partial_path, remove_path
from ..core.backend import to_numpy
from ..core.chunking import normalize_chunks
from ..core.errors import FormatError, InputNotFoundError, ParameterError, UnsupportedDtypeError
from ..core.metadata import header_from_attrs
from .common import as_dask, block_slices, default_dims, wrap

__all__ = ["open_fits", "to_fits", "sniff_fits", "fits_layout", "apply_scaling"]

BLOCK = 2880
_BITPIX_DTYPE = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# dtype -> (BITPIX, BZERO) for writing; unsigned/signed-byte types use the BZERO convention.
_WRITE_DTYPES = {
    "uint8": (8, 0), "int8": (8, -128), "int16": (16, 0), "uint16": (16, 32768),
    "int32": (32, 0), "uint32": (32, 2**31), "int64": (64, 0),
    "float32": (-32, 0), "float64": (-64, 0),
}


def sniff_fits(path: Path) -> bool:
    """True if ``path`` is a file that starts like a FITS primary header."""
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(9) == b"SIMPLE  ="


def _open_hdul(path: Path):
    from astropy.io import fits

    if not path.exists():
        raise InputNotFoundError("no such file", path)
    if path.is_dir():
        raise FormatError("is a directory, not a FITS file", path)
    try:
        return fits.open(path, memmap=True, lazy_load_hdus=True, ignore_missing_simple=False)
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise FormatError(f"not a readable FITS file ({exc})", path) from None


def fits_layout(path: str | os.PathLike, hdu: int | str | None = None) -> dict[str, Any]:
    """Header, shape, raw dtype, data offset and scaling of one image HDU (reads headers only)."""

    path = Path(path)
    with warnings.catch_warnings():
        # astropy warns about truncation/odd cards; we check and report those ourselves.
        warnings.simplefilter("ignore")
        return _layout(path, hdu)


def _layout(path: Path, hdu: int | str | None) -> dict[str, Any]:
    from astropy.io import fits

    with _open_hdul(path) as hdul:
        try:
            n = len(hdul)
        except (OSError, ValueError) as exc:
            raise FormatError(f"corrupt FITS structure ({exc})", path) from None
        if hdu is None:
            candidates = [i for i in range(n) if hdul[i].header.get("NAXIS", 0) > 0]
            if not candidates:
                raise FormatError("no HDU with image data", path)
            index = candidates[0]
        else:
            try:
                index = hdul.index_of(hdu)
                if index >= n:
                    raise IndexError
            except (KeyError, IndexError):
                raise InputNotFoundError(f"HDU {hdu!r} not found (file has {n} HDUs)", path) from None
        h = hdul[index]
        header = h.header.copy()
        compressed = isinstance(h, fits.CompImageHDU)
        if not (h.is_image or compressed):
            raise FormatError(f"HDU {index} is a table, not an image", path)
        naxis = int(header.get("NAXIS", 0))
        if naxis == 0:
            raise FormatError(f"HDU {index} has no data (NAXIS = 0)", path)
        shape = tuple(int(header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
        bitpix = int(header["BITPIX"])
        if bitpix not in _BITPIX_DTYPE:
            raise FormatError(f"BITPIX = {bitpix} is not a valid FITS value", path)
        info = hdul.fileinfo(index)
        offset = int(info["datLoc"])
    raw = np.dtype(_BITPIX_DTYPE[bitpix])
    bzero = float(header.get("BZERO", 0) or 0)
    bscale = float(header.get("BSCALE", 1) or 1)
    blank = header.get("BLANK") if bitpix > 0 else None
    nbytes = math.prod(shape) * raw.itemsize
    if not compressed:
        size = path.stat().st_size
        if size < offset + nbytes:
            raise FormatError(
                f"truncated FITS file: HDU {index} needs {nbytes} data bytes from offset {offset} "
                f"but the file has {size} bytes",
                path,
            )
    unsigned = bitpix > 8 and bscale == 1 and bzero == 2 ** (bitpix - 1)
    signed_byte = bitpix == 8 and bscale == 1 and bzero == -128
    if unsigned:
        out = np.dtype(f"uint{bitpix}")
    elif signed_byte:
        out = np.dtype("int8")
    elif bscale != 1 or bzero != 0:
        out = np.dtype("float32") if bitpix in (8, 16, -32) else np.dtype("float64")
    else:
        out = raw.newbyteorder("=")
    return {
        "path": str(path), "hdu": index, "header": header, "shape": shape, "raw_dtype": raw.str,
        "dtype": out, "offset": offset, "bzero": bzero, "bscale": bscale, "blank": blank,
        "compressed": compressed, "unsigned": unsigned or signed_byte,
    }


def _run_axis(shape: tuple[int, ...], slices: tuple[slice, ...]) -> int:
    """Number of leading axes that index contiguous byte runs of a block.

    Axes from the returned one onwards form one contiguous run of a C-ordered
    file: the block covers them whole, except possibly the first of them.
    """
    k = len(shape)
    while k > 0 and slices[k - 1].stop - slices[k - 1].start == shape[k - 1]:
        k -= 1
    return max(k - 1, 0)


def apply_scaling(raw: np.ndarray, lay: dict) -> np.ndarray:
    """Raw FITS values -> physical values (BZERO/BSCALE/BLANK of :func:`fits_layout`'s ``lay``)."""
    out = np.dtype(lay["dtype"])
    if lay["unsigned"]:
        # Flip the sign bit: exact and cheap (BZERO = 2**(bits-1)).
        bits = raw.dtype.itemsize * 8
        native = raw.astype(raw.dtype.newbyteorder("="), copy=False)
        if bits == 8:
            return (native.view(np.uint8) ^ np.uint8(0x80)).view(np.int8)
        return (native.view(f"uint{bits}") ^ np.array(1 << (bits - 1), dtype=f"uint{bits}")).astype(out)
    if lay["bscale"] != 1 or lay["bzero"] != 0:
        data = raw.astype(out)
        if lay["bscale"] != 1:
            data *= out.type(lay["bscale"])
        if lay["bzero"] != 0:
            data += out.type(lay["bzero"])
        if lay["blank"] is not None:
            data[raw == lay["blank"]] = np.nan
        return data
    return raw.astype(out, copy=False)


def _read_block(lay: dict, slices: tuple[slice, ...]) -> np.ndarray:
    shape = lay["shape"]
    raw_dtype = np.dtype(lay["raw_dtype"])
    bshape = tuple(s.stop - s.start for s in slices)
    if lay["compressed"]:
        from astropy.io import fits

        with fits.open(lay["path"], memmap=False) as hdul:
            return np.asarray(hdul[lay["hdu"]].section[slices]).astype(lay["dtype"], copy=False)
    raw = np.empty(bshape, dtype=raw_dtype)
    itemsize = raw_dtype.itemsize
    lead = _run_axis(shape, slices)
    with open(lay["path"], "rb", buffering=0) as f:
        # One positioned read per contiguous run, straight into the block (no memory map).
        for idx in np.ndindex(*bshape[:lead]):
            start = tuple(s.start + i for s, i in zip(slices[:lead], idx)) + tuple(s.start for s in slices[lead:])
            flat = int(np.ravel_multi_index(start, shape)) if shape else 0
            view = memoryview(raw[idx] if lead else raw).cast("B")
            f.seek(lay["offset"] + flat * itemsize)
            got = 0
            while got < len(view):
                n = f.readinto(view[got:])
                if not n:
                    raise FormatError("file shrank while reading (truncated FITS data)", lay["path"])
                got += n
    return apply_scaling(raw, lay)


def _read_task(lay: dict, block_info=None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    return _read_block(lay, tuple(slice(a, b) for a, b in loc))


def open_fits(
    path: str | os.PathLike,
    hdu: int | str | None = None,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
) -> xr.DataArray:
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


def build_header(shape: tuple[int, ...], dtype: np.dtype, header=None):
    """A primary header for ``shape``/``dtype`` with the user's non-structural cards."""
    from astropy.io import fits

    key = np.dtype(dtype).name
    if key not in _WRITE_DTYPES:
        raise UnsupportedDtypeError(
            f"dtype {key} cannot be written to FITS (use one of {', '.join(_WRITE_DTYPES)})"
        )
    bitpix, bzero = _WRITE_DTYPES[key]
    out = fits.Header()
    out["SIMPLE"] = True
    out["BITPIX"] = bitpix
    out["NAXIS"] = len(shape)
    for i, n in enumerate(reversed(shape), start=1):
        out[f"NAXIS{i}"] = int(n)
    out["EXTEND"] = True
    if bzero:
        out["BZERO"] = bzero
        out["BSCALE"] = 1
    for card in header_from_attrs(header).cards:
        out.append(card, end=True)
    return out


def _encode(block: np.ndarray, bitpix: int, bzero: int) -> np.ndarray:
    """Native block -> big-endian raw FITS values."""
    raw = np.dtype(_BITPIX_DTYPE[bitpix])
    if bzero and bitpix > 8:
        bits = bitpix
        flipped = block.view(f"uint{bits}") ^ np.array(1 << (bits - 1), dtype=f"uint{bits}")
        return flipped.view(f"int{bits}").astype(raw)
    if bzero and bitpix == 8:
        return (block.view(np.uint8) ^ np.uint8(0x80)).astype(raw)
    return block.astype(raw)


def _write_block(block: np.ndarray, tmp: str, offset: int, shape: tuple[int, ...], slices, bitpix: int, bzero: int, ready) -> int:
    # ``ready`` is the header task: an ordering dependency only.
    """Write one block at its byte offsets (one ``pwrite`` per contiguous run)."""
    raw = np.ascontiguousarray(_encode(to_numpy(block), bitpix, bzero))
    expected = tuple(s.stop - s.start for s in slices)
    if raw.shape != expected:
        raise ValueError(f"a block of shape {raw.shape} does not fit its region {expected}")
    itemsize = raw.dtype.itemsize
    ndim = len(shape)
    lead = _run_axis(shape, slices)  # axes [0, lead) index the runs
    fd = os.open(tmp, os.O_WRONLY)
    try:
        for idx in np.ndindex(*raw.shape[:lead]):
            start = tuple(s.start + i for s, i in zip(slices[:lead], idx)) + tuple(s.start for s in slices[lead:])
            flat = int(np.ravel_multi_index(start, shape)) if ndim else 0
            pos = offset + flat * itemsize
            view = memoryview(raw[idx] if lead else raw).cast("B")
            while view:
                n = os.pwrite(fd, view, pos)
                view, pos = view[n:], pos + n
    finally:
        os.close(fd)
    return int(raw.nbytes)


def _finish(tmp: str, path: str, written) -> str:
    # Every block is on disk (in the page cache) once all writes returned; the rename makes
    # the file visible atomically. (No fsync: process kills cannot lose page-cache data.)
    return finalize(tmp, path)


def to_fits(
    array: Any,
    path: str | os.PathLike,
    header=None,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Stream an array to a FITS primary HDU, block by block, atomically.

    The header (from ``header`` or the array's ``attrs``) is written first; each
    dask block is then written by its own task, which opens the file itself, at
    its byte offset. The file appears under ``path`` only when complete. Output
    bytes do not depend on the scheduler or chunking. ``uint16``/``uint32``/``int8``
    use the BZERO convention. With ``compute=False`` a ``dask.delayed`` is returned.

    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_fits(da.zeros((512, 512), "f4"), "/tmp/zeros.fits", overwrite=True, progress=False)
    '/tmp/zeros.fits'
    """
    data, _dims, attrs = as_dask(array)
    target = check_output(path, overwrite)
    hdr = build_header(data.shape, data.dtype, header if header is not None else attrs)
    if data.dtype.byteorder == ">":
        data = data.astype(data.dtype.newbyteorder("="))
    bitpix, bzero = int(hdr["BITPIX"]), int(hdr.get("BZERO", 0))
    head = hdr.tostring(padding=True).encode("ascii")
    nbytes = data.size * data.dtype.itemsize
    total = len(head) + math.ceil(nbytes / BLOCK) * BLOCK
    tmp = partial_path(target)

    def _prepare() -> str:
        remove_path(tmp)
        with open(tmp, "wb") as f:
            f.write(head)
            f.truncate(total)  # zero-filled data and padding
        return str(tmp)

    ready = dask.delayed(_prepare, pure=False)()
    blocks = data.to_delayed().ravel()
    writes = [
        dask.delayed(_write_block, pure=False)(blk, str(tmp), len(head), data.shape, slices, bitpix, bzero, ready)
        for blk, (_idx, slices) in zip(blocks, block_slices(data.chunks))
    ]
    if not writes:  # zero-size array
        writes = [ready]
    done = dask.delayed(_finish, pure=False)(str(tmp), str(target), writes)
    if not compute:
        return done
    from ..core.execution import compute as run

    try:
        (result,) = run(done, scheduler=scheduler, progress=progress, desc=f"write {target.name}")
    except BaseException:
        remove_path(tmp)
        raise
    return result
