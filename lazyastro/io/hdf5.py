"""HDF5: lazy per-task reads (graphs pickle), streaming single-process writes.

h5py objects do not pickle and HDF5 is not safe to write from several
processes, so reading tasks open the file by path, and writing computes blocks
with any scheduler while one process writes them in turn.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import dask.array as da
import hdf5plugin  # noqa: F401  (registers Blosc/LZ4/Zstd HDF5 filters for reading and writing)
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.chunking import chunk_bytes_for_budget, normalize_chunks
from ..core.errors import (
    FormatError,
    InputNotFoundError,
    ParameterError,
    UnsupportedDtypeError,
    block_text,
    reading,
)
from ..core.metadata import json_attrs
from ..core.paths import require_input
from .common import covering_box, default_dims, finish_box, wrap

__all__ = ["open_hdf5", "to_hdf5", "sniff_hdf5", "hdf5_compression", "open_h5file", "storage_layout",
           "DirectHDF5Reader"]

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def sniff_hdf5(path: Path) -> bool:
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        return f.read(8) == HDF5_SIGNATURE


def open_h5file(path: str | os.PathLike, mode: str = "r"):
    """``h5py.File`` with lazyastro errors (missing file, not HDF5); Blosc/LZ4/Zstd filters registered."""
    import h5py

    if mode == "r":
        require_input(path, kind="file")  # never open a FIFO or device (h5py would block on it)
    try:
        return h5py.File(path, mode)
    except FileNotFoundError:
        raise InputNotFoundError("no such file", path) from None
    except OSError as exc:
        raise FormatError(f"not a readable HDF5 file ({exc})", path) from None


def _list_datasets(f) -> list[str]:
    import h5py

    names: list[str] = []
    f.visititems(lambda n, obj: names.append(n) if isinstance(obj, h5py.Dataset) else None)
    return names


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_attrs(ds, attrs: dict, dims) -> None:
    """Scalars as HDF5 attributes; nested values as JSON strings listed in ``_lazyastro_json``."""
    encoded = []
    for key, value in json_attrs(attrs).items():
        if isinstance(value, dict | list):
            ds.attrs[key] = json.dumps(value)
            encoded.append(key)
        elif value is not None:
            ds.attrs[key] = value
    ds.attrs["_ARRAY_DIMENSIONS"] = [str(d) for d in dims]
    if encoded:
        ds.attrs["_lazyastro_json"] = encoded


def _read_attrs(ds) -> dict:
    attrs = {k: _plain(v) for k, v in ds.attrs.items()}
    for key in attrs.pop("_lazyastro_json", []) or []:
        try:
            attrs[key] = json.loads(attrs[key])
        except (KeyError, TypeError, ValueError):
            pass
    return attrs


def _read_task(path: str, dataset: str, block_info=None) -> np.ndarray:
    from ..core.filecache import cached_h5

    slices = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with reading(path, f"dataset {dataset!r} {block_text(slices)}"):
        require_input(path, kind="file")
        with cached_h5(path) as f:
            return f[dataset][slices]


# --------------------------------------------------------------------------- direct reads

#: HDF5 filter id of the Blosc (1) filter (hdf5plugin's ``BLOSC_ID``).
BLOSC_FILTER = 32001


def storage_layout(ds) -> dict | None:
    """Where the bytes of an HDF5 dataset are, for direct positioned reads; ``None`` if not simple.

    Direct reads apply to native-endian numeric datasets stored contiguously,
    or chunked with every chunk allocated and either no filter or the Blosc
    filter alone. Anything else (other filters, external or virtual storage,
    compact layout, unallocated chunks, big-endian data...) is left to h5py.

    Parameters
    ----------
    ds : h5py.Dataset
        An open dataset.

    Returns
    -------
    dict or None
        ``{"kind": "contiguous", "offset": int}`` or ``{"kind": "chunked",
        "chunks": tuple, "offsets": ndarray, "sizes": ndarray, "raw": ndarray,
        "codec": None or "blosc"}`` (arrays over the chunk grid; ``raw``: chunks
        stored without their filter).

    Examples
    --------
    >>> import h5py, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "l.h5")
    >>> with h5py.File(path, "w") as f:
    ...     storage_layout(f.create_dataset("a", data=np.zeros((4, 4), "f4")))["kind"]
    'contiguous'
    """
    import h5py

    dtype = ds.dtype
    if ds.shape is None or not ds.shape or ds.size == 0 or dtype.kind not in "biuf" or not dtype.isnative:
        return None
    try:
        if ds.is_virtual:
            return None
        dcpl = ds.id.get_create_plist()
        if dcpl.get_external_count():
            return None
        kind = dcpl.get_layout()
        filters = [dcpl.get_filter(i)[0] for i in range(dcpl.get_nfilters())]
        if kind == h5py.h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            return None if offset is None or filters else {"kind": "contiguous", "offset": int(offset)}
        if kind != h5py.h5d.CHUNKED or filters not in ([], [BLOSC_FILTER]):
            return None
        chunks = tuple(int(c) for c in ds.chunks)
        grid = tuple(-(-n // c) for n, c in zip(ds.shape, chunks))
        offsets = np.full(grid, -1, dtype=np.int64)
        sizes = np.zeros(grid, dtype=np.int64)
        raw = np.zeros(grid, dtype=bool)

        def visit(info):
            idx = tuple(o // c for o, c in zip(info.chunk_offset, chunks))
            offsets[idx], sizes[idx] = info.byte_offset, info.size
            raw[idx] = bool(info.filter_mask)

        ds.id.chunk_iter(visit)
    except (AttributeError, TypeError, RuntimeError, ValueError, KeyError):  # old h5py/HDF5: no chunk_iter
        return None
    if (offsets < 0).any():
        return None  # unallocated chunks read as the fill value: leave them to h5py
    return {"kind": "chunked", "chunks": chunks, "offsets": offsets, "sizes": sizes, "raw": raw,
            "codec": "blosc" if filters else None}


def _check_blosc(raw: bytes, need: int, where: str, path: str) -> None:
    if len(raw) < 16:
        raise FormatError(f"{where}: truncated Blosc data ({len(raw)} bytes)", path)
    have = int.from_bytes(raw[4:8], "little")  # Blosc header: uncompressed size
    if have != need:
        raise FormatError(f"{where} decompresses to {have} bytes, {need} expected (corrupt data)", path)


class DirectHDF5Reader:
    """Blocks of a dataset read by byte offset (``os.pread`` on a cached descriptor), no HDF5 call.

    Reads run in parallel in threads (h5py serialises its calls with a global
    lock) and Blosc chunks decompress outside the GIL. Picklable: a path and a
    layout from :func:`storage_layout`.

    Parameters
    ----------
    path : str
        The HDF5 file.
    dataset : str
        Dataset name (for messages).
    shape, dtype
        Of the dataset.
    layout : dict
        From :func:`storage_layout`.
    """

    def __init__(self, path: str, dataset: str, shape, dtype, layout: dict):
        self.path, self.dataset = str(path), dataset
        self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.ndim = len(self.shape)
        self.layout = layout

    def __getitem__(self, key) -> np.ndarray:
        from ..core.filecache import cached_fd

        box, post = covering_box(key, self.shape)
        out = np.empty(tuple(s.stop - s.start for s in box), self.dtype)
        if out.size:
            with reading(self.path, f"dataset {self.dataset!r} {block_text(box)}"), cached_fd(self.path) as fd:
                self.read_into(fd, box, out)
        return finish_box(out, post)

    def read_into(self, fd: int, slices: tuple[slice, ...], out: np.ndarray) -> None:
        """Read ``slices`` (steps of 1) of the dataset into ``out`` through descriptor ``fd``."""
        from ..core.filecache import read_box, scratch

        lay = self.layout
        if lay["kind"] == "contiguous":
            read_box(fd, lay["offset"], self.shape, slices, out, self.path)
            return
        chunks = lay["chunks"]
        csize = math.prod(chunks) * self.dtype.itemsize
        ranges = [range(s.start // c, (s.stop - 1) // c + 1) for s, c in zip(slices, chunks)]
        for idx in np.ndindex(*(len(r) for r in ranges)):
            cidx = tuple(r[i] for r, i in zip(ranges, idx))
            lo = tuple(max(s.start, i * c) for s, i, c in zip(slices, cidx, chunks))
            hi = tuple(min(s.stop, (i + 1) * c) for s, i, c in zip(slices, cidx, chunks))
            inner = tuple(slice(a - i * c, b - i * c) for a, b, i, c in zip(lo, hi, cidx, chunks))
            dst = out[tuple(slice(a - s.start, b - s.start) for a, b, s in zip(lo, hi, slices))]
            offset = int(lay["offsets"][cidx])
            if lay["codec"] is None or lay["raw"][cidx]:
                read_box(fd, offset, chunks, inner, dst, self.path)
                continue
            from numcodecs import blosc

            comp = scratch(int(lay["sizes"][cidx]))[: int(lay["sizes"][cidx])]
            from ..core.filecache import pread_into

            pread_into(fd, comp, offset, self.path)
            _check_blosc(comp[:16].tobytes(), csize, f"chunk {cidx}", self.path)
            whole = all(b - a == c for a, b, c in zip(lo, hi, chunks))
            if whole and dst.flags.c_contiguous:
                blosc.decompress(comp, dst)
            else:
                full = np.empty(chunks, self.dtype)
                blosc.decompress(comp, full)
                dst[...] = full[inner]


def open_hdf5(
    path: str | os.PathLike,
    dataset: str | None = None,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
    *,
    direct: bool | str = "auto",
) -> xr.DataArray:
    """Open an HDF5 dataset lazily; each task opens the file itself (pickles, thread/process safe).

    ``dataset=None`` works when the file holds exactly one dataset. Default
    chunks are whole multiples of the dataset's own HDF5 chunks. File handles
    come from one per-process cache (:mod:`lazyastro.core.filecache`).

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.
    dataset : str, optional
        Dataset path inside the file (default: the only one).
    chunks : optional
        Dask chunks (default: whole HDF5 chunks, grown to the memory budget).
    dims : tuple of str, optional
        Dimension names (default: stored ``_ARRAY_DIMENSIONS`` or conventional names).
    direct : {"auto", True, False}
        Read by byte offset (``pread`` on a cached descriptor; Blosc chunks
        decompressed in parallel threads) instead of through h5py.
        ``"auto"``/``True`` use it where :func:`storage_layout` allows (and
        fall back to h5py elsewhere); ``False`` always uses h5py.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InputNotFoundError, FormatError, ParameterError, UnsupportedDtypeError
        Missing file or dataset, not HDF5, several datasets without ``dataset``,
        non-numeric data.

    Examples
    --------
    >>> import h5py, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "d.h5")
    >>> with h5py.File(path, "w") as f:
    ...     _ = f.create_dataset("img", data=np.arange(12.0).reshape(3, 4))
    >>> float(open_hdf5(path, "img").sum()), float(open_hdf5(path, "img", direct=False).sum())
    (66.0, 66.0)
    """
    if direct not in ("auto", True, False):
        raise ParameterError(f"direct must be 'auto', True or False, got {direct!r}", path)
    path = require_input(path, kind="file")
    with open_h5file(path) as f, reading(path, "HDF5 metadata"):
        names = _list_datasets(f)
        if dataset is None:
            if len(names) != 1:
                raise ParameterError(f"file holds {len(names)} datasets {names[:10]}; pass dataset=...", path)
            dataset = names[0]
        dataset = dataset.strip("/")
        if dataset not in names:
            raise InputNotFoundError(f"dataset {dataset!r} not found (datasets: {names[:10]})", path)
        ds = f[dataset]
        shape, dtype, h5chunks = ds.shape, ds.dtype, ds.chunks
        attrs = _read_attrs(ds)
        layout = storage_layout(ds) if direct else None
    if dtype.kind not in "biuf":
        raise UnsupportedDtypeError(f"dataset {dataset!r} has dtype {dtype}, not numeric", path)
    if shape is None or 0 in shape:
        raise FormatError(f"dataset {dataset!r} holds no data (shape {shape})", path)
    stored_dims = attrs.pop("_ARRAY_DIMENSIONS", None)
    dims = tuple(dims or stored_dims or default_dims(len(shape)))
    if chunks is None and h5chunks:
        target = chunk_bytes_for_budget() // dtype.itemsize
        per = math.prod(h5chunks)
        mult = [1] * len(shape)
        # Grow along the leading axis first, in whole HDF5 chunks.
        for ax in range(len(shape)):
            room = max(1, target // (per * math.prod(mult)))
            mult[ax] = max(1, min(room, math.ceil(shape[ax] / h5chunks[ax])))
            if mult[ax] * h5chunks[ax] < shape[ax]:
                break
        chunk_shape = tuple(min(m * c, s) for m, c, s in zip(mult, h5chunks, shape))
    else:
        chunk_shape = normalize_chunks(chunks, shape, dtype, dims)
    stat = path.stat()
    name = "open-hdf5-" + tokenize(str(path.resolve()), stat.st_mtime_ns, stat.st_size, dataset, chunk_shape,
                                   layout is not None)
    meta = np.empty((0,) * len(shape), dtype=dtype)
    if layout is not None:
        reader = DirectHDF5Reader(str(path), dataset, shape, dtype, layout)
        data = da.from_array(reader, chunks=chunk_shape, name=name, lock=False, asarray=False, meta=meta)
    else:
        data = da.map_blocks(
            _read_task, str(path), dataset, chunks=da.core.normalize_chunks(chunk_shape, shape),
            dtype=dtype, meta=meta, name=name,
        )
    attrs.update({"source": str(path), "format": "hdf5", "dataset": dataset})
    return wrap(data, dims, attrs)


# The writer lives in ``hdf5_write`` (the streaming engine's HDF5 target).
from .hdf5_write import hdf5_compression, to_hdf5  # noqa: E402
