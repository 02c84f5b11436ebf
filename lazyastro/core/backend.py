"""Array backends: numpy on the CPU, CuPy on a GPU.

Kernels call :func:`array_namespace` on their input and use the module it
returns, so the same kernel runs on a numpy or a CuPy block. Graph code builds
its ``meta`` with :func:`meta_like` from the input's ``_meta``, so a CuPy-backed
dask array stays CuPy end to end. Writers call :func:`to_numpy` before touching
files.

Dispatch is on the type of the block (for a dask array, of its ``_meta``), as in
dask-image: no CuPy import happens unless a CuPy array is actually seen.

>>> import dask.array as da
>>> x = da.zeros((4, 4), chunks=2)
>>> array_namespace(x).__name__, meta_like(x, ndim=1, dtype="f4").shape
('numpy', (0,))
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["array_namespace", "meta_like", "to_numpy", "to_device", "has_cupy", "is_cupy"]


def has_cupy() -> bool:
    """True if CuPy imports and sees a GPU.

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(has_cupy(), bool)
    True
    """
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _block_of(x: Any) -> Any:
    """The in-memory block type carrier of ``x``: a DataArray's data, a dask array's ``_meta``."""
    if hasattr(x, "dims") and hasattr(x, "variable"):  # xarray.DataArray / Variable
        x = x.data
    if hasattr(x, "_meta") and hasattr(x, "dask"):  # dask array
        x = x._meta
    return x


def is_cupy(x: Any) -> bool:
    """True if ``x`` is a CuPy array (or a dask array / DataArray with CuPy blocks).

    Examples
    --------
    >>> is_cupy(np.zeros(2))
    False
    """
    return type(_block_of(x)).__module__.partition(".")[0] in ("cupy", "cupyx")


def array_namespace(*arrays: Any) -> ModuleType:
    """The array module of ``arrays``: ``cupy`` if any is a CuPy array, else ``numpy``.

    Dask arrays and xarray objects count by their blocks (``_meta``); scalars,
    lists and ``None`` count as numpy.

    Parameters
    ----------
    *arrays
        Arrays (numpy, CuPy, dask, xarray) or scalars.

    Returns
    -------
    module
        ``numpy`` or ``cupy``.

    Examples
    --------
    >>> array_namespace(np.zeros(3)).__name__
    'numpy'
    >>> array_namespace(None, 1.0, [1, 2]).__name__
    'numpy'
    """
    for x in arrays:
        if is_cupy(x):
            return sys.modules.get("cupy") or __import__("cupy")
    return np


def meta_like(x: Any, *, ndim: int | None = None, dtype=None) -> Any:
    """An empty block of the array type of ``x`` (numpy or CuPy), for dask's ``meta=``.

    Parameters
    ----------
    x
        A dask array (its ``_meta`` decides the type), a DataArray or a block.
    ndim : int, optional
        Dimensions of the meta (default: those of ``x``).
    dtype : dtype, optional
        Data type of the meta (default: that of ``x``).

    Returns
    -------
    array
        ``xp.empty((0,) * ndim, dtype)``.

    Examples
    --------
    >>> m = meta_like(np.ones((2, 3), "u2"), ndim=3)
    >>> type(m).__name__, m.shape, m.dtype.name
    ('ndarray', (0, 0, 0), 'uint16')
    """
    xp = array_namespace(x)
    if ndim is None:
        ndim = x.ndim if hasattr(x, "ndim") else np.ndim(x)
    dtype = np.dtype(dtype) if dtype is not None else np.dtype(getattr(x, "dtype", np.float64))
    return xp.empty((0,) * int(ndim), dtype=dtype)


def to_numpy(x: Any) -> np.ndarray:
    """A host (numpy) copy of ``x`` if it lives on a GPU, else ``np.asarray(x)``.

    Examples
    --------
    >>> to_numpy([1, 2]).tolist()
    [1, 2]
    """
    if is_cupy(x) and hasattr(x, "get"):
        return x.get()
    return np.asarray(x)


def to_device(array: Any, device: str = "gpu"):
    """Move the blocks of a dask array or DataArray to ``"gpu"`` (CuPy) or ``"cpu"`` (numpy), lazily.

    Parameters
    ----------
    array : dask.array.Array or xarray.DataArray
        Lazy array to move.
    device : {"gpu", "cpu"}
        Where the blocks should live.

    Returns
    -------
    dask.array.Array or xarray.DataArray
        Same type as ``array``, with ``_meta`` of the new array type.

    Raises
    ------
    ParameterError
        If ``device`` is unknown, or ``"gpu"`` without CuPy and a GPU.

    Examples
    --------
    >>> import dask.array as da
    >>> to_device(da.arange(4, chunks=2), "cpu").compute().tolist()
    [0, 1, 2, 3]
    """
    import dask.array as da

    if device not in ("cpu", "gpu"):
        raise ParameterError(f"device must be 'cpu' or 'gpu', got {device!r}")
    data = array.data if hasattr(array, "dims") else array
    if not isinstance(data, da.Array):
        data = da.asarray(data)
    if device == "cpu":
        moved = data.map_blocks(to_numpy, dtype=data.dtype, meta=np.empty((0,) * data.ndim, data.dtype))
    else:
        if not has_cupy():
            raise ParameterError("device='gpu' needs CuPy and a CUDA GPU (pip install 'lazyastro[gpu]')")
        import cupy

        moved = data.map_blocks(cupy.asarray, dtype=data.dtype, meta=cupy.empty((0,) * data.ndim, data.dtype))
    if hasattr(array, "dims"):
        return array.copy(data=moved)
    return moved
