"""GAN image sets: the legacy HDF5 layout (``"0"``, ``"1"``, ... at the root), Zarr, any series format.

Legacy layout (spec section 1): one 2-D dataset per image named ``"0"``, ``"1"``, ...
(read until the first missing name; a later name after a gap is an error, not
silently ignored), ``lognorminfo = [Lmin, Lmax]`` and ``musigmainfo = [mu, sigma]``.
:func:`open_imageset` returns a lazy ``DataArray (image, y, x)`` with the constants in
``attrs``; :func:`write_imageset` streams one through the core engine
(:func:`lazyastro.core.stream.store`: resumable, atomic). A ``.zarr`` path is the
native alternative (constants in the attributes); any other file is opened with the
registry (``lazyastro.open``) and read as an image set.

>>> import numpy as np
>>> p = write_imageset(np.ones((3, 4, 4)), "/tmp/_doc_set.h5", lognorminfo=[0.0, 1.0],
...                    overwrite=True, progress=False)
>>> open_imageset(p).shape
(3, 4, 4)
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, OutputExistsError, ParameterError
from ..core.stream import StreamTarget, Variable, store

__all__ = ["open_imageset", "write_imageset", "sniff_imageset", "image_names", "ImageSetTarget",
           "denormprep", "normalisation_constants", "split_at", "odd_even", "lognorminfo_of",
           "CONSTANTS"]

CONSTANTS = ("lognorminfo", "musigmainfo")
_NUMERIC = re.compile(r"^(0|[1-9][0-9]*)$")


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or (path.is_dir() and (path / "zarr.json").exists())


def image_names(f, path) -> list[str]:
    """The image dataset names of an open legacy file, ``"0" .. "n-1"``; a gap is a :class:`FormatError`."""
    n = 0
    while str(n) in f:
        n += 1
    later = sorted(int(k) for k in f.keys() if _NUMERIC.match(k) and int(k) > n)
    if later:
        raise FormatError(f"image names have a gap: {str(n)!r} is missing but {str(later[0])!r} exists "
                          "(images must be named 0, 1, 2, ... without gaps)", path)
    return [str(i) for i in range(n)]


def sniff_imageset(path: Path) -> bool:
    """True for an HDF5 file with a 2-D dataset ``"0"`` at the root (the legacy image-set layout)."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            ds = f.get("0")
            return isinstance(ds, h5py.Dataset) and ds.ndim == 2
    except Exception:
        return False


def _read_block(path: str, dtype: str, block_info=None) -> np.ndarray:
    import h5py

    info = block_info[None]
    (i0, i1), (_, h), (_, w) = info["array-location"]
    out = np.empty((i1 - i0, h, w), dtype=dtype)
    try:
        with h5py.File(path, "r") as f:
            for k in range(i0, i1):
                f[str(k)].read_direct(out, dest_sel=np.s_[k - i0])
    except (OSError, KeyError) as exc:
        raise FormatError(f"cannot read images {i0}..{i1 - 1} ({exc})", path) from None
    return out


def _constants_from(f) -> dict:
    out = {}
    for name in CONSTANTS:
        if name in f:
            out[name] = [float(v) for v in np.asarray(f[name][()], dtype=np.float64).ravel()]
    return out


def open_imageset(path: str | os.PathLike, *, images_per_chunk: int | None = None,
                  format: str | None = None) -> Any:  # noqa: A002
    """Open an image set lazily as ``DataArray (image, y, x)``.

    Parameters
    ----------
    path : path-like
        Legacy HDF5 image set, a Zarr image set, or any series readable by ``lazyastro.open``.
    images_per_chunk : int, optional
        Images per dask block (default: about 64 MiB of pixels, at least 1).
    format : str, optional
        Registry format name for non-legacy files (default: detected).

    Returns
    -------
    xarray.DataArray
        Lazy, chunked along ``image`` only; ``attrs`` holds ``lognorminfo`` / ``musigmainfo``
        when the file has them.

    Raises
    ------
    InputNotFoundError, FormatError
        Missing file; no image ``"0"``; a gap in the names; images of different shapes or not 2-D.

    Examples
    --------
    >>> open_imageset("/tmp/_doc_set.h5").attrs["lognorminfo"]
    [0.0, 1.0]
    """
    import dask.array as da
    import xarray as xr

    from ..io.hdf5 import open_h5file
    from .stats import as_images

    path = Path(os.fspath(path))
    if not path.exists():
        raise InputNotFoundError("no such image set", path)
    if images_per_chunk is not None and (isinstance(images_per_chunk, bool) or int(images_per_chunk) < 1):
        raise ParameterError(f"images_per_chunk must be >= 1, got {images_per_chunk!r}")
    if format not in (None, "gan-imageset") or path.is_dir() or not sniff_imageset(path):
        if path.is_file() and format in (None, "gan-imageset"):
            with open_h5file(path) as f:  # a legacy file without "0": say so
                if "0" not in f:
                    raise FormatError("not an image set: no image '0' at the root", path)
        import lazyastro

        arr = lazyastro.open(path, format=None if format == "gan-imageset" else format)
        if hasattr(arr, "data_vars"):
            arr = arr[next(iter(arr.data_vars))]
        images = as_images(arr)
        if images_per_chunk:
            images = images.chunk({"image": int(images_per_chunk)})
        images.attrs = {k: list(map(float, v)) for k, v in images.attrs.items() if k in CONSTANTS}
        return images
    with open_h5file(path) as f:
        names = image_names(f, path)
        if not names:
            raise FormatError("the image set is empty (no image '0')", path)
        first = f["0"]
        shape, dtype = first.shape, first.dtype
        if len(shape) != 2 or dtype.kind not in "biuf":
            raise FormatError(f"image '0' must be a 2-D real array, got shape {shape} dtype {dtype}", path)
        for n in names:
            ds = f[n]
            if not hasattr(ds, "shape") or ds.shape != shape:
                raise FormatError(f"image {n!r} has shape {getattr(ds, 'shape', None)}, image '0' {shape} "
                                  "(all images must have one shape)", path)
        attrs = _constants_from(f)
    n = len(names)
    if images_per_chunk is None:
        images_per_chunk = max(1, (64 << 20) // max(1, shape[0] * shape[1] * dtype.itemsize))
    step = int(images_per_chunk)
    chunks = (tuple(min(step, n - i) for i in range(0, n, step)), (shape[0],), (shape[1],))
    st = path.stat()
    from dask.base import tokenize

    name = "gan-imageset-" + tokenize(str(path.resolve()), st.st_size, st.st_mtime_ns, n, shape, dtype.str, step)
    data = da.map_blocks(_read_block, str(path), dtype.str, chunks=chunks, dtype=dtype, name=name,
                         meta=np.empty((0, 0, 0), dtype))
    return xr.DataArray(data, dims=("image", "y", "x"), name="images", attrs=attrs)


def lognorminfo_of(images: Any, path: Any = None) -> list[float]:
    """The ``lognorminfo`` of an opened image set, or a clear error when it has none.

    Examples
    --------
    >>> lognorminfo_of(open_imageset("/tmp/_doc_set.h5"))
    [0.0, 1.0]
    """
    info = getattr(images, "attrs", {}).get("lognorminfo")
    if info is None:
        raise FormatError("lognorminfo not found in image set file (run `lazyastro gan denormprep` "
                          "on the real set, or copy it from there)", path)
    info = [float(v) for v in info]
    if len(info) != 2 or not all(math.isfinite(v) for v in info) or not info[1] > info[0]:
        raise FormatError(f"lognorminfo must be two finite numbers Lmin < Lmax, got {info}", path)
    return info


# --------------------------------------------------------------------------- writing


class ImageSetTarget(StreamTarget):
    """The legacy HDF5 image-set layout as a :class:`~lazyastro.core.stream.StreamTarget`.

    One dataset per image (``"0"`` ...) plus the constants; blocks of whole images,
    written by one process (``single_writer``), flushed before they are recorded.
    """

    format = "gan-imageset"
    single_writer = True

    def __init__(self, path, *, constants: dict | None = None):
        super().__init__(path)
        self.constants = {k: [float(x) for x in v] for k, v in (constants or {}).items() if v is not None}

    def params(self) -> dict:
        return {"constants": self.constants}

    def is_own_output(self, path: Path) -> bool:
        return path.is_file() and sniff_imageset(path)

    def check(self, variables: list[Variable]) -> None:
        if len(variables) != 1 or len(variables[0].shape) != 3:
            raise ParameterError("an image set is one 3-D array (image, y, x)")
        if variables[0].shape[0] == 0:
            raise ParameterError("the image set is empty")
        if variables[0].dtype.kind not in "biuf":
            raise ParameterError(f"images must be real-valued, got dtype {variables[0].dtype}")

    def chunks(self, var_index, var):
        n, h, w = var.shape
        return (var.data.chunks[0], (h,), (w,))

    def create(self, tmp: Path, variables: list[Variable]) -> None:
        from ..io.hdf5_write import new_file

        with new_file(tmp) as f:  # no object times: a resumed or repeated run gives the same bytes
            self._layout(f, variables)

    def _layout(self, f, variables: list[Variable]) -> None:
        """Every dataset of the file, its space allocated now: writes then change no metadata.

        (Space given on first write would put the images at other offsets when a run is
        interrupted and resumed: same contents, other bytes.)
        """
        from ..io.hdf5_write import fixed_dataset

        n, h, w = variables[0].shape
        for i in range(n):
            fixed_dataset(f, str(i), (h, w), variables[0].dtype)
        for k, v in self.constants.items():
            fixed_dataset(f, k, (len(v),), np.float64, data=np.asarray(v, dtype=np.float64))

    def write(self, tmp: Path, var_index, region, block) -> None:
        import h5py

        with h5py.File(tmp, "r+") as f:
            for k, i in enumerate(range(region[0].start, region[0].stop)):
                f[str(i)][...] = block[k]
            f.flush()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())


def write_imageset(images: Any, path: str | os.PathLike, *, lognorminfo: Any = None,
                   musigmainfo: Any = None, dtype: Any = None, overwrite: bool = False,
                   scheduler: str | None = None, progress: bool | None = None) -> str:
    """Write an image set (legacy HDF5 layout, or Zarr for a ``.zarr`` path), streamed and atomic.

    Parameters
    ----------
    images : array or xarray.DataArray (image, y, x)
        The images (lazy or in memory).
    path : path-like
        Output; written as ``<path>.partial`` and renamed when complete (a rerun after an
        interruption resumes).
    lognorminfo, musigmainfo : array-like of 2 floats, optional
        Constants to store (default: those in ``images.attrs``).
    dtype : dtype, optional
        Cast the images (the legacy splitters write float64).
    overwrite : bool, optional
        Replace an existing image set.
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    OutputExistsError, ParameterError

    Examples
    --------
    >>> import numpy as np
    >>> write_imageset(np.zeros((2, 3, 3)), "/tmp/_doc_set2.h5", overwrite=True, progress=False)
    '/tmp/_doc_set2.h5'
    """
    import xarray as xr

    from .stats import as_images

    imgs = as_images(images)
    attrs = dict(getattr(images, "attrs", {}) or {})
    consts = {"lognorminfo": lognorminfo if lognorminfo is not None else attrs.get("lognorminfo"),
              "musigmainfo": musigmainfo if musigmainfo is not None else attrs.get("musigmainfo")}
    for k, v in consts.items():
        if v is not None and np.asarray(v).size != 2:
            raise ParameterError(f"{k} must hold two numbers, got {v!r}")
    if dtype is not None:
        imgs = imgs.astype(dtype)
    path = Path(os.fspath(path))
    if _is_zarr(path):
        from ..io.zarr_write import to_zarr

        arr = xr.DataArray(imgs.data, dims=("image", "y", "x"), name="images",
                           attrs={k: [float(x) for x in np.ravel(v)] for k, v in consts.items() if v is not None})
        return to_zarr(arr, path, overwrite=overwrite, scheduler=scheduler, progress=progress)
    target = ImageSetTarget(path, constants={k: np.ravel(v).tolist() for k, v in consts.items() if v is not None})
    return store(imgs.data, target, overwrite=overwrite, scheduler=scheduler, progress=progress,
                 desc=f"write {path.name}")


# --------------------------------------------------------------------------- denormprep


def _image_moments(block):
    x = np.asarray(block, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([x.mean(axis=(1, 2)), (x * x).mean(axis=(1, 2)), np.log(x.min(axis=(1, 2))),
                         np.log(x.max(axis=(1, 2))), np.isnan(x).any(axis=(1, 2))], axis=1)


def normalisation_constants(images: Any, *, legacy: bool = False, scheduler: str | None = None,
                            path: Any = None) -> tuple[list[float], list[float]]:
    """``(lognorminfo, musigmainfo)`` of an image set, as ``denormprep`` computes them.

    Parameters
    ----------
    images : xarray.DataArray (image, y, x) or array
        The real image set (all pixels positive).
    legacy : bool, optional
        Reproduce the legacy numbers: ``Lmin``/``Lmax`` start at ``1e100``/``1e-100`` (so
        ``Lmax`` stays ``1e-100`` when every image is below 1) and
        ``sigma = sqrt(E[x^2] - mu)``. Default: ``Lmax`` starts at -inf and
        ``sigma = sqrt(E[x^2] - mu^2)``.
    scheduler : str, optional
        Dask scheduler.
    path : path-like, optional
        Named in errors.

    Returns
    -------
    (list of 2 floats, list of 2 floats)
        ``[Lmin, Lmax]`` (natural logs) and ``[mu, sigma]``.

    Raises
    ------
    FormatError
        NaN or non-positive pixels.

    Examples
    --------
    >>> import numpy as np
    >>> ln, ms = normalisation_constants(np.full((2, 2, 2), np.e))
    >>> [round(v, 12) for v in ln], ms
    ([1.0, 1.0], [2.718281828459045, 0.0])
    """
    from ..core.execution import compute
    from .stats import as_images

    imgs = as_images(images)
    data = imgs.data
    mom = data.map_blocks(_image_moments, drop_axis=2, chunks=(data.chunks[0], (5,)), dtype=np.float64,
                          meta=np.empty((0, 0)))
    (m,) = compute(mom, scheduler=scheduler, progress=False)
    m = np.asarray(m)
    if m[:, 4].any():
        i = int(np.nonzero(m[:, 4])[0][0])
        raise FormatError(f"image {i} has NaN pixels", path)
    bad = ~np.isfinite(m[:, 2])
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise FormatError(f"image {i} has non-positive pixels (the log-normalisation needs x > 0)", path)
    lmin, lmax = (1e100, 1e-100) if legacy else (math.inf, -math.inf)
    for lo, hi in m[:, 2:4]:  # sequential, as the legacy loop
        lmin = min(lmin, float(lo))
        lmax = max(lmax, float(hi))
    mu = float(np.mean(m[:, 0]))
    sq = float(np.mean(m[:, 1]))
    if legacy:  # the legacy defect, NaN when E[x^2] < mu as numpy gives it
        with np.errstate(invalid="ignore"):
            sigma = float(np.sqrt(sq - mu))
    else:
        sigma = math.sqrt(max(sq - mu * mu, 0.0))
    return [lmin, lmax], [mu, sigma]


def denormprep(path: str | os.PathLike, *, legacy: bool = False, overwrite: bool = False,
               scheduler: str | None = None) -> tuple[list[float], list[float]]:
    """Compute and store ``lognorminfo`` and ``musigmainfo`` in a real image set (legacy ``denormprep.py``).

    Parameters
    ----------
    path : path-like
        A legacy HDF5 or a Zarr image set, modified in place (the constants only).
    legacy : bool, optional
        The legacy numbers (see :func:`normalisation_constants`).
    overwrite : bool, optional
        Replace constants that are already there (otherwise a second run is refused).
    scheduler : str, optional
        Dask scheduler.

    Returns
    -------
    (list, list)
        ``lognorminfo`` and ``musigmainfo`` as written.

    Raises
    ------
    OutputExistsError
        The constants exist and ``overwrite`` is not set.
    FormatError
        Not an image set, NaN or non-positive pixels.

    Examples
    --------
    >>> import numpy as np
    >>> _ = write_imageset(np.full((2, 2, 2), np.e), "/tmp/_doc_dp.h5", overwrite=True, progress=False)
    >>> denormprep("/tmp/_doc_dp.h5")[1]
    [2.718281828459045, 0.0]
    """
    path = Path(os.fspath(path))
    images = open_imageset(path)
    present = [k for k in CONSTANTS if k in images.attrs]
    if present and not overwrite:
        raise OutputExistsError(f"the image set already has {' and '.join(present)} "
                                "(denormprep ran before; use overwrite=True / --overwrite to recompute)", path)
    ln, ms = normalisation_constants(images, legacy=legacy, scheduler=scheduler, path=path)
    if _is_zarr(path):
        import zarr

        node = zarr.open(str(path), mode="r+")
        node.attrs.update({"lognorminfo": ln, "musigmainfo": ms})
        return ln, ms
    from ..io.hdf5 import open_h5file

    with open_h5file(path, "r+") as f:
        for k, v in (("lognorminfo", ln), ("musigmainfo", ms)):
            if k in f:
                del f[k]
            f.create_dataset(k, data=np.asarray(v, dtype=np.float64))
        f.flush()
    return ln, ms


# --------------------------------------------------------------------------- splitters


def _write_part(images, out, legacy, overwrite, scheduler, progress):
    consts = {} if legacy else {k: images.attrs.get(k) for k in CONSTANTS}
    part = images.copy()
    part.attrs = {}
    return write_imageset(part, out, dtype=np.float64, overwrite=overwrite, scheduler=scheduler,
                          progress=progress, **consts)


def split_at(path: str | os.PathLike, index: int, first: str | os.PathLike, second: str | os.PathLike, *,
             legacy: bool = False, overwrite: bool = False, scheduler: str | None = None,
             progress: bool | None = None) -> tuple[str, str]:
    """Split an image set: images ``0 .. index`` (inclusive) to ``first``, the rest (renumbered) to ``second``.

    Parameters
    ----------
    path : path-like
        The image set.
    index : int
        Last image of the first part (legacy ``imagesetsplitter.py`` semantics).
    first, second : path-like
        Outputs (float64 images).
    legacy : bool, optional
        Drop the constants like the legacy splitter (default: copy them, so both parts
        keep the source's normalisation).
    overwrite, scheduler, progress
        As :func:`write_imageset`.

    Returns
    -------
    (str, str)

    Raises
    ------
    ParameterError
        ``index`` outside ``0 .. n-2`` (both parts must have images).

    Examples
    --------
    >>> split_at("/tmp/_doc_set.h5", 0, "/tmp/_doc_a.h5", "/tmp/_doc_b.h5", overwrite=True, progress=False)
    ('/tmp/_doc_a.h5', '/tmp/_doc_b.h5')
    """
    images = open_imageset(path)
    n = images.shape[0]
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < n - 1:
        raise ParameterError(f"split index must be in 0..{n - 2} for {n} images, got {index!r}")
    a = _write_part(images.isel(image=slice(0, index + 1)), first, legacy, overwrite, scheduler, progress)
    b = _write_part(images.isel(image=slice(index + 1, None)), second, legacy, overwrite, scheduler, progress)
    return a, b


def odd_even(path: str | os.PathLike, even: str | os.PathLike, odd: str | os.PathLike, *,
             legacy: bool = False, overwrite: bool = False, scheduler: str | None = None,
             progress: bool | None = None) -> tuple[str, str]:
    """Split an image set into its even- and odd-indexed images, each renumbered from 0.

    Parameters
    ----------
    path : path-like
        The image set (at least 2 images).
    even, odd : path-like
        Outputs (float64 images).
    legacy : bool, optional
        Drop the constants like the legacy splitter (default: copy them).
    overwrite, scheduler, progress
        As :func:`write_imageset`.

    Returns
    -------
    (str, str)

    Examples
    --------
    >>> odd_even("/tmp/_doc_set.h5", "/tmp/_doc_e.h5", "/tmp/_doc_o.h5", overwrite=True, progress=False)
    ('/tmp/_doc_e.h5', '/tmp/_doc_o.h5')
    """
    images = open_imageset(path)
    if images.shape[0] < 2:
        raise ParameterError(f"odd-even split needs at least 2 images, got {images.shape[0]}", path)
    a = _write_part(images.isel(image=slice(0, None, 2)), even, legacy, overwrite, scheduler, progress)
    b = _write_part(images.isel(image=slice(1, None, 2)), odd, legacy, overwrite, scheduler, progress)
    return a, b
