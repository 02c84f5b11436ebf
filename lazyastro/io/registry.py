"""A registry of format adapters behind one :func:`open`.

Each format registers a reader (and optionally a writer) under a name, with the
file extensions it claims and an optional ``sniff(path) -> bool`` that looks at
content. Task subpackages (``frames``, ``skipper``, ...) register more formats.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import FormatError, InputNotFoundError, ParameterError

__all__ = ["Format", "register_format", "get_format", "formats", "detect_format", "open", "write"]


@dataclass(eq=False)
class Format:
    name: str
    reader: Callable[..., Any] | None = None
    writer: Callable[..., Any] | None = None
    extensions: tuple[str, ...] = ()
    sniff: Callable[[Path], bool] | None = None
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)
    priority: int = 0


_FORMATS: dict[str, Format] = {}


def register_format(
    name: str,
    reader: Callable[..., Any] | None = None,
    writer: Callable[..., Any] | None = None,
    extensions: tuple[str, ...] = (),
    sniff: Callable[[Path], bool] | None = None,
    description: str = "",
    aliases: tuple[str, ...] = (),
    priority: int = 0,
) -> Format:
    """Register (or replace) a format adapter. Extensions are lower-case, with the dot.

    Sniffers run in order of decreasing ``priority``: give specific layouts (a
    legacy HDF5 layout, say) a higher priority than the generic container format.
    """
    fmt = Format(
        name, reader, writer, tuple(e.lower() for e in extensions), sniff, description, aliases, priority
    )
    _FORMATS[name] = fmt
    for alias in aliases:
        _FORMATS[alias] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """All registered formats by name (aliases included)."""
    return dict(_FORMATS)


def get_format(name: str) -> Format:
    try:
        return _FORMATS[name]
    except KeyError:
        names = ", ".join(sorted({f.name for f in _FORMATS.values()}))
        raise ParameterError(f"unknown format {name!r}; known formats: {names}") from None


def _by_extension(path: Path) -> Format | None:
    name = path.name.lower().rstrip("/")
    best = None
    for fmt in dict.fromkeys(_FORMATS.values()):
        for ext in fmt.extensions:
            if name.endswith(ext) and (best is None or len(ext) > best[0]):
                best = (len(ext), fmt)
    return best[1] if best else None


def detect_format(path: str | os.PathLike, for_writing: bool = False) -> str:
    """Name of the format of ``path``, from its content (sniffers) or its extension."""
    p = Path(path)
    if not for_writing:
        if not p.exists():
            raise InputNotFoundError("no such file or directory", p)
        ordered = sorted(dict.fromkeys(_FORMATS.values()), key=lambda f: -f.priority)
        for fmt in ordered:
            if fmt.sniff is not None and fmt.reader is not None:
                try:
                    if fmt.sniff(p):
                        return fmt.name
                except OSError:
                    continue
    fmt = _by_extension(p)
    if fmt is None:
        raise FormatError("cannot tell the format from the content or extension; pass format=...", p)
    return fmt.name


def open(path: str | os.PathLike, format: str | None = None, **kwargs: Any):  # noqa: A001
    """Open any supported dataset lazily and return an xarray object backed by dask.

    >>> import lazyastro
    >>> arr = lazyastro.open("image.fits")  # doctest: +SKIP
    """
    name = format or detect_format(path)
    fmt = get_format(name)
    if fmt.reader is None:
        raise ParameterError(f"format {name!r} cannot be read")
    if not Path(path).exists():
        raise InputNotFoundError("no such file or directory", path)
    return fmt.reader(path, **kwargs)


def write(array: Any, path: str | os.PathLike, format: str | None = None, **kwargs: Any):
    """Write ``array`` in the format named or implied by the extension of ``path``."""
    name = format or detect_format(path, for_writing=True)
    fmt = get_format(name)
    if fmt.writer is None:
        raise ParameterError(f"format {name!r} cannot be written")
    return fmt.writer(array, path, **kwargs)
