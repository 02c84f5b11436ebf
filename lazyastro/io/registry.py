"""One registry of formats behind :func:`lazyastro.open`, :func:`lazyastro.write` and the CLI.

A format is a class (in the spirit of xarray's ``BackendEntrypoint``) that declares

- ``name`` (one meaning everywhere: ``lazyastro.open``, ``lazyastro.frames.open``, the CLI),
- ``extensions`` (lower case, with the dot), ``kind`` (``"image"``, ``"series"``, ``"cube"``
  or ``"table"``), ``priority`` (sniffers run in decreasing priority), ``description``,
- ``sniff(path)`` (content detection; ``magic`` byte prefixes give a cheap default),
- ``open(path, **options)`` / ``write(array, path, **options)``, and the options they take as
  :class:`Param` declarations (``open_params`` / ``write_params``); the command line builds
  its options from those declarations and the Python API checks keywords against them.

Built-in formats are listed below by ``"module:Class"`` strings and third-party formats come
through the ``lazyastro.formats`` entry-point group; both are loaded on the first lookup, so
importing lazyastro (or building ``lazyastro --help``) imports no format implementation. A
format class's module must stay light: it imports its reader and writer (dask, h5py, ...)
only when ``open``/``write`` run, for example through ``reader = "pkg.mod:open_x"`` strings.

>>> from lazyastro.io import registry
>>> registry.get_format("fits").kind
'image'
>>> sorted(p.name for p in registry.get_format("fits").open_params)
['chunks', 'dims', 'hdu']
"""

from __future__ import annotations

import builtins
import importlib
import importlib.metadata
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import FormatError, InputNotFoundError, ParameterError

__all__ = [
    "Param", "Format", "KINDS", "ENTRY_POINT_GROUP", "register_format", "register", "unregister",
    "get_format",
    "formats", "format_names", "detect_format", "resolve", "open", "describe", "write", "Summary",
    "refresh_formats",
]

KINDS = ("image", "series", "cube", "table")
ENTRY_POINT_GROUP = "lazyastro.formats"
# Parameter types the command line knows how to parse (the API passes values as they are).
PARAM_TYPES = (str, int, float, bool, "shape", "int-or-str", "object")


@dataclass(frozen=True)
class Param:
    """One option of a format's ``open`` or ``write``.

    Parameters
    ----------
    name : str
        Keyword of the Python function.
    type : {str, int, float, bool, "shape", "int-or-str", "object"}
        What the command line parses: ``"shape"`` is ``1,512,-1``; ``"int-or-str"`` is an index
        or a name (a FITS HDU); ``"object"`` is Python-only (no command-line option).
    help : str
        One line of help.
    default : Any
        The function's default (shown in help; the CLI passes only options that were given).
    choices : tuple, optional
        Accepted values (checked by the CLI and the API).
    min, max : float, optional
        Inclusive bounds of numeric values (checked by the CLI and the API).
    flag : str, optional
        Command-line spelling when it is not ``--NAME`` (for example ``--dataset-out``).
    """

    name: str
    type: Any = str
    help: str = ""
    default: Any = None
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    flag: str | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise TypeError(f"Param {self.name!r}: type must be one of {PARAM_TYPES}, got {self.type!r}")

    @property
    def cli(self) -> bool:
        """Whether the option exists on the command line."""
        return self.type != "object"

    def check(self, value: Any, fmt: str) -> Any:
        """Validate a Python value against ``choices`` and bounds; return it unchanged."""
        from ..core.validate import check_choice, check_float, check_int

        if value is None:
            return value
        if self.choices is not None:
            check_choice(value, self.name, self.choices)
        if self.type is int and (self.min is not None or self.max is not None):
            return check_int(value, self.name, min=self.min, max=self.max)
        if self.type is float and (self.min is not None or self.max is not None):
            return check_float(value, self.name, min=self.min, max=self.max)
        return value


@dataclass
class Summary:
    """What ``lazyastro info`` shows: metadata of a dataset, without reading its data."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any
    chunks: tuple[int, ...] | None
    nblocks: int | None
    attrs: dict

    @classmethod
    def of(cls, arr: Any) -> Summary:
        """The summary of a lazy DataArray."""
        data = arr.data
        chunks = tuple(int(c) for c in data.chunksize) if hasattr(data, "chunksize") else None
        nblocks = int(data.npartitions) if hasattr(data, "npartitions") else None
        return cls(tuple(arr.dims), tuple(int(n) for n in arr.shape), arr.dtype, chunks, nblocks, dict(arr.attrs))


def _resolve(spec: str | Callable) -> Callable:
    """``"pkg.module:attr"`` -> the attribute (imported now); a callable is returned as is."""
    if callable(spec):
        return spec
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Format:
    """Base class of a format. Subclass it, set the class attributes, implement what you support.

    A format reads when it sets ``reader`` (a function or ``"module:function"``) or overrides
    :meth:`open`; it writes when it sets ``writer`` or overrides :meth:`write`. The default
    :meth:`sniff` checks ``magic`` byte prefixes, then calls ``sniffer`` if set.

    Examples
    --------
    >>> class Raw(Format):
    ...     name = "raw-doc"
    ...     extensions = (".raw",)
    ...     reader = "numpy:fromfile"
    ...     open_params = (Param("dtype", str, "element type", default="float"),)
    >>> Raw().readable, Raw().writable
    (True, False)
    """

    name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "image"
    priority: ClassVar[int] = 0
    description: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    magic: ClassVar[tuple[bytes, ...]] = ()
    open_params: ClassVar[tuple[Param, ...]] = ()
    write_params: ClassVar[tuple[Param, ...]] = ()
    reader: ClassVar[str | Callable | None] = None
    writer: ClassVar[str | Callable | None] = None
    sniffer: ClassVar[str | Callable | None] = None
    #: ``False`` when ``open`` also takes things that are not paths (globs, YAML text).
    path_must_exist: ClassVar[bool] = True
    #: ``False`` for formats registered without declarations: any keyword is passed on.
    strict_params: ClassVar[bool] = True

    # ----------------------------------------------------------------- capabilities
    @property
    def readable(self) -> bool:
        return self.reader is not None or type(self).open is not Format.open

    @property
    def writable(self) -> bool:
        return self.writer is not None or type(self).write is not Format.write

    def params(self, which: str) -> tuple[Param, ...]:
        """The declared parameters of ``"open"`` or ``"write"``."""
        return self.open_params if which == "open" else self.write_params

    def accepts(self, options: Iterable[str], which: str = "open") -> bool:
        """Whether every keyword in ``options`` is a declared parameter (or the format is not strict)."""
        names = {p.name for p in self.params(which)}
        return not self.strict_params or all(o in names for o in options)

    def check_options(self, options: Mapping[str, Any], which: str = "open") -> dict[str, Any]:
        """Keywords checked against the declarations (unknown names, choices, bounds)."""
        if not self.strict_params:
            return dict(options)
        declared = {p.name: p for p in self.params(which)}
        unknown = [k for k in options if k not in declared]
        if unknown:
            takes = ", ".join(declared) or "no options"
            verb = "reading" if which == "open" else "writing"
            raise ParameterError(
                f"format {self.name!r} does not take {', '.join(map(repr, unknown))} when {verb} "
                f"(it takes: {takes})"
            )
        return {k: declared[k].check(v, self.name) for k, v in options.items()}

    # ----------------------------------------------------------------- behaviour
    def sniff(self, path: Path) -> bool:
        """Whether ``path`` holds this format (content, not name). Must not raise for other files."""
        if self.magic:
            if not path.is_file():
                return False
            with builtins.open(path, "rb") as f:
                head = f.read(max(len(m) for m in self.magic))
            if not any(head.startswith(m) for m in self.magic):
                return False
            if self.sniffer is None:
                return True
        if self.sniffer is None:
            return False
        return bool(_resolve(self.sniffer)(path))

    def open(self, path: str | os.PathLike, **options: Any):
        """Open ``path`` lazily (an xarray object backed by dask)."""
        if self.reader is None:
            raise ParameterError(f"format {self.name!r} cannot be read")
        return _resolve(self.reader)(path, **options)

    def write(self, array: Any, path: str | os.PathLike, **options: Any):
        """Write ``array`` to ``path`` (streamed, atomic); return the path written."""
        if self.writer is None:
            raise ParameterError(f"format {self.name!r} cannot be written")
        return _resolve(self.writer)(array, path, **options)

    def describe(self, path: str | os.PathLike, **options: Any) -> Summary:
        """Dims, shape, dtype, read chunks and attrs of ``path`` (``lazyastro info``).

        The default opens the file lazily (no data is read); formats may override it to read
        only their header, without importing dask or xarray.
        """
        return Summary.of(self.open(path, **options))

    def open_series(self, path: str | os.PathLike, **options: Any):
        """Open for :func:`lazyastro.frames.open` (which coerces the result to ``(frame, y, x)``).

        The same reader as :meth:`open`; formats may override it to choose a read plan that
        suits frame statistics (row blocks, whole frames).
        """
        return self.open(path, **options)

    def __repr__(self) -> str:
        return f"<format {self.name!r} ({self.kind})>"


# Built-in formats: name -> "module:Class". The classes live in light modules.
BUILTIN_FORMATS: dict[str, str] = {
    "fits": "lazyastro.io:FitsFormat",
    "zarr": "lazyastro.io:ZarrFormat",
    "hdf5": "lazyastro.io:HDF5Format",
    "tiff": "lazyastro.io.tiff:TiffFormat",
    "npy": "lazyastro.io.npy:NpyFormat",
    "hexrd-hdf5": "lazyastro.frames.formats:HexrdHDF5Format",
    "frame-cache": "lazyastro.frames.formats:FrameCacheFormat",
    "frame-cache-npz": "lazyastro.frames.formats:FrameCacheNpzFormat",
    "frame-cache-fch5": "lazyastro.frames.formats:FrameCacheFch5Format",
    "frame-cache-yml": "lazyastro.frames.formats:FrameCacheYmlFormat",
    "image-files": "lazyastro.frames.formats:ImageFilesFormat",
    "fits-files": "lazyastro.frames.formats:FitsFilesFormat",
    "skipper": "lazyastro.skipper:SkipperFormat",
    "gan-imageset": "lazyastro.gan.formats:ImageSetFormat",
}

_lock = threading.RLock()
_loaded: dict[str, Format] | None = None  # builtins + entry points, by name (load order kept)
_registered: dict[str, Format] = {}  # register()/register_format() calls (replace by name)


def _instantiate(obj: Any, where: str) -> Format:
    fmt = obj() if isinstance(obj, type) else obj
    if not isinstance(fmt, Format):
        raise TypeError(f"{where}: {obj!r} is not a lazyastro.io.registry.Format subclass")
    if not fmt.name:
        raise TypeError(f"{where}: format class has no name")
    if fmt.kind not in KINDS:
        raise TypeError(f"{where}: kind {fmt.kind!r} is not one of {KINDS}")
    return fmt


def _entry_points() -> list:
    try:
        return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as exc:  # broken metadata must not break lazyastro
        warnings.warn(f"cannot list the {ENTRY_POINT_GROUP!r} entry points: {exc}", stacklevel=3)
        return []


def _load() -> dict[str, Format]:
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        found: dict[str, Format] = {}
        for name, spec in BUILTIN_FORMATS.items():
            fmt = _instantiate(_resolve(spec), spec)
            if fmt.name != name:
                raise TypeError(f"{spec}: declares name {fmt.name!r}, registered as {name!r}")
            found[name] = fmt
        for ep in _entry_points():
            where = f"entry point {ep.name!r} ({ep.value}) of group {ENTRY_POINT_GROUP!r}"
            if ep.name in found:
                warnings.warn(f"{where}: the format name {ep.name!r} is taken; ignored", stacklevel=3)
                continue
            try:
                fmt = _instantiate(ep.load(), where)
            except Exception as exc:  # a broken plugin must not break lazyastro
                warnings.warn(f"{where} could not be loaded: {type(exc).__name__}: {exc}", stacklevel=3)
                continue
            if fmt.name != ep.name:
                warnings.warn(f"{where}: the class declares name {fmt.name!r}; ignored", stacklevel=3)
                continue
            found[fmt.name] = fmt
        _loaded = found
        return found


def refresh_formats() -> None:
    """Forget loaded formats so the next lookup reads the entry points again."""
    global _loaded
    with _lock:
        _loaded = None


def _all() -> dict[str, Format]:
    """Every format by its name, in registration order (built-ins, entry points, register())."""
    out = dict(_load())
    out.update(_registered)
    return out


def _by_alias() -> dict[str, Format]:
    table = _all()
    aliases = {a: f for f in table.values() for a in f.aliases if a not in table}
    return {**aliases, **table}


def register(fmt: Format | type[Format]) -> Format:
    """Register a :class:`Format` (class or instance) now, replacing any format of the same name.

    Parameters
    ----------
    fmt : Format or Format subclass
        The format.

    Returns
    -------
    Format
        The registered instance.

    Examples
    --------
    >>> class Doc(Format):
    ...     name = "doc-register"
    >>> register(Doc).name in formats()
    True
    >>> unregister("doc-register")
    """
    inst = _instantiate(fmt, "register()")
    with _lock:
        _registered[inst.name] = inst
    return inst


def unregister(name: str) -> None:
    """Remove a format added with :func:`register` / :func:`register_format` (tests, plugins).

    Built-in and entry-point formats come back on :func:`refresh_formats`.
    """
    with _lock:
        _registered.pop(name, None)


def register_format(
    name: str,
    reader: Callable[..., Any] | None = None,
    writer: Callable[..., Any] | None = None,
    extensions: tuple[str, ...] = (),
    sniff: Callable[[Path], bool] | None = None,
    description: str = "",
    aliases: tuple[str, ...] = (),
    priority: int = 0,
    *,
    kind: str = "image",
    open_params: tuple[Param, ...] | None = None,
    write_params: tuple[Param, ...] | None = None,
) -> Format:
    """Register (or replace) a format from functions; a thin wrapper of :func:`register`.

    Without ``open_params``/``write_params`` the format accepts any keyword (passed on to the
    functions) and adds no command-line options.

    Parameters
    ----------
    name : str
        Format name.
    reader, writer : callable, optional
        ``reader(path, **kw)`` returning a lazy xarray object; ``writer(array, path, **kw)``.
    extensions : tuple of str
        File name endings (with the dot) the format claims.
    sniff : callable, optional
        ``sniff(path) -> bool`` from the content.
    description : str
        One line for ``lazyastro formats``.
    aliases : tuple of str
        Other names of the same format.
    priority : int
        Sniffers run in decreasing priority (specific layouts above their container).
    kind : {"image", "series", "cube", "table"}
        What the data is.
    open_params, write_params : tuple of Param, optional
        Declared options (makes the format strict and adds CLI options).

    Returns
    -------
    Format
        The registered format.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> fmt = register_format("doc-txt", reader=lambda p: xr.DataArray(np.loadtxt(p)),
    ...                       extensions=(".txt",))
    >>> fmt.readable, fmt.writable
    (True, False)
    >>> unregister("doc-txt")
    """
    attrs = {
        "name": name, "reader": staticmethod(reader) if reader else None,
        "writer": staticmethod(writer) if writer else None,
        "sniffer": staticmethod(sniff) if sniff else None,
        "extensions": tuple(e.lower() for e in extensions), "description": description,
        "aliases": tuple(aliases), "priority": priority, "kind": kind,
        "open_params": tuple(open_params or ()), "write_params": tuple(write_params or ()),
        "strict_params": open_params is not None or write_params is not None,
    }
    cls = type(f"Format_{name}", (Format,), attrs)
    return register(cls)


# ----------------------------------------------------------------------------- lookups


def formats() -> dict[str, Format]:
    """All registered formats by name (aliases included).

    Returns
    -------
    dict
        ``{name: Format}``.

    Examples
    --------
    >>> {"fits", "zarr", "hdf5", "tiff", "npy"} <= set(formats())
    True
    """
    return _by_alias()


def format_names(kinds: Iterable[str] | None = None) -> list[str]:
    """Sorted names of the registered formats (optionally of some kinds only)."""
    kinds = tuple(kinds) if kinds is not None else None
    return sorted(n for n, f in _all().items() if kinds is None or f.kind in kinds)


def get_format(name: str, *, kinds: Iterable[str] | None = None, option: str = "format") -> Format:
    """The format called ``name`` (or one of its aliases).

    Parameters
    ----------
    name : str
        Format name.
    kinds : iterable of str, optional
        Accept only formats of these kinds (``lazyastro.frames`` takes image and series).
    option : str
        How the message refers to the argument (``"format"`` in Python, ``"--format"`` in the CLI).

    Returns
    -------
    Format

    Raises
    ------
    ParameterError
        Unknown name, or a format of another kind; the message lists the known names.

    Examples
    --------
    >>> get_format("fits").name
    'fits'
    >>> get_format("nope")
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.ParameterError: unknown format 'nope'; known formats: ...
    """
    kinds = tuple(kinds) if kinds is not None else None
    fmt = _by_alias().get(name) if isinstance(name, str) else None
    what = "series format" if kinds and "series" in kinds else "format"
    if fmt is None or (kinds is not None and fmt.kind not in kinds):
        names = ", ".join(format_names(kinds))
        where = "" if option == "format" else f" for {option}"
        extra = "" if fmt is None else f" ({fmt.name!r} holds {fmt.kind} data)"
        raise ParameterError(f"unknown {what} {name!r}{where}{extra}; known {what}s: {names}")
    return fmt


def _ordered(kinds: tuple[str, ...] | None) -> list[Format]:
    fmts = [f for f in _all().values() if kinds is None or f.kind in kinds]
    return sorted(fmts, key=lambda f: -f.priority)  # stable: registration order breaks ties


def _by_extension(path: Path, candidates: list[Format], prefer: tuple[str, ...]) -> Format | None:
    name = os.fspath(path).lower().rstrip("/").rsplit("/", 1)[-1]
    best: tuple[int, int, int, Format] | None = None
    for fmt in candidates:
        for ext in fmt.extensions:
            if name.endswith(ext):
                rank = prefer.index(fmt.kind) if fmt.kind in prefer else len(prefer)
                key = (len(ext), -rank, fmt.priority)
                if best is None or key > best[:3]:
                    best = (*key, fmt)
    return best[3] if best else None


def detect_format(
    path: str | os.PathLike,
    for_writing: bool = False,
    *,
    kinds: Iterable[str] | None = None,
    options: Iterable[str] = (),
) -> str:
    """Name of the format of ``path``: from its content (sniffers), else its extension.

    Parameters
    ----------
    path : str or path-like
        The file or directory.
    for_writing : bool
        Choose by extension only (the output need not exist). Among formats claiming the same
        extension, those of the first kind in ``kinds`` win (``lazyastro.write``: image first,
        so ``.h5`` is plain HDF5; ``lazyastro.frames.write``: series first, so ``.h5`` is the
        hexrd layout).
    kinds : iterable of str, optional
        Consider only these kinds, in order of preference.
    options : iterable of str
        Keywords the caller will pass: formats that do not take them are skipped (so
        ``dataset=`` reads a hexrd file as plain HDF5).

    Returns
    -------
    str
        The format name.

    Raises
    ------
    InputNotFoundError, FormatError

    Examples
    --------
    >>> detect_format("out.zarr", for_writing=True)
    'zarr'
    """
    kinds = tuple(kinds) if kinds is not None else None
    prefer = kinds or ("image", "cube", "series", "table")
    options = tuple(options)
    which = "write" if for_writing else "open"
    p = Path(os.fspath(path))
    cands = [
        f for f in _ordered(kinds)
        if (f.writable if for_writing else f.readable) and f.accepts(options, which)
    ]
    if not for_writing:
        if not p.exists():
            raise InputNotFoundError("no such file or directory", p)
        for fmt in cands:
            try:
                if fmt.sniff(p):
                    return fmt.name
            except (OSError, ValueError):
                continue
    fmt = _by_extension(p, cands, prefer)
    if fmt is None and for_writing:
        other = _by_extension(p, _ordered(kinds), prefer)
        if other is not None:
            raise ParameterError(f"format {other.name!r} (from the extension) cannot be written", p)
    if fmt is None:
        names = ", ".join(format_names(kinds))
        raise FormatError(
            f"cannot tell the format from the {'extension' if for_writing else 'content or extension'}; "
            f"pass format=... (one of: {names})", p,
        )
    return fmt.name


def resolve(
    path: str | os.PathLike,
    format: str | None = None,  # noqa: A002
    *,
    options: Iterable[str] = (),
    kinds: Iterable[str] | None = None,
    option: str = "format",
) -> Format:
    """The format to read ``path`` with: ``format`` if given, else detected.

    Detection first ignores ``options``; if the detected format does not take them, formats
    that do are tried (so ``dataset=`` reads a hexrd HDF5 file as plain HDF5). If none
    matches, the detected format is returned and its option check gives the error.

    Parameters
    ----------
    path : str or path-like
        Input.
    format : str, optional
        Format name.
    options : iterable of str
        Reader keywords the caller passes.
    kinds : iterable of str, optional
        Accepted kinds.
    option : str
        How messages name the format argument (``"--format"`` on the command line).

    Returns
    -------
    Format

    Examples
    --------
    >>> resolve("x.zarr", "zarr").name
    'zarr'
    """
    kinds = tuple(kinds) if kinds is not None else None
    if format is not None:
        return get_format(format, kinds=kinds, option=option)
    options = tuple(options)
    fmt = get_format(detect_format(path, kinds=kinds), kinds=kinds)
    if options and not fmt.accepts(options):
        try:
            fmt = get_format(detect_format(path, kinds=kinds, options=options), kinds=kinds)
        except FormatError:
            pass
    return fmt


def open(path: str | os.PathLike, format: str | None = None, **kwargs: Any):  # noqa: A001
    """Open any supported dataset lazily and return an xarray object backed by dask.

    Parameters
    ----------
    path : str or path-like
        File or directory.
    format : str, optional
        Format name (``lazyastro formats`` lists them); detected from the content when omitted.
    **kwargs
        Options of the format's reader (its ``open_params``).

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InputNotFoundError, FormatError, ParameterError

    Examples
    --------
    >>> import numpy as np, lazyastro
    >>> np.save("/tmp/_doc_open.npy", np.arange(6.0).reshape(2, 3))
    >>> lazyastro.open("/tmp/_doc_open.npy").dims
    ('y', 'x')
    """
    fmt = resolve(path, format, options=kwargs)
    if not fmt.readable:
        raise ParameterError(f"format {fmt.name!r} cannot be read")
    kwargs = fmt.check_options(kwargs, "open")
    if fmt.path_must_exist and not Path(os.fspath(path)).exists():
        raise InputNotFoundError("no such file or directory", path)
    return fmt.open(path, **kwargs)


def describe(path: str | os.PathLike, format: str | None = None, **kwargs: Any) -> Summary:  # noqa: A002
    """Metadata of a dataset (what ``lazyastro info`` prints), reading no data.

    Parameters
    ----------
    path : str or path-like
        File or directory.
    format : str, optional
        Format name; detected when omitted.
    **kwargs
        Options of the format's reader.

    Returns
    -------
    Summary
        ``dims``, ``shape``, ``dtype``, ``chunks``, ``nblocks``, ``attrs``.

    Examples
    --------
    >>> import numpy as np
    >>> np.save("/tmp/_doc_describe.npy", np.zeros((4, 8), "f4"))
    >>> describe("/tmp/_doc_describe.npy").shape
    (4, 8)
    """
    fmt = resolve(path, format, options=kwargs)
    if not fmt.readable:
        raise ParameterError(f"format {fmt.name!r} cannot be read")
    kwargs = fmt.check_options(kwargs, "open")
    if fmt.path_must_exist and not Path(os.fspath(path)).exists():
        raise InputNotFoundError("no such file or directory", path)
    return fmt.describe(path, **kwargs)


def write(array: Any, path: str | os.PathLike, format: str | None = None, **kwargs: Any):
    """Write ``array`` in the format named, or implied by the extension of ``path``.

    Parameters
    ----------
    array : array-like, dask array or xarray.DataArray
        The data (streamed; never loaded whole).
    path : str or path-like
        Output path.
    format : str, optional
        Format name; from the extension when omitted.
    **kwargs
        Options of the format's writer (its ``write_params``).

    Returns
    -------
    str
        The path written.

    Examples
    --------
    >>> import numpy as np, lazyastro
    >>> lazyastro.write(np.ones((2, 2)), "/tmp/_doc_write.npy", overwrite=True)
    '/tmp/_doc_write.npy'
    """
    name = format or detect_format(path, for_writing=True)
    fmt = get_format(name)
    if not fmt.writable:
        raise ParameterError(f"format {fmt.name!r} cannot be written")
    kwargs = fmt.check_options(kwargs, "write")
    return fmt.write(array, path, **kwargs)
