"""TIFF stacks (one 2-D grayscale page per frame): lazy per-page reads, streamed atomic writes.

Reading uses tifffile's public API only: the file's pages are checked once (same shape and
dtype), then every dask task opens the file by path and reads its frames, through
:func:`tifffile.memmap` when the stack is stored contiguously and uncompressed, otherwise page
by page with ``TiffFile.pages[i].asarray()``. A single page reads as ``(y, x)``, a stack as
``(frame, y, x)``. Writing streams frames in batches (any scheduler computes them) to a
:class:`tifffile.TiffWriter` under a temporary name; attrs travel as JSON in the shaped
metadata of the first page.

>>> import numpy as np, lazyastro
>>> to_tiff(np.arange(24, dtype="u2").reshape(2, 3, 4), "/tmp/_tiff_doc.tif", overwrite=True)
'/tmp/_tiff_doc.tif'
>>> s = lazyastro.open("/tmp/_tiff_doc.tif")
>>> s.dims, s.shape, int(s[1, 2, 3])
(('frame', 'y', 'x'), (2, 3, 4), 23)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .registry import Format, Param, Summary

__all__ = ["open_tiff", "to_tiff", "tiff_layout", "TiffFormat"]

MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_KINDS = "iuf"
_COMPRESSION = {"none": None, "zlib": "zlib"}


def tiff_layout(path: str | os.PathLike) -> dict[str, Any]:
    """Number of pages, page shape, dtype, contiguity and metadata of a TIFF stack.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dict
        ``nframes``, ``shape`` (of one page), ``dtype``, ``contiguous`` (one uncompressed
        series that :func:`tifffile.memmap` can map) and ``attrs``.

    Raises
    ------
    FormatError
        Not a readable TIFF, pages that are not 2-D grayscale, or pages that differ.
    """
    import tifffile

    from ..core.errors import FormatError, UnsupportedDtypeError
    from ..core.paths import require_input

    p = require_input(path)
    try:
        with tifffile.TiffFile(p) as tif:
            pages = tif.pages
            n = len(pages)
            if n == 0:
                raise FormatError("TIFF file has no pages", p)
            first = pages[0]
            shape, dtype = tuple(first.shape), first.dtype
            if len(shape) != 2:
                raise FormatError(
                    f"page 0 has shape {shape}; only stacks of 2-D grayscale pages are supported", p
                )
            for i in range(1, n):
                page = pages[i]
                if tuple(page.shape) != shape or page.dtype != dtype:
                    raise FormatError(
                        f"page {i} is {tuple(page.shape)} {page.dtype}, page 0 is {shape} {dtype}: "
                        "all pages of a stack must match", p,
                    )
            series = tif.series
            contiguous = (
                len(series) == 1 and series[0].dataoffset is not None
                and int(series[0].size) == n * shape[0] * shape[1]
            )
            attrs: dict[str, Any] = {}
            meta = tif.shaped_metadata
            if meta and isinstance(meta[0].get("attrs"), str):
                try:
                    attrs = dict(json.loads(meta[0]["attrs"]))
                except (ValueError, TypeError):
                    attrs = {}
    except FormatError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
        raise FormatError(f"not a readable TIFF file ({exc})", p) from None
    if dtype is None or dtype.kind not in _KINDS:
        raise UnsupportedDtypeError(f"TIFF pages of dtype {dtype} are not supported", p)
    return {"nframes": n, "shape": shape, "dtype": dtype, "contiguous": bool(contiguous), "attrs": attrs}


def _read_frames(path: str, start: int, stop: int, contiguous: bool):
    import numpy as np
    import tifffile

    if contiguous:
        arr = tifffile.memmap(path, mode="r")
        arr = arr.reshape((-1,) + arr.shape[-2:])
        return np.array(arr[start:stop])
    with tifffile.TiffFile(path) as tif:
        return np.stack([tif.pages[i].asarray() for i in range(start, stop)])


def _read_task(path: str, contiguous: bool, two_d: bool, block_info=None):
    from ..core.errors import reading

    loc = block_info[None]["array-location"]
    if two_d:
        loc = [(0, 1), *loc]
    (f0, f1), (y0, y1), (x0, x1) = loc
    with reading(path, f"frames {f0}..{f1 - 1}"):
        block = _read_frames(path, f0, f1, contiguous)[:, y0:y1, x0:x1]
    return block[0] if two_d else block


def _plan(path, chunks, dims):
    """Layout, data shape, dims and read-chunk shape of ``path`` (shared by open and describe)."""
    from ..core.chunking import chunk_bytes_for_budget, normalize_chunks
    from ..core.errors import ParameterError
    from ..core.stream import default_dims

    lay = tiff_layout(path)
    n, (ny, nx), dtype = lay["nframes"], lay["shape"], lay["dtype"]
    shape = (ny, nx) if n == 1 else (n, ny, nx)
    dims = tuple(dims) if dims else default_dims(len(shape))
    if len(dims) != len(shape):
        raise ParameterError(f"dims {dims} do not match the {len(shape)}-D data", path)
    if chunks is None:
        per = max(1, chunk_bytes_for_budget() // max(1, ny * nx * dtype.itemsize))
        chunk_shape = (ny, nx) if n == 1 else (min(n, per), ny, nx)
    else:
        chunk_shape = tuple(normalize_chunks(chunks, shape, dtype, dims))
    return lay, shape, dims, chunk_shape


def open_tiff(
    path: str | os.PathLike,
    *,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
):
    """Open a TIFF stack lazily: each task reads its frames (pages) by path.

    Parameters
    ----------
    path : str or path-like
        The file (``.tif``/``.tiff``; classic or BigTIFF).
    chunks : int, tuple or dict, optional
        Read blocks (default: whole frames, as many per block as the memory budget allows).
    dims : tuple of str, optional
        Dim names (default ``(y, x)`` for one page, ``(frame, y, x)`` for a stack).

    Returns
    -------
    xarray.DataArray
        ``attrs`` holds ``source``, ``format`` and the attrs stored by :func:`to_tiff`.

    Raises
    ------
    FormatError, UnsupportedDtypeError, InputNotFoundError, ParameterError

    Examples
    --------
    >>> import numpy as np
    >>> _ = to_tiff(np.zeros((5, 4, 4), "f4"), "/tmp/_tiff_doc2.tif", overwrite=True)
    >>> open_tiff("/tmp/_tiff_doc2.tif", chunks=(2, 4, 4)).data.chunks[0]
    (2, 2, 1)
    """
    import dask.array as da
    import numpy as np
    from dask.base import tokenize

    from .common import wrap

    lay, shape, dims, chunk_shape = _plan(path, chunks, dims)
    dtype, two_d = lay["dtype"], lay["nframes"] == 1
    st = Path(path).stat()
    name = "open-tiff-" + tokenize(str(Path(path).resolve()), st.st_mtime_ns, st.st_size, chunk_shape)
    data = da.map_blocks(
        _read_task, os.fspath(path), lay["contiguous"], two_d,
        chunks=da.core.normalize_chunks(chunk_shape, shape), dtype=dtype,
        meta=np.empty((0,) * len(shape), dtype=dtype), name=name,
    )
    attrs = {**lay["attrs"], "source": str(path), "format": "tiff"}
    return wrap(data, dims, attrs)


def to_tiff(
    array: Any,
    path: str | os.PathLike,
    *,
    compression: str = "none",
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> str:
    """Stream a 2-D image or a 3-D ``(frame, y, x)`` stack to a TIFF file, one page per frame.

    Parameters
    ----------
    array : array-like, dask array or xarray.DataArray
        Integer or float data.
    path : str or path-like
        Output file; it appears only when complete (BigTIFF above 4 GB).
    compression : {"none", "zlib"}
        Page compression; uncompressed stacks are stored contiguously (memory-mappable).
    overwrite : bool
        Replace an existing file.
    scheduler, progress
        How frame batches are computed (see :func:`lazyastro.compute`).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ParameterError, UnsupportedDtypeError, OutputExistsError

    Examples
    --------
    >>> import dask.array as da
    >>> to_tiff(da.ones((3, 8, 8), "u2"), "/tmp/_tiff_doc3.tif", compression="zlib", overwrite=True)
    '/tmp/_tiff_doc3.tif'
    """
    import numpy as np
    import tifffile

    from ..core.atomic import atomic_output
    from ..core.errors import ParameterError, UnsupportedDtypeError
    from ..core.metadata import json_attrs
    from .npy import _source, iter_batches

    if compression not in _COMPRESSION:
        raise ParameterError(f"unknown TIFF compression {compression!r}; use {', '.join(_COMPRESSION)}")
    data, attrs = _source(array)
    if data.ndim not in (2, 3):
        raise ParameterError(f"TIFF stacks are 2-D images or 3-D (frame, y, x) stacks, got {data.ndim}-D", path)
    dtype = np.dtype(data.dtype)
    if dtype.kind not in _KINDS:
        raise UnsupportedDtypeError(f"cannot write dtype {dtype} to TIFF (integer or float only)", path)
    if data.ndim == 2:
        data = data[None]
    nbytes = int(np.prod(data.shape, dtype=np.int64)) * dtype.itemsize
    meta = {"attrs": json.dumps(json_attrs({k: v for k, v in attrs.items()
                                            if k not in ("source", "format")}))}
    def frames():
        for _start, block in iter_batches(data, scheduler=scheduler, progress=progress, desc="write tiff"):
            yield from np.ascontiguousarray(block, dtype=dtype.newbyteorder("="))

    with atomic_output(path, overwrite) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=nbytes > 2**32 - 2**25) as tw:
            # One shaped series written from an iterator of pages: frames are streamed.
            tw.write(frames(), shape=tuple(data.shape), dtype=dtype.newbyteorder("="),
                     photometric="minisblack", compression=_COMPRESSION[compression], metadata=meta)
    return os.fspath(path)


class TiffFormat(Format):
    """TIFF stacks of 2-D grayscale pages (one frame per page)."""

    name = "tiff"
    extensions = (".tif", ".tiff")
    kind = "series"
    description = "TIFF stack, one 2-D page per frame (lazy per-page reads; memory-mapped when contiguous)"
    magic = MAGIC
    reader = "lazyastro.io.tiff:open_tiff"
    writer = "lazyastro.io.tiff:to_tiff"
    open_params = (
        Param("chunks", "shape", "read chunks, e.g. 1,1024,-1 (-1: whole axis; default: from the budget)"),
        Param("dims", "object", "dimension names"),
    )
    write_params = (
        Param("compression", str, "TIFF page compression", default="none", choices=tuple(_COMPRESSION)),
        Param("overwrite", "object", "replace an existing output", default=False),
        Param("scheduler", "object", "scheduler for this write"),
        Param("progress", "object", "show a progress bar"),
    )

    def describe(self, path, *, chunks=None, dims=None) -> Summary:
        """From the page headers only (no dask, no xarray)."""
        import math

        lay, shape, dims, chunk_shape = _plan(path, chunks, dims)
        nblocks = math.prod(-(-n // c) for n, c in zip(shape, chunk_shape))
        attrs = {**lay["attrs"], "source": str(path), "format": "tiff"}
        return Summary(dims, shape, lay["dtype"], chunk_shape, nblocks, attrs)
