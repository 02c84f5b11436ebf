"""One exception hierarchy for lazyastro.

Every error a user can cause (bad path, corrupt file, bad option) is a
:class:`LazyAstroError`. Its message names the file (when there is one) and the
problem in one line, which is what the CLI prints.
"""

from __future__ import annotations

import os

__all__ = [
    "LazyAstroError",
    "InputNotFoundError",
    "FormatError",
    "OutputExistsError",
    "UnsupportedDtypeError",
    "IncompleteOutputError",
    "ParameterError",
]


class LazyAstroError(Exception):
    """Base class of every lazyastro error; ``str(err)`` is ``"PATH: message"``."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputNotFoundError(LazyAstroError, FileNotFoundError):
    """An input path (file, dataset, HDU, group) does not exist."""


class FormatError(LazyAstroError, ValueError):
    """A file exists but its content is not what the reader expects (corrupt, truncated, wrong type)."""


class OutputExistsError(LazyAstroError, FileExistsError):
    """The output exists and ``overwrite`` was not given."""


class UnsupportedDtypeError(LazyAstroError, TypeError):
    """The array dtype cannot be stored in the requested format."""


class IncompleteOutputError(LazyAstroError):
    """An output was found whose writing never finished."""


class ParameterError(LazyAstroError, ValueError):
    """An argument value is invalid (out of range, inconsistent, unknown name)."""
