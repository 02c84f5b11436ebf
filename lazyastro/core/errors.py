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
    "reading",
    "read_error",
    "as_lazyastro_error",
    "block_text",
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


def _reduce_error(self):
    # Exceptions pickle as ``cls(*args)``; keep the path (processes / distributed schedulers).
    return (_rebuild_error, (type(self), self.message, self.path, self.__dict__))


def _rebuild_error(cls, message, path, state):
    err = cls.__new__(cls)
    LazyAstroError.__init__(err, message, path)
    err.__dict__.update(state)
    return err


LazyAstroError.__reduce__ = _reduce_error  # type: ignore[method-assign]


def as_lazyastro_error(exc: BaseException) -> LazyAstroError | None:
    """The :class:`LazyAstroError` behind ``exc``, unwrapping scheduler wrappers, or ``None``.

    dask's ``processes`` scheduler re-raises a task's exception as a dynamic subclass
    of ``dask.multiprocessing.RemoteException`` and the original class, whose ``str``
    carries the remote traceback; this returns the original error instead.

    Parameters
    ----------
    exc : BaseException
        An exception that came out of a computation.

    Returns
    -------
    LazyAstroError or None
        The original lazyastro error, or ``None`` when ``exc`` is not one.

    Examples
    --------
    >>> as_lazyastro_error(FormatError("bad", "x.fits")).path
    'x.fits'
    >>> as_lazyastro_error(ValueError("x")) is None
    True
    """
    inner = getattr(exc, "exception", None)  # dask.multiprocessing.RemoteException
    if isinstance(inner, LazyAstroError) and inner is not exc:
        return inner
    return exc if isinstance(exc, LazyAstroError) else None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line
    if not text:
        return type(exc).__name__
    if isinstance(exc, OSError | RuntimeError | IndexError | KeyError | TypeError) and type(exc).__name__ not in text:
        return f"{type(exc).__name__}: {text}"
    return text


def read_error(exc: BaseException, path: str | os.PathLike | None, what: str) -> LazyAstroError:
    """The lazyastro error for an exception raised while reading ``what`` of ``path``.

    A :class:`LazyAstroError` is returned unchanged (it already names its file); a
    vanished file becomes :class:`InputNotFoundError`; anything else (a library's
    ``OSError``, ``RuntimeError``, ``IndexError``, ``KeyError``, a failed reshape, a
    decompression error) becomes ``FormatError("cannot read WHAT: ...", path)`` on one line.

    Parameters
    ----------
    exc : BaseException
        The exception raised by the reading code.
    path : str or os.PathLike or None
        The file being read.
    what : str
        What was being read, e.g. ``"chunk (0, 1)"`` or ``"frames 0:8"``.

    Returns
    -------
    LazyAstroError
        The error to raise (``raise read_error(exc, path, what) from exc``).

    Examples
    --------
    >>> str(read_error(IndexError("index 70 is out of bounds"), "c.npz", "frames 0:4"))
    'c.npz: cannot read frames 0:4: IndexError: index 70 is out of bounds'
    """
    known = as_lazyastro_error(exc)
    if known is not None:
        return known
    if isinstance(exc, FileNotFoundError):
        return InputNotFoundError(f"cannot read {what}: the file disappeared ({_describe(exc)})", path)
    return FormatError(f"cannot read {what}: {_describe(exc)}", path)


class reading:  # noqa: N801  (used like a function: ``with reading(path, what):``)
    """Context manager (and decorator) turning errors raised while reading into lazyastro errors.

    Every reader wraps the body of its dask read task in it, so a corrupt chunk,
    a failed decompression, an out-of-range sparse index or a reshape mismatch
    surfaces as a :class:`FormatError` that names the file and the piece, under
    every scheduler. ``MemoryError``, ``KeyboardInterrupt`` and ``SystemExit``
    pass through unchanged.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file being read.
    what : str
        What is being read (``"block [0:64, 0:32]"``, ``"frames 3:4"``).

    Raises
    ------
    FormatError
        For any non-lazyastro exception raised in the body (see :func:`read_error`).
    InputNotFoundError
        When the file vanished.

    Examples
    --------
    >>> try:
    ...     with reading("a.h5", "chunk (0, 0)"):
    ...         raise OSError("Can't read data (inflate() failed)")
    ... except FormatError as exc:
    ...     print(exc)
    a.h5: cannot read chunk (0, 0): OSError: Can't read data (inflate() failed)
    """

    def __init__(self, path: str | os.PathLike | None, what: str = "data"):
        self.path, self.what = path, what

    def __enter__(self) -> reading:
        return self

    def __exit__(self, typ, exc, tb) -> bool:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, MemoryError):
            return False
        err = read_error(exc, self.path, self.what)
        if err is exc:
            return False
        raise err from exc

    def __call__(self, func):
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with reading(self.path, self.what):
                return func(*args, **kwargs)

        return wrapper


def block_text(slices) -> str:
    """``"block [0:64, 0:32]"`` for a tuple of slices (a piece of an array, for messages).

    Parameters
    ----------
    slices : tuple of slice
        The region of the block.

    Returns
    -------
    str
        A short description of the region.

    Examples
    --------
    >>> block_text((slice(0, 64), slice(32, 64)))
    'block [0:64, 32:64]'
    """
    return "block [" + ", ".join(f"{s.start}:{s.stop}" for s in slices) + "]"
