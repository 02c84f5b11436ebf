"""Input paths: refuse what a reader must never open (FIFOs, devices, sockets, loops).

Opening a FIFO for reading blocks until a writer appears, and reading a device
can run forever, so every reader (and every content sniffer) checks its input
with :func:`require_input` (or :func:`is_regular_file`) before opening it.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import FormatError, InputNotFoundError

__all__ = ["require_input", "is_regular_file", "describe_kind"]

_KINDS = ("file", "dir", "any")


def describe_kind(mode: int) -> str:
    """Plain words for the file type in an ``st_mode`` (``"a FIFO (named pipe)"``, ...).

    Parameters
    ----------
    mode : int
        ``os.stat(path).st_mode``.

    Returns
    -------
    str
        ``"a regular file"``, ``"a directory"``, ``"a FIFO (named pipe)"``, ...

    Examples
    --------
    >>> import stat
    >>> describe_kind(stat.S_IFIFO)
    'a FIFO (named pipe)'
    """
    for test, words in (
        (stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def require_input(path: str | os.PathLike, *, kind: str = "file") -> Path:
    """Check that ``path`` is an existing input of ``kind`` and return it as a ``Path``.

    Nothing is opened: the check uses ``os.stat`` only, so a FIFO or a device is
    refused before any reader could block on it. Symbolic links are followed.

    Parameters
    ----------
    path : str or os.PathLike
        The input path.
    kind : {"file", "dir", "any"}
        ``"file"``: a regular file; ``"dir"``: a directory (Zarr stores, frame
        directories); ``"any"``: either.

    Returns
    -------
    pathlib.Path
        ``path`` as a ``Path``.

    Raises
    ------
    InputNotFoundError
        If nothing exists at ``path`` (or a symbolic link points nowhere).
    FormatError
        If ``path`` is a FIFO, device, socket, symbolic-link loop, not readable,
        or a directory where a file is expected (and the reverse).

    Examples
    --------
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> require_input(d, kind="dir").is_dir()
    True
    >>> fifo = os.path.join(d, "pipe")
    >>> os.mkfifo(fifo)
    >>> try:
    ...     require_input(fifo)
    ... except FormatError as exc:
    ...     print(exc.message)
    is a FIFO (named pipe), not a regular file; refusing to read it
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
    p = Path(os.fspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.islink(p):
            raise InputNotFoundError(f"broken symbolic link (points to {os.readlink(p)!r})", p) from None
        raise InputNotFoundError("no such file or directory", p) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FormatError("symbolic link loop", p) from None
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise FormatError("permission denied (cannot look at it)", p) from None
        raise FormatError(f"cannot look at it ({exc.strerror or exc})", p) from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        if kind == "file":
            raise FormatError("is a directory, not a file", p)
    elif stat.S_ISREG(mode):
        if kind == "dir":
            raise FormatError("is a file, not a directory", p)
    else:
        want = {"file": "a regular file", "dir": "a directory", "any": "a regular file or directory"}[kind]
        raise FormatError(f"is {describe_kind(mode)}, not {want}; refusing to read it", p)
    if not os.access(p, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
        raise FormatError("permission denied (not readable)", p)
    return p


def is_regular_file(path: str | os.PathLike) -> bool:
    """True if ``path`` is an existing regular file (following links); never opens it.

    Content sniffers call this first, so a FIFO or a device is never opened.

    Parameters
    ----------
    path : str or os.PathLike
        The path to test.

    Returns
    -------
    bool
        Whether ``path`` is a regular file.

    Examples
    --------
    >>> is_regular_file("/dev/null")
    False
    """
    try:
        return stat.S_ISREG(os.stat(os.fspath(path)).st_mode)
    except (OSError, ValueError):
        return False
