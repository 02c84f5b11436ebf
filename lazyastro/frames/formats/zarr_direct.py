"""Direct chunk reads of simple local Zarr arrays (the series layout lazyastro writes).

``zarr``'s generic read path costs a few milliseconds per chunk (an asyncio round
trip, codec pipeline objects, a copy into the selection); for a stack of images
read chunk by chunk this is several times slower than decompression itself. A
local directory store whose chunks are plain files, with no sharding and a
Blosc (or no) compressor, is read here directly: the chunk file is read, Blosc
decompresses straight into the output block (releasing the GIL, so threads read
in parallel), and missing chunks are filled with the fill value. Anything else
(sharded, filtered, remote, big-endian, ...) is left to zarr: :func:`direct_layout`
returns ``None``.

>>> layout = direct_layout(zarr.open_array("series.zarr"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...core.errors import FormatError, reading
from ..series import Backend

__all__ = ["ZarrDirectBackend", "direct_layout"]


def direct_layout(arr, path) -> dict | None:
    """What :class:`ZarrDirectBackend` needs to read ``arr`` (a ``zarr.Array`` at ``path``), or ``None``."""
    try:
        meta = arr.metadata
        if arr.ndim != 3 or getattr(arr, "shards", None) is not None:
            return None
        dtype = np.dtype(arr.dtype)
        if dtype.kind not in "biuf" or not dtype.isnative:
            return None
        fill = arr.fill_value
        compressor = None
        if meta.zarr_format == 3:
            codecs = list(meta.codecs)
            names = [type(c).__name__ for c in codecs]
            if not codecs or names[0] != "BytesCodec":
                return None
            endian = getattr(codecs[0], "endian", None)
            endian = getattr(endian, "value", endian)
            if endian not in (None, "little") or np.dtype(dtype).byteorder == ">":
                return None
            if names[1:] not in ([], ["BloscCodec"]):
                return None
            compressor = "blosc" if len(codecs) == 2 else None
            enc = meta.chunk_key_encoding
            sep = getattr(enc, "separator", "/")
            sep = getattr(sep, "value", sep)
            prefix = "c" + sep if type(enc).__name__ == "DefaultChunkKeyEncoding" else ""
            if type(enc).__name__ not in ("DefaultChunkKeyEncoding", "V2ChunkKeyEncoding"):
                return None
        elif meta.zarr_format == 2:
            if meta.filters or meta.order != "C":
                return None
            comp = meta.compressor
            if comp is not None and getattr(comp, "codec_id", None) != "blosc":
                return None
            compressor = "blosc" if comp is not None else None
            sep = meta.dimension_separator or "."
            sep = getattr(sep, "value", sep)
            prefix = ""
        else:
            return None
        root = Path(os.fspath(path))
        if not root.is_dir():
            return None
        fill = 0 if fill is None else np.asarray(fill, dtype=dtype).item()
        layout = {"root": str(root), "chunks": tuple(int(c) for c in arr.chunks), "sep": str(sep),
                  "prefix": prefix, "compressor": compressor, "fill": fill}
    except (AttributeError, TypeError, ValueError):
        return None
    # Validate the metadata against the first stored chunk before any graph is built.
    first = os.path.join(layout["root"], layout["prefix"] + layout["sep"].join(["0"] * arr.ndim))
    if os.path.isfile(first):
        if compressor == "blosc":
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


class ZarrDirectBackend(Backend):
    """Frames of a simple local Zarr array read chunk file by chunk file (see module doc)."""

    def __init__(self, shape, dtype, layout: dict):
        self.path = layout["root"]
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.layout = dict(layout)

    def token(self) -> str:
        from dask.base import tokenize

        try:
            st = os.stat(os.path.join(self.path, "zarr.json" if os.path.exists(
                os.path.join(self.path, "zarr.json")) else ".zarray"))
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        return tokenize(type(self).__name__, self.path, stamp, self.shape, str(self.dtype), self.layout)

    def _chunk_path(self, idx) -> str:
        lay = self.layout
        return os.path.join(self.path, lay["prefix"] + lay["sep"].join(str(i) for i in idx))

    def _decode(self, idx, out: np.ndarray | None = None) -> np.ndarray | None:
        """Chunk ``idx`` as a full chunk-shaped array (into ``out`` if given); ``None`` if missing."""
        with reading(self.path, f"chunk {tuple(idx)}"):
            try:
                with open(self._chunk_path(idx), "rb") as f:
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

    def read_region(self, start, stop, rows, cols):
        nf, ny, nx = self.shape
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            return self.read_region(start, stop, slice(None), slice(None))[:, rows, cols]
        y0, y1, ys = rows.indices(ny)
        x0, x1, xs = cols.indices(nx)
        if ys != 1 or xs != 1:
            return self.read_region(start, stop, slice(None), slice(None))[:, rows, cols]
        y1, x1 = max(y0, y1), max(x0, x1)
        cf, cy, cx = self.layout["chunks"]
        out = np.empty((stop - start, y1 - y0, x1 - x0), self.dtype)
        if out.size == 0:
            return out
        for i in range(start // cf, (stop - 1) // cf + 1):
            for j in range(y0 // cy, (y1 - 1) // cy + 1):
                for k in range(x0 // cx, (x1 - 1) // cx + 1):
                    # overlap of chunk (i, j, k) with the request, in array coordinates
                    a0, a1 = max(start, i * cf), min(stop, (i + 1) * cf)
                    b0, b1 = max(y0, j * cy), min(y1, (j + 1) * cy)
                    c0, c1 = max(x0, k * cx), min(x1, (k + 1) * cx)
                    dst = out[a0 - start : a1 - start, b0 - y0 : b1 - y0, c0 - x0 : c1 - x0]
                    whole = (a1 - a0, b1 - b0, c1 - c0) == (cf, cy, cx)
                    if whole and dst.flags.c_contiguous:
                        if self._decode((i, j, k), dst) is None:
                            dst[...] = self.layout["fill"]
                        continue
                    chunk = self._decode((i, j, k))
                    if chunk is None:
                        dst[...] = self.layout["fill"]
                    else:
                        dst[...] = chunk[a0 - i * cf : a1 - i * cf, b0 - j * cy : b1 - j * cy,
                                         c0 - k * cx : c1 - k * cx]
        return out

    def read(self, start, stop):
        return self.read_region(start, stop, slice(None), slice(None))
