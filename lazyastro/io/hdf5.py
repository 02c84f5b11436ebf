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

from ..core.atomic import atomic_output
from ..core.backend import to_numpy
from ..core.chunking import chunk_bytes_for_budget, normalize_chunks
from ..core.config import memory_budget
from ..core.errors import FormatError, InputNotFoundError, ParameterError, UnsupportedDtypeError
from ..core.metadata import json_attrs
from .common import as_dask, block_slices, default_dims, wrap

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
    loc = block_info[None]["array-location"]
    with open_h5file(path) as f:
        return f[dataset][tuple(slice(a, b) for a, b in loc)]


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
    path = Path(path)
    with open_h5file(path) as f:
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


def hdf5_compression(compression: str | None, level: int | None = None) -> dict[str, Any]:
    """h5py dataset keywords for ``gzip``, ``lzf``, ``blosc-lz4``, ``blosc-zstd`` or ``None``."""
    if compression in (None, "none"):
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4 if level is None else level, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    if compression in ("blosc-lz4", "blosc-zstd", "blosc"):
        cname = "zstd" if compression == "blosc-zstd" else "lz4"
        return dict(hdf5plugin.Blosc(cname=cname, clevel=5 if level is None else level, shuffle=hdf5plugin.Blosc.SHUFFLE))
    raise ParameterError(f"unknown HDF5 compression {compression!r}; use gzip, lzf, blosc-lz4, blosc-zstd or none")


def to_hdf5(
    array: Any,
    path: str | os.PathLike,
    dataset: str = "data",
    compression: str | None = "blosc-lz4",
    level: int | None = None,
    chunks: Any = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> str:
    """Stream an array into one HDF5 dataset of a new file, block by block, atomically.

    Blocks are computed in batches (with any scheduler) that fit the memory
    budget and written by this process; the file is renamed into place at the end.

    >>> import dask.array as da, lazyastro
    >>> lazyastro.to_hdf5(da.ones((64, 64)), "/tmp/ones.h5", "img", overwrite=True, progress=False)
    '/tmp/ones.h5'
    """
    import h5py

    from ..core.execution import compute as run

    data, dims, attrs = as_dask(array)
    if data.dtype.kind not in "biuf":
        raise UnsupportedDtypeError(f"dtype {data.dtype} cannot be written to HDF5 by lazyastro", path)
    h5chunks = normalize_chunks(chunks, data.shape, data.dtype, dims) if chunks is not None else tuple(
        min(c[0], 2**31) for c in data.chunks
    )
    # HDF5 chunks must stay below 4 GiB; keep them modest for compression speed.
    while math.prod(h5chunks) * data.dtype.itemsize > 64 * 2**20 and max(h5chunks) > 1:
        ax = int(np.argmax(h5chunks))
        h5chunks = h5chunks[:ax] + (max(1, h5chunks[ax] // 2),) + h5chunks[ax + 1 :]
    opts = hdf5_compression(compression, level)
    max_block = max(math.prod(s.stop - s.start for s in sl) for _, sl in block_slices(data.chunks)) if data.size else 1
    batch = max(1, min(32, memory_budget() // (3 * max_block * data.dtype.itemsize)))
    blocks = list(zip(data.to_delayed().ravel(), block_slices(data.chunks)))
    with atomic_output(path, overwrite) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset(dataset, shape=data.shape, dtype=data.dtype,
                                  chunks=h5chunks if data.size else None, **opts)
            _write_attrs(ds, attrs, dims)
            from tqdm.auto import tqdm

            from ..core.execution import _want_progress, scheduler_session

            with tqdm(total=len(blocks), desc=f"write {Path(path).name}", unit="block",
                      disable=not _want_progress(progress)) as bar, scheduler_session(scheduler) as sched:
                for start in range(0, len(blocks), batch):
                    part = blocks[start : start + batch]
                    values = run(*[b for b, _ in part], scheduler=sched, progress=False)
                    for value, (_blk, (_idx, slices)) in zip(values, part):
                        ds[slices] = to_numpy(value)
                    bar.update(len(part))
            f.flush()
    return str(path)
