"""Shared machinery: errors, options, chunk sizing, execution, atomic outputs."""

from .atomic import DoneRecord, atomic_output
from .chunking import auto_chunks
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
from .execution import cluster, compute

__all__ = [
    "DoneRecord", "atomic_output", "auto_chunks", "memory_budget", "parse_bytes", "set_options",
    "FormatError", "IncompleteOutputError", "InputNotFoundError", "LazyAstroError",
    "OutputExistsError", "ParameterError", "UnsupportedDtypeError", "cluster", "compute",
]
