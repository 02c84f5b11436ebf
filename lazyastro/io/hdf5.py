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
from .common import default_dims, wrap

__all__ = ["open_hdf5", "to_hdf5", "sniff_hdf5", "hdf5_compression", "open_h5file"]

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
    slices = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with reading(path, f"dataset {dataset!r} {block_text(slices)}"), open_h5file(path) as f:
        return f[dataset][slices]


def open_hdf5(
    path: str | os.PathLike,
    dataset: str | None = None,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
) -> xr.DataArray:
    """Open an HDF5 dataset lazily; each task opens the file itself (pickles, thread/process safe).

    ``dataset=None`` works when the file holds exactly one dataset. Default
    chunks are whole multiples of the dataset's own HDF5 chunks.

    >>> import lazyastro
    >>> frames = lazyastro.open_hdf5("scan.h5", "imageseries/images")  # doctest: +SKIP
    """
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
    name = "open-hdf5-" + tokenize(str(path.resolve()), stat.st_mtime_ns, stat.st_size, dataset, chunk_shape)
    data = da.map_blocks(
        _read_task, str(path), dataset, chunks=da.core.normalize_chunks(chunk_shape, shape),
        dtype=dtype, meta=np.empty((0,) * len(shape), dtype=dtype), name=name,
    )
    attrs.update({"source": str(path), "format": "hdf5", "dataset": dataset})
    return wrap(data, dims, attrs)


# The writer lives in ``hdf5_write`` (the streaming engine's HDF5 target).
from .hdf5_write import hdf5_compression, to_hdf5  # noqa: E402
