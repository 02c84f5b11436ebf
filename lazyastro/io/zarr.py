"""Zarr v3: the native store. Lazy reading, resumable streaming writes.

Writes go to ``<path>.partial`` and every finished dask block is recorded in
``<path>.partial.done/``; a rerun after an interruption (even ``kill -9``) with
the same inputs writes only the missing blocks, then renames the store into
place. Dask blocks are aligned to whole shards (or whole chunks when there are
no shards), so no two tasks ever write the same zarr object.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from dask.base import tokenize

from ..core.atomic import partial_path
from ..core.chunking import grow_chunks, normalize_chunks
from ..core.errors import (
    FormatError,
    IncompleteOutputError,
    InputNotFoundError,
    ParameterError,
    block_text,
    reading,
)
from ..core.paths import is_regular_file, require_input
from .common import covering_box, default_dims, finish_box, wrap

__all__ = ["open_zarr", "open_zarr_array", "to_zarr", "ZarrTarget", "sniff_zarr", "make_codecs", "direct_layout",
           "DirectZarrReader", "check_chunk_bytes"]


def sniff_zarr(path: Path) -> bool:
    return path.is_dir() and any((path / n).exists() for n in ("zarr.json", ".zarray", ".zgroup"))


def open_zarr_array(path: str | os.PathLike, name: str | None = None):
    """The ``zarr.Array`` at ``path`` (or the one named/only array of a group), with clear errors."""
    path = Path(path)
    if not os.path.lexists(path):
        if partial_path(path).exists():
            raise IncompleteOutputError(
                "only an unfinished write exists (rerun the writer to resume it)", partial_path(path)
            )
        raise InputNotFoundError("no such Zarr store", path)
    if is_regular_file(path):
        raise FormatError("not a Zarr store (this is a file; a Zarr store is a directory)", path)
    require_input(path, kind="dir")  # refuses FIFOs, devices, link loops, unreadable directories
    try:
        node = zarr.open(store=str(path), mode="r")
    except Exception as exc:  # zarr raises several types for non-stores
        raise FormatError(f"not a Zarr store ({' '.join(str(exc).split())})", path) from None
    if isinstance(node, zarr.Group):
        arrays = dict(node.arrays())
        if name is None:
            if len(arrays) != 1:
                raise ParameterError(
                    f"group holds {len(arrays)} arrays {sorted(arrays)}; pass name=...", path
                )
            name = next(iter(arrays))
        if name not in arrays:
            raise InputNotFoundError(f"array {name!r} not in group (has {sorted(arrays)})", path)
        return arrays[name]
    return node


class _ZarrReader:
    """A ``zarr.Array`` seen by ``da.from_array``: reads turn errors into lazyastro errors."""

    def __init__(self, arr, source: str):
        self.arr, self.source = arr, source
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, key):
        what = block_text(key) if isinstance(key, tuple) and all(isinstance(k, slice) for k in key) else f"{key}"
        with reading(self.source, what):
            return np.asarray(self.arr[key])


# --------------------------------------------------------------------------- direct chunk reads


def _key_format(arr) -> tuple[str, str] | None:
    """``(prefix, separator)`` of the chunk keys (``c/0/1``, ``0.1``...), from the metadata's own encoder."""
    probes = [(0,) * arr.ndim, tuple(range(10, 10 + arr.ndim))]
    keys = [arr.metadata.encode_chunk_key(p) for p in probes]
    for prefix in ("c/", "c.", ""):
        for sep in ("/", "."):
            if all(k == prefix + sep.join(map(str, p)) for k, p in zip(keys, probes)):
                return prefix, sep
    return None


def direct_layout(arr, path) -> dict | None:
    """What :class:`DirectZarrReader` needs to read ``arr`` (a ``zarr.Array`` at ``path``), or ``None``.

    Direct reads apply to a local directory store whose chunks are plain
    files: no sharding, no filters, a little-endian ``BytesCodec`` (v3) or C
    order (v2), and a Blosc compressor (or none). Codecs are recognised by
    type (``zarr.codecs.BloscCodec``, ``numcodecs.Blosc``); anything else is
    left to zarr.

    Parameters
    ----------
    arr : zarr.Array
        The opened array.
    path : str or os.PathLike
        Its directory.

    Returns
    -------
    dict or None
        ``root``, ``chunks``, ``prefix``/``sep`` (chunk key format),
        ``compressor`` (``"blosc"`` or ``None``) and ``fill``.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.zarr")
    >>> z = zarr.create_array(path, shape=(4, 4), chunks=(2, 2), dtype="f4", compressors=make_codecs("lz4"))
    >>> direct_layout(z, path)["compressor"]
    'blosc'
    """
    import numcodecs
    from zarr.codecs import BloscCodec, BytesCodec

    try:
        if getattr(arr, "shards", None) is not None or arr.ndim == 0:
            return None
        dtype = np.dtype(arr.dtype)
        if dtype.kind not in "biuf" or not dtype.isnative or tuple(arr.filters or ()):
            return None
        comps = tuple(arr.compressors or ())
        if arr.metadata.zarr_format == 3:
            ser = arr.serializer
            if not isinstance(ser, BytesCodec):
                return None
            endian = getattr(ser.endian, "value", ser.endian)
            if endian not in (None, sys.byteorder):
                return None
            blosc = BloscCodec
        elif arr.metadata.zarr_format == 2:
            if getattr(arr.metadata, "order", "C") != "C":
                return None
            blosc = numcodecs.Blosc
        else:
            return None
        if comps and not (len(comps) == 1 and isinstance(comps[0], blosc)):
            return None
        keys = _key_format(arr)
        root = Path(os.fspath(path))
        if keys is None or not root.is_dir():
            return None
        fill = arr.fill_value
        fill = 0 if fill is None else np.asarray(fill, dtype=dtype).item()
        layout = {"root": str(root), "chunks": tuple(int(c) for c in arr.chunks), "prefix": keys[0],
                  "sep": keys[1], "compressor": "blosc" if comps else None, "fill": fill}
    except (AttributeError, TypeError, ValueError):
        return None
    # Validate the metadata against the first stored chunk before any graph is built.
    first = os.path.join(layout["root"], layout["prefix"] + layout["sep"].join(["0"] * arr.ndim))
    if os.path.isfile(first):
        if layout["compressor"] == "blosc":
            with open(first, "rb") as f:
                raw: bytes | int = f.read(16)
        else:
            raw = os.path.getsize(first)
        check_chunk_bytes(raw, layout, dtype, (0,) * arr.ndim, layout["root"])
    return layout


def check_chunk_bytes(raw: bytes | int, layout: dict, dtype, idx, path) -> None:
    """Refuse a chunk whose size does not match the array's dtype and chunk shape.

    Uncompressed chunks must hold exactly ``prod(chunks) * itemsize`` bytes; Blosc
    chunks must declare that many bytes in their header. A mismatch means the
    metadata's dtype (or chunk shape) does not describe the stored bytes.

    Parameters
    ----------
    raw : bytes or int
        The chunk file's content (for Blosc, its first 16 bytes suffice), or the
        size of an uncompressed chunk file.
    layout : dict
        From :func:`direct_layout`.
    dtype : numpy.dtype
        The array's dtype.
    idx : tuple of int
        The chunk's grid index (for the message).
    path : str
        The store (for the message).

    Raises
    ------
    FormatError
        On a size mismatch or a truncated Blosc header.

    Examples
    --------
    >>> lay = {"chunks": (1, 2, 2), "compressor": None}
    >>> check_chunk_bytes(bytes(8), lay, np.dtype("u2"), (0, 0, 0), "a.zarr")
    >>> check_chunk_bytes(bytes(16), lay, np.dtype("u2"), (0, 0, 0), "a.zarr")
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.FormatError: a.zarr: chunk (0, 0, 0) holds 16 bytes, but (1, 2, 2) values of dtype uint16 need 8 (the metadata does not match the stored bytes)
    """
    need = int(np.prod(layout["chunks"])) * np.dtype(dtype).itemsize
    if layout["compressor"] == "blosc":
        if len(raw) < 16:
            raise FormatError(f"chunk {tuple(idx)}: truncated Blosc data ({len(raw)} bytes)", path)
        have = int.from_bytes(raw[4:8], "little")  # Blosc header: uncompressed size
    else:
        have = raw if isinstance(raw, int) else len(raw)
    if have != need:
        what = "decompresses to" if layout["compressor"] == "blosc" else "holds"
        raise FormatError(
            f"chunk {tuple(idx)} {what} {have} bytes, but {tuple(layout['chunks'])} values of dtype "
            f"{np.dtype(dtype)} need {need} (the metadata does not match the stored bytes)", path,
        )


class DirectZarrReader:
    """Blocks of a simple local Zarr array read chunk file by chunk file (see :func:`direct_layout`).

    Each chunk file is read whole, Blosc decompresses it straight into the
    output block where a block holds whole chunks (releasing the GIL, so
    threads read in parallel), and missing chunks are the fill value. No zarr
    call per read: zarr's generic path costs milliseconds per chunk (an asyncio
    round trip, codec pipeline objects, a copy into the selection). Picklable:
    a shape, a dtype and a layout.

    Parameters
    ----------
    shape, dtype
        Of the array.
    layout : dict
        From :func:`direct_layout`.
    """

    def __init__(self, shape, dtype, layout: dict):
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.layout = dict(layout)
        self.path = self.layout["root"]

    def chunk_path(self, idx) -> str:
        lay = self.layout
        return os.path.join(self.path, lay["prefix"] + lay["sep"].join(str(i) for i in idx))

    def decode(self, idx, out: np.ndarray | None = None) -> np.ndarray | None:
        """Chunk ``idx`` as a full chunk-shaped array (into ``out`` if given); ``None`` if missing."""
        with reading(self.path, f"chunk {tuple(idx)}"):
            try:
                with open(self.chunk_path(idx), "rb") as f:
                    raw = f.read()
            except FileNotFoundError:
                return None
            cshape = self.layout["chunks"]
            check_chunk_bytes(raw, self.layout, self.dtype, idx, self.path)
            if out is None:
                out = np.empty(cshape, self.dtype)
            if self.layout["compressor"] == "blosc":
                from numcodecs import blosc

                blosc.decompress(raw, out)
            else:
                out[...] = np.frombuffer(raw, self.dtype).reshape(cshape)
            return out

    def read_into(self, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Fill ``out`` with the region ``slices`` (steps of 1) of the array."""
        chunks = self.layout["chunks"]
        if out.size == 0:
            return
        ranges = [range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(slices, chunks)]
        for pos in np.ndindex(*(len(r) for r in ranges)):
            idx = tuple(r[i] for r, i in zip(ranges, pos))
            lo = tuple(max(s.start, i * c) for s, i, c in zip(slices, idx, chunks))
            hi = tuple(min(s.stop, (i + 1) * c) for s, i, c in zip(slices, idx, chunks))
            dst = out[tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, slices))]
            whole = all(b - a == c for a, b, c in zip(lo, hi, chunks))
            if whole and dst.flags.c_contiguous:
                if self.decode(idx, dst) is None:
                    dst[...] = self.layout["fill"]
                continue
            chunk = self.decode(idx)
            if chunk is None:
                dst[...] = self.layout["fill"]
            else:
                dst[...] = chunk[tuple(slice(a - i * c, b - i * c) for a, b, i, c in zip(lo, hi, idx, chunks))]

    def __getitem__(self, key) -> np.ndarray:
        box, post = covering_box(key, self.shape)
        out = np.empty(tuple(s.stop - s.start for s in box), self.dtype)
        self.read_into(box, out)
        return finish_box(out, post)


def open_zarr(
    path: str | os.PathLike, name: str | None = None, chunks: Any = None, *, direct: bool | str = "auto"
) -> xr.DataArray:
    """Open a Zarr array (or the one array of a group) lazily as a DataArray.

    Dims come from the store's ``dimension_names`` (v3) or ``_ARRAY_DIMENSIONS``
    attribute; attributes go to ``attrs``.

    Parameters
    ----------
    path : str or os.PathLike
        The store (a directory).
    name : str, optional
        Array name inside a group (default: the only array).
    chunks : optional
        Dask chunks (default: whole storage chunks or shards, grown to the memory budget).
    direct : {"auto", True, False}
        Read chunk files directly (:class:`DirectZarrReader`) where the layout
        allows (:func:`direct_layout`; zarr elsewhere); ``False`` always reads
        through zarr.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InputNotFoundError, FormatError, IncompleteOutputError, ParameterError
        No store, not a store, only an unfinished write, an ambiguous group.

    Examples
    --------
    >>> import tempfile, os, lazyastro
    >>> path = os.path.join(tempfile.mkdtemp(), "o.zarr")
    >>> _ = lazyastro.to_zarr(np.ones((4, 6), "f4"), path, progress=False)
    >>> float(open_zarr(path).sum()), float(open_zarr(path, direct=False).sum())
    (24.0, 24.0)
    """
    if direct not in ("auto", True, False):
        raise ParameterError(f"direct must be 'auto', True or False, got {direct!r}", path)
    path = Path(path)
    arr = open_zarr_array(path, name)
    if 0 in arr.shape:
        raise FormatError(f"array holds no data (shape {arr.shape})", path)
    attrs = dict(arr.attrs)
    dims = getattr(arr.metadata, "dimension_names", None) or attrs.pop("_ARRAY_DIMENSIONS", None)
    if not dims or any(d is None for d in dims):
        dims = default_dims(arr.ndim)
    if chunks is None:
        # Several storage blocks per task: fewer, larger reads (zarr fetches them concurrently).
        chunk_shape = grow_chunks(getattr(arr, "shards", None) or arr.chunks, arr.shape, arr.dtype)
    else:
        chunk_shape = normalize_chunks(chunks, arr.shape, arr.dtype, dims)
    layout = direct_layout(arr, path / arr.path if arr.path else path) if direct else None
    meta = np.empty((0,) * arr.ndim, dtype=arr.dtype)
    if layout is not None:
        reader: Any = DirectZarrReader(arr.shape, arr.dtype, layout)
        token = tokenize(arr, chunk_shape, "direct", _stamp(path))
    else:
        # da.from_zarr's tasks, with read errors (corrupt chunks, codec failures) naming the store
        reader = _ZarrReader(arr, str(path))
        token = tokenize(arr, chunk_shape)
    data = da.from_array(reader, chunks=chunk_shape, name="open-zarr-" + token, lock=False, asarray=False,
                         meta=meta)
    attrs.update({"source": str(path), "format": "zarr"})
    return wrap(data, tuple(dims), attrs)


def _stamp(path: Path):
    for meta in ("zarr.json", ".zarray"):
        try:
            st = os.stat(path / meta)
            return (st.st_mtime_ns, st.st_size)
        except OSError:
            continue
    return None


# The writer lives in ``zarr_write`` (the streaming engine's Zarr target).
from .zarr_write import ZarrTarget, make_codecs, to_zarr  # noqa: E402
