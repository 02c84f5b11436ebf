"""NumPy ``.npy`` files: lazy memory-mapped reads, streamed atomic writes.

Reading never unpickles: the header is parsed with :mod:`numpy.lib.format`, object arrays are
refused, and every task memory-maps the file by path (``allow_pickle=False``) and copies out
its block. Writing creates the file with :func:`numpy.lib.format.open_memmap` under a
temporary name and fills it batch by batch (any scheduler computes the batches), then renames
it into place. ``.npy`` holds no metadata: attrs are not kept.

>>> import numpy as np, lazyastro
>>> np.save("/tmp/_npy_doc.npy", np.arange(12, dtype="u2").reshape(3, 4))
>>> a = lazyastro.open("/tmp/_npy_doc.npy")
>>> a.dims, a.dtype.name, int(a.sum())
(('y', 'x'), 'uint16', 66)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .registry import Format, Param, Summary

__all__ = ["open_npy", "to_npy", "sniff_npy", "npy_header", "NpyFormat"]

MAGIC = b"\x93NUMPY"
_KINDS = "biufc"


def sniff_npy(path: Path) -> bool:
    """True if ``path`` is a regular file starting with the ``.npy`` magic string."""
    if not Path(path).is_file():
        return False
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def npy_header(path: str | os.PathLike) -> dict[str, Any]:
    """Shape, dtype, order and data offset of a ``.npy`` file (reads the header only).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    dict
        ``shape``, ``dtype``, ``fortran_order``, ``offset``.

    Raises
    ------
    FormatError
        Not a ``.npy`` file, a bad header, object dtype, or a file shorter than its header says.
    UnsupportedDtypeError
        Structured, string or other non-numeric dtypes.
    """
    import numpy as np
    from numpy.lib import format as npformat

    from ..core.errors import FormatError, UnsupportedDtypeError
    from ..core.paths import require_input

    p = require_input(path)
    try:
        with open(p, "rb") as f:
            version = npformat.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = npformat.read_array_header_1_0(f)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = npformat.read_array_header_2_0(f)
            else:  # pragma: no cover - numpy raises first
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except (ValueError, OSError, SyntaxError) as exc:
        raise FormatError(f"not a readable .npy file ({exc})", p) from None
    if dtype.hasobject:
        raise FormatError(
            "holds Python objects (pickled); refusing to load them (pickle can run arbitrary code)", p
        )
    if dtype.kind not in _KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsupportedDtypeError(f"dtype {dtype} is not supported (numeric dtypes only)", p)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = p.stat().st_size
    if offset + nbytes > size:
        raise FormatError(f"truncated .npy file: header says {offset + nbytes} bytes, file has {size}", p)
    return {"shape": tuple(int(n) for n in shape), "dtype": dtype, "fortran_order": bool(fortran),
            "offset": offset}


def _plan(path, chunks, dims):
    """Header, dims and read-chunk shape of ``path`` (shared by open and describe)."""
    from ..core.chunking import normalize_chunks
    from ..core.errors import ParameterError
    from ..core.stream import default_dims

    head = npy_header(path)
    shape = head["shape"]
    dims = tuple(dims) if dims else default_dims(len(shape))
    if len(dims) != len(shape):
        raise ParameterError(f"dims {dims} do not match the {len(shape)}-D data", path)
    return head, dims, normalize_chunks(chunks, shape, head["dtype"], dims)


def _read_task(path: str, block_info=None):
    import numpy as np

    loc = block_info[None]["array-location"]
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    return np.array(arr[tuple(slice(a, b) for a, b in loc)])


def open_npy(
    path: str | os.PathLike,
    *,
    chunks: Any = None,
    dims: tuple[str, ...] | None = None,
):
    """Open a ``.npy`` file lazily as a dask-backed DataArray (memory-mapped block reads).

    Parameters
    ----------
    path : str or path-like
        The file.
    chunks : int, tuple or dict, optional
        Read blocks (default: contiguous blocks sized from the memory budget).
    dims : tuple of str, optional
        Dim names (default ``(y, x)`` / ``(frame, y, x)``).

    Returns
    -------
    xarray.DataArray
        ``attrs`` holds ``source`` and ``format``.

    Raises
    ------
    FormatError, UnsupportedDtypeError, InputNotFoundError, ParameterError

    Examples
    --------
    >>> import numpy as np
    >>> np.save("/tmp/_npy_doc2.npy", np.ones((4, 3, 2), "f4"))
    >>> open_npy("/tmp/_npy_doc2.npy", chunks=(1, 3, 2)).data.numblocks
    (4, 1, 1)
    """
    import dask.array as da
    import numpy as np
    from dask.base import tokenize

    from .common import wrap

    head, dims, chunk_shape = _plan(path, chunks, dims)
    shape, dtype = head["shape"], head["dtype"]
    st = Path(path).stat()
    name = "open-npy-" + tokenize(str(Path(path).resolve()), st.st_mtime_ns, st.st_size, chunk_shape)
    data = da.map_blocks(
        _read_task, os.fspath(path), chunks=da.core.normalize_chunks(chunk_shape, shape),
        dtype=dtype, meta=np.empty((0,) * len(shape), dtype=dtype), name=name,
    )
    return wrap(data, dims, {"source": str(path), "format": "npy"})


def _source(array: Any):
    """``(data, attrs)``: a NumPy or dask array and the attrs of a DataArray."""
    import numpy as np
    import xarray as xr

    from ..core.errors import ParameterError

    if isinstance(array, xr.Dataset):
        raise ParameterError("this format holds one array; pass a DataArray, not a Dataset")
    if isinstance(array, xr.DataArray):
        return array.data, dict(array.attrs)
    if hasattr(array, "dask") or hasattr(array, "__dask_graph__"):
        return array, {}
    return np.asarray(array), {}


def iter_batches(data: Any, *, scheduler=None, progress=None, desc: str = "write"):
    """Yield ``(start, block)`` along axis 0, each batch within the memory budget.

    NumPy input is sliced; dask input is computed batch by batch with
    :func:`lazyastro.compute` (any scheduler).
    """
    import numpy as np

    from ..core.chunking import chunk_bytes_for_budget
    from ..core.config import get_option

    if data.ndim == 0:
        yield 0, np.asarray(data if isinstance(data, np.ndarray) else data.compute())
        return
    n = int(data.shape[0])
    row = max(1, int(np.prod(data.shape[1:], dtype=np.int64)) * data.dtype.itemsize)
    per = max(1, chunk_bytes_for_budget() // row)
    lazy = not isinstance(data, np.ndarray)
    show = get_option("progress") if progress is None else progress
    bar = None
    if lazy and show:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc, unit="row", file=None)
    try:
        for start in range(0, n, per):
            stop = min(n, start + per)
            if lazy:
                from ..core.execution import compute

                (block,) = compute(data[start:stop], scheduler=scheduler, progress=False)
            else:
                block = data[start:stop]
            yield start, np.asarray(block)
            if bar is not None:
                bar.update(stop - start)
    finally:
        if bar is not None:
            bar.close()


def to_npy(
    array: Any,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> str:
    """Stream an array to a ``.npy`` file, batch by batch, atomically.

    Parameters
    ----------
    array : array-like, dask array or xarray.DataArray
        Numeric data (attrs are not kept: ``.npy`` has no metadata).
    path : str or path-like
        Output file; it appears only when complete.
    overwrite : bool
        Replace an existing file.
    scheduler, progress
        How batches are computed (see :func:`lazyastro.compute`).

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    UnsupportedDtypeError, OutputExistsError, ParameterError

    Examples
    --------
    >>> import dask.array as da
    >>> to_npy(da.ones((64, 8), chunks=16), "/tmp/_npy_doc3.npy", overwrite=True, progress=False)
    '/tmp/_npy_doc3.npy'
    """
    import numpy as np
    from numpy.lib import format as npformat

    from ..core.atomic import atomic_output
    from ..core.errors import UnsupportedDtypeError

    data, _attrs = _source(array)
    dtype = np.dtype(data.dtype)
    if dtype.hasobject or dtype.kind not in _KINDS or dtype.fields is not None:
        raise UnsupportedDtypeError(f"cannot write dtype {dtype} to .npy (numeric dtypes only)", path)
    with atomic_output(path, overwrite) as tmp:
        out = npformat.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(data.shape))
        try:
            for start, block in iter_batches(data, scheduler=scheduler, progress=progress, desc="write npy"):
                if out.ndim == 0:
                    out[()] = block
                else:
                    out[start : start + len(block)] = block
            out.flush()
        finally:
            del out
    return os.fspath(path)


class NpyFormat(Format):
    """NumPy ``.npy``: memory-mapped lazy reads (no pickle), streamed atomic writes."""

    name = "npy"
    extensions = (".npy",)
    kind = "image"
    description = "NumPy .npy array (memory-mapped block reads, no pickle; no metadata)"
    magic = (MAGIC,)
    reader = "lazyastro.io.npy:open_npy"
    writer = "lazyastro.io.npy:to_npy"
    open_params = (
        Param("chunks", "shape", "read chunks, e.g. 1,1024,-1 (-1: whole axis; default: from the budget)"),
        Param("dims", "object", "dimension names"),
    )
    write_params = (
        Param("overwrite", "object", "replace an existing output", default=False),
        Param("scheduler", "object", "scheduler for this write"),
        Param("progress", "object", "show a progress bar"),
    )

    def describe(self, path, *, chunks=None, dims=None) -> Summary:
        """From the header only (no dask, no xarray)."""
        import math

        head, dims, chunk_shape = _plan(path, chunks, dims)
        nblocks = math.prod(-(-n // c) for n, c in zip(head["shape"], chunk_shape)) if head["shape"] else 1
        return Summary(dims, head["shape"], head["dtype"], tuple(chunk_shape), nblocks,
                       {"source": str(path), "format": "npy"})
