"""Array backends: numpy on the CPU, CuPy on a GPU.

Kernels call :func:`array_namespace` on their input and use the module it
returns, so the same kernel runs on a numpy or a CuPy block. Writers call
:func:`to_numpy` before touching files.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = ["array_namespace", "to_numpy", "to_device", "has_cupy"]


def has_cupy() -> bool:
    """True if CuPy imports and sees a GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def array_namespace(x: Any) -> ModuleType:
    """``cupy`` for CuPy arrays, else ``numpy``.

    >>> array_namespace(np.zeros(3)).__name__
    'numpy'
    """
    return __import__("cupy") if type(x).__module__.startswith("cupy") else np


def to_numpy(x: Any) -> np.ndarray:
    """A host (numpy) copy of ``x`` if it lives on a GPU, else ``np.asarray(x)``."""
    if type(x).__module__.startswith("cupy"):
        return x.get()
    return np.asarray(x)


def to_device(array: Any, device: str = "gpu"):
    """Move a dask array's blocks to ``"gpu"`` (CuPy) or ``"cpu"`` (numpy), lazily."""
    import dask.array as da

    if device == "cpu":
        return array.map_blocks(to_numpy, dtype=array.dtype, meta=np.empty((0,) * array.ndim, array.dtype))
    if device != "gpu":
        raise ParameterError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if not has_cupy():
        raise ParameterError("device='gpu' needs CuPy and a CUDA GPU (pip install 'lazyastro[gpu]')")
    import cupy

    data = array.data if hasattr(array, "dims") else array
    moved = data.map_blocks(cupy.asarray, dtype=data.dtype, meta=cupy.empty((0,) * data.ndim, data.dtype))
    if hasattr(array, "dims"):
        return array.copy(data=moved)
    return da.Array(moved.dask, moved.name, moved.chunks, meta=moved._meta)
