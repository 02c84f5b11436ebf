"""Series formats (legacy hexrd layouts) and series reading/writing through the one registry.

The format classes below are declarations for :mod:`lazyastro.io.registry` (this module is
light: readers and writers are imported when used). :func:`open_series` and
:func:`write_series` look formats up in the same registry as :func:`lazyastro.open`, so a
format name means one thing everywhere and the same file is read by the same reader; a series
is that reader's result coerced to ``(frame, y, x)``.

>>> import numpy as np
>>> from lazyastro.frames.formats import open_series, write_series
>>> write_series(np.ones((2, 4, 4), "u2"), "/tmp/_formats_doc.fch5", threshold=1, overwrite=True)
'/tmp/_formats_doc.fch5'
>>> open_series("/tmp/_formats_doc.fch5").dims
('frame', 'y', 'x')
"""

from __future__ import annotations

import os
from pathlib import Path

from ...io.registry import Format, Param, detect_format, get_format, resolve

__all__ = [
    "open_series", "write_series", "detect_series_format", "to_series", "open_zarr_series",
    "sniff_fits_files", "SERIES_KINDS",
    "HexrdHDF5Format", "FrameCacheFormat", "FrameCacheNpzFormat", "FrameCacheFch5Format",
    "FrameCacheYmlFormat", "ImageFilesFormat", "FitsFilesFormat",
]

#: Kinds that ``lazyastro.frames`` reads and writes, in order of preference for extensions.
SERIES_KINDS = ("series", "image")
_HDF5_MAGIC = (b"\x89HDF\r\n\x1a\n",)
_CHUNKS = Param("chunks", "shape", "read chunks, e.g. 8,-1,-1 (default: whole frames within the budget)")
_OVERWRITE = Param("overwrite", "object", "replace an existing output", default=False)
_THRESHOLD = Param("threshold", float, "keep pixels strictly above this value (required)")


# ----------------------------------------------------------------------------- declarations


class HexrdHDF5Format(Format):
    name = "hexrd-hdf5"
    extensions = (".h5", ".hdf5")
    kind = "series"
    priority = 10
    description = "legacy hexrd image series: HDF5 group holding an 'images' dataset"
    magic = _HDF5_MAGIC
    reader = "lazyastro.frames.formats.hexrd_hdf5:open_hexrd_hdf5"
    writer = "lazyastro.frames.formats.hexrd_hdf5:write_hexrd_hdf5"
    sniffer = "lazyastro.frames.formats.hexrd_hdf5:sniff_hexrd_hdf5"
    open_params = (
        Param("group", str, "HDF5 group of a legacy hexrd series (default: the only one)"),
        Param("dataname", str, "dataset name inside the group", default="images"),
        _CHUNKS,
        Param("direct", bool, "read uncompressed data by byte offset", default=True),
    )
    write_params = (
        Param("group", str, "HDF5 group of the hexrd series", default="imageseries"),
        Param("dataname", str, "dataset name inside the group", default="images"),
        Param("gzip", int, "gzip level of the hexrd layout (0: none)", default=1, min=0, max=9),
        Param("shuffle", bool, "byte shuffle before gzip", default=True),
        Param("chunk_rows", int, "rows per HDF5 chunk (default: whole frames)", min=1),
        Param("compression", "object", "h5py filter dict (e.g. hdf5plugin.Blosc()); overrides gzip"),
        _OVERWRITE,
    )


class FrameCacheNpzFormat(Format):
    name = "frame-cache-npz"
    extensions = (".npz",)
    kind = "series"
    priority = 10
    description = "legacy hexrd sparse frame cache (npz)"
    aliases = ("npz",)
    magic = (b"PK",)
    reader = "lazyastro.frames.formats.framecache:open_npz_cache"
    sniffer = "lazyastro.frames.formats.framecache:sniff_npz_cache"
    open_params = (_CHUNKS,)
    write_params = (_THRESHOLD, _OVERWRITE)

    def write(self, array, path, **options):
        from .framecache import write_frame_cache

        return write_frame_cache(array, path, style="npz", **options)


class FrameCacheFch5Format(Format):
    name = "frame-cache-fch5"
    extensions = (".fch5",)
    kind = "series"
    priority = 11
    description = "legacy hexrd sparse frame cache, HDF5 'fch5' style"
    aliases = ("fch5",)
    magic = _HDF5_MAGIC
    reader = "lazyastro.frames.formats.framecache:open_fch5_cache"
    sniffer = "lazyastro.frames.formats.framecache:sniff_fch5_cache"
    open_params = (Param("group", str, "HDF5 group holding the cache (default: the root)"), _CHUNKS)
    write_params = (_THRESHOLD, _OVERWRITE)

    def write(self, array, path, **options):
        from .framecache import write_frame_cache

        return write_frame_cache(array, path, style="fch5", **options)


class FrameCacheYmlFormat(Format):
    name = "frame-cache-yml"
    extensions = (".yml", ".yaml")
    kind = "series"
    priority = 10
    description = "deprecated hexrd frame-cache YAML index (read only)"
    aliases = ("frame-cache-yaml",)
    reader = "lazyastro.frames.formats.framecache:open_yml_cache"
    sniffer = "lazyastro.frames.formats.framecache:sniff_yml_cache"
    open_params = (_CHUNKS,)

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() in (".yml", ".yaml") and super().sniff(path)


class FrameCacheFormat(Format):
    """Any legacy frame cache, by content; writes npz (``style="fch5"`` for HDF5)."""

    name = "frame-cache"
    kind = "series"
    priority = 9
    description = "legacy hexrd sparse frame cache: reads npz/fch5/yml, writes npz or fch5 (style=)"
    reader = "lazyastro.frames.formats.framecache:open_frame_cache"
    writer = "lazyastro.frames.formats.framecache:write_frame_cache"
    open_params = (Param("group", str, "HDF5 group holding an fch5 cache"), _CHUNKS)
    write_params = (
        _THRESHOLD, Param("style", str, "frame-cache style", default="npz", choices=("npz", "fch5")), _OVERWRITE,
    )


class ImageFilesFormat(Format):
    name = "image-files"
    kind = "series"
    priority = 10
    description = "legacy hexrd image-files YAML (FITS/TIFF/PNG frames)"
    reader = "lazyastro.frames.formats.imagefiles:open_image_files"
    sniffer = "lazyastro.frames.formats.imagefiles:sniff_image_files"
    open_params = (_CHUNKS,)
    path_must_exist = False  # the YAML text itself is accepted too

    def sniff(self, path: Path) -> bool:
        return path.suffix.lower() in (".yml", ".yaml") and super().sniff(path)


class FitsFilesFormat(Format):
    name = "fits-files"
    kind = "series"
    priority = 5
    description = "directory of FITS files, one frame per file (or a glob / list of files)"
    reader = "lazyastro.frames.formats.imagefiles:open_fits_files"
    sniffer = "lazyastro.frames.formats:sniff_fits_files"
    open_params = (Param("meta", "object", "metadata of the series"), _CHUNKS)
    path_must_exist = False  # a glob pattern or a list of files is accepted too

    def sniff(self, path: Path) -> bool:
        return path.is_dir() and super().sniff(path)


# ----------------------------------------------------------------------------- series API


def sniff_fits_files(path: Path) -> bool:
    """A directory of FITS files (one per frame) that is not a Zarr store."""
    from .imagefiles import _FITS

    return path.is_dir() and not (path / "zarr.json").exists() and not (path / ".zarray").exists() and any(
        p.name.lower().endswith(_FITS) for p in path.iterdir()
    )


def to_series(arr):
    """A generic DataArray (FITS cube, Zarr, HDF5 dataset, TIFF stack) as a ``(frame, y, x)`` series.

    An ``omega`` attribute of shape ``(nframes, 2)`` or ``(nframes,)`` becomes coordinates.

    Parameters
    ----------
    arr : xarray.DataArray
        2-D (one frame) or 3-D data.

    Returns
    -------
    xarray.DataArray
        Dims ``(frame, y, x)``.

    Raises
    ------
    FormatError
        Data that is not 2-D or 3-D.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> to_series(xr.DataArray(np.zeros((3, 4)), dims=("y", "x"))).dims
    ('frame', 'y', 'x')
    """
    from ...core.errors import FormatError
    from ..series import as_series, series_meta

    if arr.ndim not in (2, 3):
        raise FormatError(f"expected a 2-D or 3-D image array, got dims {arr.dims}", arr.attrs.get("source"))
    if arr.dims == ("frame", "y", "x") and "frame" in arr.coords:
        return arr  # already a series (legacy readers)
    data = arr.data[None] if arr.ndim == 2 else arr.data
    series = as_series(data)
    coords, attrs = series_meta(dict(arr.attrs), series.shape[0])
    return series.assign_coords(coords).assign_attrs(attrs)


def open_zarr_series(path, name=None, chunks=None, direct: bool = True):
    """Zarr data, with simple local stores read chunk file by chunk file (see ``zarr_direct``).

    The ``zarr`` format's reader; ``direct=True`` (the default for series) replaces the
    zarr-python reads of a 3-D array by direct chunk-file reads when the layout allows it.
    Without ``chunks``, dask blocks are whole storage chunks stacked along frames up to the
    block size the memory budget allows.
    """
    from ...core.chunking import chunk_bytes_for_budget
    from ...io.zarr import open_zarr, open_zarr_array
    from ..series import from_backend
    from .zarr_direct import ZarrDirectBackend, direct_layout

    arr = open_zarr(path, name=name, chunks=chunks, direct="auto" if direct else False)
    if not direct or arr.ndim != 3:
        return arr
    zarr_arr = open_zarr_array(Path(os.fspath(path)), name)
    root = Path(os.fspath(path)) / zarr_arr.path if zarr_arr.path else Path(os.fspath(path))
    layout = direct_layout(zarr_arr, root)
    if layout is None:
        return arr
    backend = ZarrDirectBackend(zarr_arr.shape, zarr_arr.dtype, layout)
    if chunks is None:
        cf, cy, cx = layout["chunks"]
        nf = backend.shape[0]
        per = max(1, chunk_bytes_for_budget() // max(1, cf * cy * cx * backend.dtype.itemsize))
        chunks = (min(nf, cf * per), min(cy, backend.shape[1]), min(cx, backend.shape[2]))
    data = from_backend(backend, chunks=chunks, name="zarr").data
    return arr.copy(data=data)


def detect_series_format(path, *, options=()) -> str:
    """Format of a series file from its content (legacy layouts first), else its extension.

    The same detection as :func:`lazyastro.io.registry.detect_format`, restricted to the
    formats ``lazyastro.frames`` reads (kinds ``series`` and ``image``).

    Parameters
    ----------
    path : str or path-like
        The file or directory.
    options : iterable of str
        Reader keywords that will be passed (formats that do not take them are skipped).

    Returns
    -------
    str
        The format name.

    Examples
    --------
    >>> import numpy as np
    >>> np.save("/tmp/_detect_doc.npy", np.zeros((2, 3, 3)))
    >>> detect_series_format("/tmp/_detect_doc.npy")
    'npy'
    """
    return detect_format(path, kinds=SERIES_KINDS, options=options)


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def open_series(source, format: str | None = None, **kw):  # noqa: A002
    """Open an image series lazily: a path, a glob / list of frame files, or an array.

    Parameters
    ----------
    source : path, glob pattern, list of paths, or array
        What to open. Arrays (NumPy, dask, DataArray) are wrapped (``format="array"``).
    format : str, optional
        A registry format of kind ``series`` or ``image`` (``lazyastro formats`` lists them:
        ``hexrd-hdf5``, ``frame-cache``, ``frame-cache-npz``, ``frame-cache-fch5``,
        ``frame-cache-yml``, ``image-files``, ``fits-files``, ``fits``, ``zarr``, ``hdf5``,
        ``tiff``, ``npy``, ...); detected from the content when omitted.
    **kw
        Options of that format's reader.

    Returns
    -------
    xarray.DataArray
        Dims ``(frame, y, x)``.

    Raises
    ------
    InputNotFoundError, FormatError, ParameterError

    Examples
    --------
    >>> import numpy as np
    >>> open_series(np.zeros((3, 2, 2))).shape
    (3, 2, 2)
    """
    import numpy as np
    import xarray as xr

    from ...core.errors import InputNotFoundError

    if format == "array" or isinstance(source, np.ndarray | xr.DataArray) or hasattr(source, "dask"):
        from ..series import from_array

        data = kw.pop("data", source)
        return from_array(data, meta=kw.pop("meta", None), chunks=kw.pop("chunks", None), **kw)
    if isinstance(source, list | tuple):
        format = format or "fits-files"
    elif format is None and isinstance(source, str) and _is_glob(source) and not Path(source).exists():
        import glob

        if not glob.glob(source):
            raise InputNotFoundError("no files match the pattern", source)
        format = "fits-files"
    fmt = resolve(source, format, options=kw, kinds=SERIES_KINDS)
    kw = fmt.check_options(kw, "open")
    if fmt.path_must_exist and not Path(os.fspath(source)).exists():
        raise InputNotFoundError("no such file or directory", source)
    return to_series(fmt.open_series(source, **kw))


def _plain(series):
    """A series as a plain DataArray whose attrs carry the legacy metadata (``omega``, header)."""
    import xarray as xr

    from ..series import as_series
    from ._common import series_to_meta

    s = as_series(series)
    attrs = series_to_meta(s)
    if "header" in s.attrs:
        attrs["header"] = s.attrs["header"]
    return xr.DataArray(s.data, dims=s.dims, attrs=attrs)


def write_series(series, path, format: str | None = None, **kw) -> str:  # noqa: A002
    """Write a series in any writable registry format of kind ``series`` or ``image``.

    Parameters
    ----------
    series : array-like or xarray.DataArray
        The series (2-D: one frame).
    path : str or path-like
        Output.
    format : str, optional
        Format name; from the extension when omitted, series layouts first (``.h5`` is
        ``hexrd-hdf5``, ``.npz`` / ``.fch5`` frame caches, ``.zarr``, ``.fits``, ``.tif``,
        ``.npy``).
    **kw
        Options of that format's writer (``threshold`` for frame caches, ``chunks`` for Zarr...).

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ParameterError, OutputExistsError, UnsupportedDtypeError

    Examples
    --------
    >>> import numpy as np
    >>> write_series(np.zeros((2, 4, 4), "u2"), "/tmp/_doc.fch5", threshold=0, overwrite=True)
    '/tmp/_doc.fch5'
    """
    name = format or detect_format(path, for_writing=True, kinds=SERIES_KINDS)
    fmt = get_format(name, kinds=SERIES_KINDS)
    if not fmt.writable:
        from ...core.errors import ParameterError

        raise ParameterError(f"format {fmt.name!r} cannot be written")
    kw = fmt.check_options(kw, "write")
    return fmt.write(_plain(series), path, **kw)
