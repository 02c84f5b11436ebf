"""FITS output through the streaming engine: byte-range writes, resumable, atomic.

The whole file layout (headers and data offsets of every HDU) is known before
any data is computed, so the file is created at its final size with its
headers, and every dask block is written by its own task with ``pwrite`` at its
byte offsets. A DataArray becomes the primary HDU; a Dataset becomes a
multi-extension file (an empty primary HDU, then one IMAGE extension per
variable with ``EXTNAME`` = the variable name). Output bytes do not depend on
the scheduler or chunking, and an interrupted write resumes
(:func:`lazyastro.core.stream.store`).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ParameterError, UnsupportedDtypeError
from ..core.metadata import header_from_attrs
from ..core.stream import StreamTarget, Variable, store

__all__ = ["FitsTarget", "to_fits", "build_header", "WRITE_DTYPES"]

BLOCK = 2880
_RAW = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
#: dtype -> (BITPIX, BZERO); unsigned and signed-byte types use the BZERO convention.
WRITE_DTYPES = {
    "uint8": (8, 0), "int8": (8, -128), "int16": (16, 0), "uint16": (16, 32768),
    "int32": (32, 0), "uint32": (32, 2**31), "int64": (64, 0),
    "float32": (-32, 0), "float64": (-64, 0),
}


def _bitpix(dtype) -> tuple[int, int]:
    key = np.dtype(dtype).name
    if key not in WRITE_DTYPES:
        raise UnsupportedDtypeError(
            f"dtype {key} cannot be written to FITS (use one of {', '.join(WRITE_DTYPES)})"
        )
    return WRITE_DTYPES[key]


def build_header(shape: tuple[int, ...], dtype, header=None, *, extension: str | None = None):
    """The header of an image HDU for ``shape``/``dtype`` with the user's non-structural cards.

    Parameters
    ----------
    shape : tuple of int
        Array shape (C order; NAXIS1 is the last axis).
    dtype : numpy dtype
        One of :data:`WRITE_DTYPES`.
    header : astropy Header, dict or xarray attrs, optional
        Cards to carry (structural cards are dropped).
    extension : str, optional
        ``EXTNAME`` of an IMAGE extension; ``None`` makes a primary header.

    Returns
    -------
    astropy.io.fits.Header

    Examples
    --------
    >>> h = build_header((2, 3), "uint16", {"OBJECT": "M31"})
    >>> h["NAXIS1"], h["BZERO"], h["OBJECT"]
    (3, 32768, 'M31')
    """
    from astropy.io import fits

    bitpix, bzero = _bitpix(dtype)
    out = fits.Header()
    if extension is None:
        out["SIMPLE"] = True
    else:
        out["XTENSION"] = "IMAGE"
    out["BITPIX"] = bitpix
    out["NAXIS"] = len(shape)
    for i, n in enumerate(reversed(shape), start=1):
        out[f"NAXIS{i}"] = int(n)
    if extension is None:
        out["EXTEND"] = True
    else:
        out["PCOUNT"] = 0
        out["GCOUNT"] = 1
        out["EXTNAME"] = extension
    if bzero:
        out["BZERO"] = bzero
        out["BSCALE"] = 1
    for card in header_from_attrs(header).cards:
        if card.keyword in ("EXTNAME", "XTENSION", "PCOUNT", "GCOUNT"):
            continue
        out.append(card, end=True)
    return out


def _run_axis(shape: tuple[int, ...], region: tuple[slice, ...]) -> int:
    """Leading axes that index the contiguous byte runs of a block of a C-ordered array."""
    k = len(shape)
    while k > 0 and region[k - 1].stop - region[k - 1].start == shape[k - 1]:
        k -= 1
    return max(k - 1, 0)


def _pwrite_all(fd: int, view: memoryview, pos: int) -> None:
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


#: Bytes encoded at a time: small enough to stay in the CPU cache between the
#: conversion to big-endian and the ``pwrite`` that copies it to the page cache.
PIECE_BYTES = 1 << 20
_BUFFERS = threading.local()


def _piece_buffer(nbytes: int) -> np.ndarray:
    """A reusable per-thread byte buffer (faulted in once, not per block)."""
    buf = getattr(_BUFFERS, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _BUFFERS.buf = np.empty(max(nbytes, PIECE_BYTES), np.uint8)
    return buf


def _encode_into(src: np.ndarray, bitpix: int, bzero: int, out: np.ndarray) -> None:
    """Native values ``src`` -> big-endian raw FITS values in ``out`` (same shape, raw dtype)."""
    if bzero and bitpix > 8:
        if src.dtype.byteorder == ">":
            src = src.astype(src.dtype.newbyteorder("="))
        native = out.view(f"uint{bitpix}")
        np.bitwise_xor(src.view(f"uint{bitpix}"), np.array(1 << (bitpix - 1), dtype=f"uint{bitpix}"), out=native)
        native.byteswap(inplace=True)
    elif bzero and bitpix == 8:
        np.bitwise_xor(src.view(np.uint8), np.uint8(0x80), out=out.view(np.uint8))
    else:
        np.copyto(out, src, casting="unsafe")


def _write_run(fd: int, run: np.ndarray, bitpix: int, bzero: int, raw_dtype: np.dtype, pos: int) -> None:
    """Encode and ``pwrite`` one contiguous run of the file, a cache-sized piece at a time."""
    if run.ndim == 0:
        run = run.reshape(1)
    row = max(1, math.prod(run.shape[1:]) * raw_dtype.itemsize)
    per = max(1, PIECE_BYTES // row)
    buf = _piece_buffer(min(per, run.shape[0]) * row)
    for i in range(0, run.shape[0], per):
        piece = run[i : i + per]
        out = buf[: piece.size * raw_dtype.itemsize].view(raw_dtype).reshape(piece.shape)
        _encode_into(piece, bitpix, bzero, out)
        _pwrite_all(fd, memoryview(out).cast("B"), pos)
        pos += out.nbytes


class FitsTarget(StreamTarget):
    """A FITS file: primary HDU for one variable, MEF (one extension per variable) for several.

    Parameters
    ----------
    path : path-like
        Output file.
    header : astropy Header or dict, optional
        Cards for the primary HDU (default: the first variable's attrs for a single
        array; for a Dataset, ``dataset_attrs``).
    dataset_attrs : dict, optional
        Attributes of a Dataset (cards of its empty primary HDU).
    """

    format = "fits"

    def __init__(self, path, *, header=None, dataset_attrs: dict | None = None, mef: bool | None = None):
        super().__init__(path)
        self.header = header
        self.dataset_attrs = dict(dataset_attrs or {})
        self.mef = mef
        self.layout: list[dict] = []
        self.head: bytes = b""

    @staticmethod
    def memory_chunks(shape, dtype):
        from ..core.chunking import auto_chunks

        return auto_chunks(shape, dtype)

    def params(self) -> dict:
        return {"headers": hashlib.sha256(self.head).hexdigest(), "layout": self.layout}

    def check(self, variables: list[Variable]) -> None:
        if self.path.name.lower().endswith((".fz", ".gz", ".bz2", ".zip")):
            raise ParameterError(
                "compressed FITS output (.fz/.gz) is not supported by the streaming writer; "
                "write a .fits file", self.path,
            )
        for v in variables:
            _bitpix(v.dtype)
        self.mef = bool(self.mef) or len(variables) > 1
        self._plan(variables)

    def _plan(self, variables: list[Variable]) -> None:
        """Headers and byte offsets of every HDU (nothing computed, nothing written)."""
        heads: list[bytes] = []
        layout: list[dict] = []
        pos = 0
        if self.mef:
            primary = build_header((), "uint8", self.header if self.header is not None else self.dataset_attrs)
            text = primary.tostring(padding=True).encode("ascii")
            heads.append(text)
            pos += len(text)
        for vi, v in enumerate(variables):
            if self.mef:
                name = (v.name or f"VAR{vi}").upper()
                hdr = build_header(v.shape, v.dtype, v.attrs, extension=name[:68])
            else:
                hdr = build_header(v.shape, v.dtype, self.header if self.header is not None else v.attrs)
            text = hdr.tostring(padding=True).encode("ascii")
            bitpix, bzero = _bitpix(v.dtype)
            nbytes = math.prod(v.shape) * abs(bitpix) // 8
            layout.append({"offset": pos + len(text), "shape": list(v.shape), "bitpix": bitpix,
                           "bzero": bzero, "head_at": pos})
            heads.append(text)
            pos += len(text) + math.ceil(nbytes / BLOCK) * BLOCK
        self._heads = heads
        self.layout = layout
        self.total = pos
        self.head = b"".join(heads)

    def create(self, tmp: Path, variables: list[Variable]) -> None:
        with open(tmp, "wb") as f:
            f.truncate(self.total)  # zero-filled data and padding
            for text, lay in zip(self._heads[-len(self.layout):], self.layout):
                f.seek(lay["head_at"])
                f.write(text)
            if self.mef:
                f.seek(0)
                f.write(self._heads[0])

    def reopen(self, tmp: Path, variables: list[Variable]) -> bool:
        return tmp.is_file() and tmp.stat().st_size == self.total

    def write(self, tmp: Path, var_index: int, region: tuple[slice, ...], block: np.ndarray) -> None:
        lay = self.layout[var_index]
        shape = tuple(lay["shape"])
        bitpix, bzero = lay["bitpix"], lay["bzero"]
        raw_dtype = np.dtype(_RAW[bitpix])
        itemsize = raw_dtype.itemsize
        lead = _run_axis(shape, region)
        fd = os.open(tmp, os.O_WRONLY)
        try:
            for idx in np.ndindex(*block.shape[:lead]):
                start = tuple(s.start + i for s, i in zip(region[:lead], idx)) + tuple(s.start for s in region[lead:])
                flat = int(np.ravel_multi_index(start, shape)) if shape else 0
                _write_run(fd, block[idx] if lead else block, bitpix, bzero, raw_dtype,
                           lay["offset"] + flat * itemsize)
        finally:
            os.close(fd)

def to_fits(
    array: Any,
    path: str | os.PathLike,
    *,
    header=None,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
):
    """Stream an array (or every variable of a Dataset) to a FITS file, block by block.

    A DataArray or array goes to the primary HDU; a Dataset gives one IMAGE
    extension per variable (``EXTNAME`` = variable name). The header (``header``
    or the array's ``attrs``: a FITS header, WCS and scalar attributes) is kept;
    ``uint16``/``uint32``/``int8`` use the BZERO convention. The file appears
    under ``path`` only when complete; an interrupted write (even ``kill -9``)
    resumes when rerun with the same data, to identical bytes.

    Parameters
    ----------
    array : array-like, DataArray or Dataset
        The data; dask-backed data is computed block by block.
    path : path-like
        Output ``.fits`` file.
    header : astropy Header or dict, optional
        Cards for the (primary) header.
    overwrite : bool
        Replace an existing FITS file (never a directory or another file kind).
    compute : bool
        ``False`` returns the lazy store (a ``dask.delayed``).
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str or dask.delayed.Delayed

    Raises
    ------
    UnsupportedDtypeError
        For dtypes FITS cannot hold (complex, bool, uint64...).
    OutputExistsError, ResumeMismatchError, OutputWriteError
        See :func:`lazyastro.core.stream.store`.

    Examples
    --------
    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_fits(da.zeros((512, 512), "f4"), "/tmp/zeros.fits", overwrite=True, progress=False)
    '/tmp/zeros.fits'
    """
    import xarray as xr

    dataset_attrs = dict(array.attrs) if isinstance(array, xr.Dataset) else None
    target = FitsTarget(path, header=header, dataset_attrs=dataset_attrs,
                        mef=True if isinstance(array, xr.Dataset) else None)
    return store(array, target, overwrite=overwrite, compute=compute, scheduler=scheduler,
                 progress=progress, desc=f"write {Path(path).name}")
