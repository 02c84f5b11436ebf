"""Shared machinery: errors, options, chunk sizing, execution, the streaming writer engine, seeded RNG."""

from .config import memory_budget, parse_bytes, set_options
from .errors import (
    FormatError,
    IncompleteOutputError,
    InputNotFoundError,
    LazyAstroError,
    OutputExistsError,
    ParameterError,
    UnsupportedDtypeError,
)

# Heavier parts (numpy, dask) load on first use, so ``import lazyastro`` stays light.
_LAZY = {"RegionRecord": "stream", "store": "stream", "StreamTarget": "stream",
         "atomic_output": "atomic", "auto_chunks": "chunking", "block_rng": "random",
         "cluster": "execution", "compute": "execution"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "RegionRecord", "store", "StreamTarget", "block_rng", "atomic_output", "auto_chunks", "memory_budget", "parse_bytes", "set_options",
    "FormatError", "IncompleteOutputError", "InputNotFoundError", "LazyAstroError",
    "OutputExistsError", "ParameterError", "UnsupportedDtypeError", "cluster", "compute",
]
