"""DRE model cubes: a lazy grid of pixel-integrated Sérsic stamps, stored as Zarr or as the legacy mosaic.

A cube is an :class:`xarray.DataArray` named ``"models"`` with dims
``("n", "q", "theta", "log_r", "y", "x")``, float32, 1-D coordinates on the four grid dims and
attrs ``{"boxsize": B, "centre": [B//2, B//2], "profile": "sersic"}``:

* ``n``: Sérsic index; ``q``: axis ratio (minor/major, <= 1); ``theta``: position angle in
  degrees, counter-clockwise from +x (SExtractor ``THETA_IMAGE``); ``log_r``: log10 of the
  effective (half-light) radius R_e in pixels;
* ``y`` = row, ``x`` = column; the profile centre is the centre of pixel (B//2, B//2)
  (= (64, 64) for B = 128), where the cutouts put the catalogue position;
* every stamp is normalised to sum 1 over the stamp: the light beyond the B x B box is
  dropped (truncation; it matters only for the largest radii, e.g. ~20 % of a De
  Vaucouleurs profile with R_e = 50 px falls outside 128 px), and the fit rescales the
  flux anyway.

The pixel integration is in :mod:`lazyastro.dre.kernels_models` (adaptive: 3-adic rings around
the cusp in the central pixel, cells from the local slope elsewhere); it is good to 1e-3 of the
stamp flux (sum of absolute pixel errors) for radii down to 0.25 px.

On disk: a Zarr v3 array (grid coordinates in the attribute ``"grid"``) written through the
streaming engine (resumable, atomic), or the legacy FITS mosaic (``layout="legacy"``): primary
HDU, float32, NumPy shape ``(NAXRAT, NPOSANG*B, NLOGH*B)`` (a leading ``NINDEX`` axis when there
is more than one index), stamp (t, r) at rows ``t*B:(t+1)*B`` and columns ``r*B:(r+1)*B``, the
grids in the header keys ``NAXRAT, DAXRAT, AXRAT0, NPOSANG, DPOSANG, POSANG0, NLOGH, DLOGH,
LOGH0, BOXSIZE, NINDEX, DINDEX, INDEX0`` (value = ``X0 + arange(NX) * DX``). :func:`open_models`
reads both; a legacy file without the index keys is a De Vaucouleurs cube
(``NINDEX=1, DINDEX=0, INDEX0=4.0``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, ParameterError

__all__ = ["make_models", "open_models", "write_models", "default_grid", "default_models", "GRID_DIMS",
           "DIMS"]

GRID_DIMS = ("n", "q", "theta", "log_r")
DIMS = GRID_DIMS + ("y", "x")
#: (legacy count, step, start) header keys per grid dim
_LEGACY_KEYS = {"n": ("NINDEX", "DINDEX", "INDEX0"), "q": ("NAXRAT", "DAXRAT", "AXRAT0"),
                "theta": ("NPOSANG", "DPOSANG", "POSANG0"), "log_r": ("NLOGH", "DLOGH", "LOGH0")}
_COMMENTS = {"n": "Sersic index", "q": "axis ratio b/a", "theta": "pos. angle (deg CCW from +x)",
             "log_r": "log10 R_e (pixels)"}
#: bump when the rendered pixels change (names the default cube in the cache)
GENERATOR_VERSION = 1


def default_grid() -> dict[str, np.ndarray]:
    """The grid of the legacy (shipped) cube: 2730 De Vaucouleurs models.

    ``n = [4]``, ``q = 0.1 ... 1.0`` step 0.1 (10), ``theta = 0 ... 180`` step 15 (13; 0 and 180
    are the same model, kept for legacy compatibility), ``log_r = linspace(log10 0.25, log10 50, 21)``.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``n, q, theta, log_r`` (float64).

    Examples
    --------
    >>> g = default_grid()
    >>> [len(g[k]) for k in ("n", "q", "theta", "log_r")], float(g["q"][2]), round(float(g["log_r"][0]), 4)
    ([1, 10, 13, 21], 0.3, -0.6021)
    """
    return {
        "n": np.array([4.0]),
        "q": np.round(np.linspace(0.1, 1.0, 10), 12),
        "theta": np.linspace(0.0, 180.0, 13),
        "log_r": np.linspace(np.log10(0.25), np.log10(50.0), 21),
    }


def _grid_values(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a sequence of numbers, got {values!r}") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(f"{name} must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ParameterError(f"{name} must be finite, got {arr.tolist()}")
    if name == "n" and (arr.min() < 0.2 or arr.max() > 10):
        raise ParameterError(f"n (Sérsic index) must lie in [0.2, 10], got {arr.tolist()}")
    if name == "q" and (arr.min() <= 0 or arr.max() > 1):
        raise ParameterError(f"q (axis ratio) must lie in (0, 1], got {arr.tolist()}")
    if name == "log_r" and (arr.min() < np.log10(0.05) or arr.max() > 4):
        raise ParameterError(f"log_r must lie in [log10 0.05, 4] (R_e 0.05 px to 1e4 px), got {arr.tolist()}")
    return arr


def _chunk_sizes(chunks: Any, shape: dict[str, int]) -> tuple[int, ...]:
    default = {"n": 1, "q": 1, "theta": shape["theta"], "log_r": shape["log_r"]}
    if chunks is None:
        chunks = {}
    if not isinstance(chunks, dict):
        raise ParameterError(f"chunks must be a dict over {GRID_DIMS}, got {chunks!r}")
    unknown = set(chunks) - set(GRID_DIMS)
    if unknown:
        raise ParameterError(f"chunks: unknown dims {sorted(unknown)}; use {GRID_DIMS}")
    out = []
    for d in GRID_DIMS:
        c = chunks.get(d, default[d])
        c = shape[d] if c in (-1, None) else c
        if not isinstance(c, int | np.integer) or c < 1:
            raise ParameterError(f"chunks[{d!r}] must be a positive int or -1, got {c!r}")
        out.append(int(min(c, shape[d])))
    return tuple(out)


def _render_block(grid: dict, boxsize: int, oversample: float, block_info=None) -> np.ndarray:
    """One block of the cube (the task of :func:`make_models`)."""
    from .kernels_models import DEFAULT_RULE, render_stamps

    loc = block_info[None]["array-location"]
    vals = [np.asarray(grid[d])[slice(*loc[i])] for i, d in enumerate(GRID_DIMS)]
    mesh = np.meshgrid(*vals, indexing="ij")
    shape = mesh[0].shape
    st = render_stamps(mesh[0].ravel(), mesh[1].ravel(), mesh[2].ravel(), 10.0 ** mesh[3].ravel(), boxsize,
                       accuracy=DEFAULT_RULE["accuracy"] * oversample,
                       central_cells=DEFAULT_RULE["central_cells"] * oversample)
    return st.astype(np.float32).reshape(shape + (boxsize, boxsize))


def make_models(*, n: Any = (4.0,), q: Any = None, theta: Any = None, log_r: Any = None, boxsize: int = 128,
                oversample: float = 1.0, chunks: dict | None = None):
    """Lazy cube of pixel-integrated Sérsic models on a grid of (n, q, theta, log_r).

    Parameters
    ----------
    n, q, theta, log_r : sequence of float, optional
        The grid: Sérsic index (0.2..10), axis ratio (0, 1], position angle (degrees, CCW from
        +x, SExtractor ``THETA_IMAGE``), log10 effective radius (pixels). ``None`` takes
        :func:`default_grid`'s values.
    boxsize : int
        Stamp size B (>= 8); the profile centre is the centre of pixel (B//2, B//2).
    oversample : float
        Multiplies the adaptive number of integration cells (1 = the default rule, good to
        1e-3 of the flux; larger is finer and slower).
    chunks : dict, optional
        Models per task along each grid dim (default one task per (n, q) slab:
        ``{"n": 1, "q": 1, "theta": -1, "log_r": -1}``).

    Returns
    -------
    xarray.DataArray
        ``"models"``, dims ``("n", "q", "theta", "log_r", "y", "x")``, float32, dask-backed;
        each stamp sums to 1 (truncated at the stamp edge).

    Raises
    ------
    ParameterError
        A grid value out of range, a bad box size or chunks.

    Examples
    --------
    >>> m = make_models(q=[0.5, 1.0], theta=[0.0, 90.0], log_r=[0.0, 0.5], boxsize=32)
    >>> m.dims, m.shape
    (('n', 'q', 'theta', 'log_r', 'y', 'x'), (1, 2, 2, 2, 32, 32))
    >>> st = m.sel(q=0.5, theta=0.0, log_r=0.5).squeeze().values
    >>> round(float(st.sum()), 5), bool(st[16, 18] > st[18, 16])  # elongated along x at theta = 0
    (1.0, True)
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    dflt = default_grid()
    grid = {d: _grid_values(d, dflt[d] if v is None else v) for d, v in zip(GRID_DIMS, (n, q, theta, log_r))}
    if not isinstance(boxsize, int | np.integer) or isinstance(boxsize, bool) or boxsize < 8:
        raise ParameterError(f"boxsize must be an int >= 8, got {boxsize!r}")
    boxsize = int(boxsize)
    try:
        oversample = float(oversample)
    except (TypeError, ValueError):
        raise ParameterError(f"oversample must be a number, got {oversample!r}") from None
    if not (1.0 <= oversample <= 64.0):
        raise ParameterError(f"oversample must lie in [1, 64], got {oversample}")
    shape = {d: len(grid[d]) for d in GRID_DIMS}
    csize = _chunk_sizes(chunks, shape)
    full = tuple(shape[d] for d in GRID_DIMS) + (boxsize, boxsize)
    dchunks = da.core.normalize_chunks(csize + (boxsize, boxsize), full)
    from .kernels_models import DEFAULT_RULE

    name = "sersic-models-" + tokenize({d: grid[d].tolist() for d in grid}, boxsize, oversample, csize,
                                       sorted(DEFAULT_RULE.items()), GENERATOR_VERSION)
    data = da.map_blocks(_render_block, {d: grid[d] for d in GRID_DIMS}, boxsize, oversample, chunks=dchunks,
                         dtype=np.float32, meta=np.empty((0,) * 6, dtype=np.float32), name=name)
    return xr.DataArray(data, dims=DIMS, coords=dict(grid), name="models", attrs=_attrs(boxsize))


def _attrs(boxsize: int) -> dict:
    return {"boxsize": int(boxsize), "centre": [int(boxsize) // 2, int(boxsize) // 2], "profile": "sersic",
            "log_r": "log10 effective (half-light) radius in pixels",
            "theta": "degrees, counter-clockwise from +x (SExtractor THETA_IMAGE)"}


def _check_models(models) -> None:
    import xarray as xr

    if not isinstance(models, xr.DataArray):
        raise ParameterError(f"models must be an xarray.DataArray (make_models/open_models), got {type(models).__name__}")
    if tuple(models.dims) != DIMS:
        raise ParameterError(f"models must have dims {DIMS}, got {tuple(models.dims)}")
    if models.shape[-1] != models.shape[-2]:
        raise ParameterError(f"model stamps must be square, got {models.shape[-2:]}")
    for d in GRID_DIMS:
        if d not in models.coords:
            raise ParameterError(f"models lack the {d!r} coordinate")


def _legacy_header(models):
    from astropy.io import fits

    header = fits.Header()
    for d in GRID_DIMS:
        vals = np.asarray(models[d].values, dtype=np.float64)
        step = 0.0 if vals.size == 1 else (vals[-1] - vals[0]) / (vals.size - 1)
        if vals.size > 2 and not np.allclose(np.diff(vals), step, rtol=1e-6, atol=1e-9):
            raise ParameterError(f"the legacy layout needs an evenly spaced {d} grid, got {vals.tolist()}")
        kn, kd, k0 = _LEGACY_KEYS[d]
        header[kn] = (int(vals.size), f"count: {_COMMENTS[d]}")
        header[kd] = (float(step), f"step of {_COMMENTS[d]}")
        header[k0] = (float(vals[0]), f"first {_COMMENTS[d]}")
    header["BOXSIZE"] = (int(models.shape[-1]), "stamp size (pixels)")
    header["PROFILE"] = ("sersic", "I = exp(-b_n [(R/R_e)^(1/n) - 1])")
    header["CENTRE"] = (int(models.shape[-1]) // 2, "0-based stamp centre pixel (x and y)")
    return header


def write_models(models, path: str | os.PathLike, *, layout: str = "zarr", overwrite: bool = False,
                 scheduler: str | None = None, progress: bool | None = None) -> str:
    """Write a model cube as a Zarr store or as the legacy FITS mosaic (streamed, resumable, atomic).

    Parameters
    ----------
    models : xarray.DataArray
        A cube from :func:`make_models` or :func:`open_models`.
    path : path-like
        Output ``.zarr`` directory or ``.fits`` file.
    layout : {"zarr", "legacy"}
        ``"legacy"``: the FITS mosaic of the legacy tool (float32, header grid keys; the grids
        must be evenly spaced).
    overwrite : bool
        Replace an existing output.
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ParameterError
        Not a model cube, an unknown layout, an uneven grid for the legacy layout.

    Examples
    --------
    >>> import os, tempfile
    >>> m = make_models(q=[0.5, 1.0], theta=[0.0], log_r=[0.0], boxsize=16)
    >>> out = write_models(m, os.path.join(tempfile.mkdtemp(), "m.fits"), layout="legacy", progress=False)
    >>> open_models(out).shape
    (1, 2, 1, 1, 16, 16)
    """
    _check_models(models)
    if layout not in ("zarr", "legacy"):
        raise ParameterError(f"layout must be 'zarr' or 'legacy', got {layout!r}")
    data = models.data
    if not hasattr(data, "dask"):
        import dask.array as da

        data = da.from_array(np.asarray(data), chunks=(1, 1, -1, -1, -1, -1))
    data = data.astype(np.float32)
    if layout == "zarr":
        import xarray as xr

        from ..io.zarr_write import to_zarr

        attrs = {k: v for k, v in models.attrs.items() if k not in ("source", "format", "header", "grid")}
        attrs.update({"boxsize": int(models.shape[-1]), "profile": attrs.get("profile", "sersic")})
        attrs["grid"] = {d: [float(v) for v in np.asarray(models[d].values)] for d in GRID_DIMS}
        out = xr.DataArray(data, dims=DIMS, name="models", attrs=attrs)
        return to_zarr(out, path, overwrite=overwrite, scheduler=scheduler, progress=progress)
    from ..io.fits_write import to_fits

    header = _legacy_header(models)  # an astropy Header (cards with comments)
    nn, nq, nt, nr, b, _ = data.shape
    mosaic = data.transpose(0, 1, 2, 4, 3, 5).reshape(nn, nq, nt * b, nr * b)
    if nn == 1:
        mosaic = mosaic[0]
    return to_fits(mosaic, path, header=header, overwrite=overwrite, scheduler=scheduler, progress=progress)


def open_models(path: str | os.PathLike, *, chunks: Any = None):
    """Open a model cube (Zarr store or legacy FITS mosaic) lazily.

    Parameters
    ----------
    path : path-like
        A ``.zarr`` store written by :func:`write_models` or a legacy FITS mosaic.
    chunks : optional
        Dask chunks of a Zarr cube (default: its storage chunks); a legacy mosaic is read one
        (n, q) plane per task.

    Returns
    -------
    xarray.DataArray
        Dims ``("n", "q", "theta", "log_r", "y", "x")``, float32, with the grid coordinates.

    Raises
    ------
    InputNotFoundError, FormatError
        No such file; not a model cube (missing header keys, wrong shape, no grid).

    Examples
    --------
    >>> import os, tempfile
    >>> m = make_models(q=[1.0], theta=[0.0], log_r=[0.0, 0.5], boxsize=16)
    >>> out = write_models(m, os.path.join(tempfile.mkdtemp(), "m.zarr"), progress=False)
    >>> c = open_models(out)
    >>> c.log_r.values.tolist(), bool((c.values == m.values).all())
    ([0.0, 0.5], True)
    """
    from ..core.paths import require_input

    p = require_input(path, kind="any")
    if p.is_dir():
        return _open_zarr_models(p, chunks)
    return _open_legacy_models(p)


def _open_zarr_models(path: Path, chunks: Any):
    import xarray as xr

    from ..io.zarr import open_zarr

    arr = open_zarr(path, chunks=chunks)
    if tuple(arr.dims) != DIMS:
        raise FormatError(f"not a model cube: dims {tuple(arr.dims)}, expected {DIMS}", path)
    grid = arr.attrs.get("grid")
    if not isinstance(grid, dict) or any(d not in grid for d in GRID_DIMS):
        raise FormatError("not a model cube: attribute 'grid' with n, q, theta, log_r missing", path)
    coords = {}
    for i, d in enumerate(GRID_DIMS):
        vals = np.asarray(grid[d], dtype=np.float64)
        if vals.shape != (arr.shape[i],):
            raise FormatError(f"grid attribute {d!r} has {vals.size} values for {arr.shape[i]} models", path)
        coords[d] = vals
    attrs = {k: v for k, v in arr.attrs.items() if k != "grid"}
    attrs.setdefault("profile", "sersic")
    attrs["boxsize"] = int(arr.shape[-1])
    attrs["centre"] = [int(arr.shape[-1]) // 2] * 2
    return xr.DataArray(arr.data, dims=DIMS, coords=coords, name="models", attrs=attrs)


def _card(header, key: str, path: Path, kind, default=None):
    if key not in header:
        if default is not None:
            return default
        raise FormatError(f"header key {key} missing (not a legacy model cube)", path)
    try:
        value = kind(header[key])
    except (TypeError, ValueError):
        raise FormatError(f"header key {key} = {header[key]!r} is not a number", path) from None
    if not np.isfinite(value):
        raise FormatError(f"header key {key} = {header[key]!r} is not finite", path)
    return value


def _open_legacy_models(path: Path):
    import xarray as xr

    from ..io.fits import fits_layout, open_fits

    lay = fits_layout(path)
    header, shape = lay["header"], tuple(lay["shape"])
    b = _card(header, "BOXSIZE", path, int)
    counts, coords = {}, {}
    for d in GRID_DIMS:
        kn, kd, k0 = _LEGACY_KEYS[d]
        dflt = (1, 0.0, 4.0) if d == "n" else (None, None, None)
        nval = _card(header, kn, path, int, dflt[0])
        step = _card(header, kd, path, float, dflt[1])
        start = _card(header, k0, path, float, dflt[2])
        if nval < 1:
            raise FormatError(f"header key {kn} = {nval} must be >= 1", path)
        counts[d] = nval
        coords[d] = start + np.arange(nval) * step
    nn, nq, nt, nr = (counts[d] for d in GRID_DIMS)
    expect = (nq, nt * b, nr * b) if len(shape) == 3 else (nn, nq, nt * b, nr * b)
    if len(shape) not in (3, 4) or shape != expect or (len(shape) == 3 and nn != 1):
        raise FormatError(f"data shape {shape} does not match the header grid (NINDEX={nn}, NAXRAT={nq}, "
                          f"NPOSANG={nt}, NLOGH={nr}, BOXSIZE={b}): expected {expect}", path)
    if b < 1:
        raise FormatError(f"header key BOXSIZE = {b} must be >= 1", path)
    plane = (1,) * (len(shape) - 2) + shape[-2:]
    img = open_fits(path, chunks=plane, dims=("n", "q", "row", "col")[-len(shape):])
    data = img.data.reshape((nn, nq, nt, b, nr, b)).transpose(0, 1, 2, 4, 3, 5).astype(np.float32)
    attrs = _attrs(b)
    attrs.update({"source": str(path), "format": "legacy-fits"})
    return xr.DataArray(data, dims=DIMS, coords=coords, name="models", attrs=attrs)


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("LAZYASTRO_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "lazyastro"
    return base / "dre"


def default_models(*, cache_dir: str | os.PathLike | None = None, scheduler: str | None = None,
                   progress: bool | None = None) -> str:
    """Path of the default-grid cube (:func:`default_grid`, B = 128), built once into a cache.

    The cube (2730 models, 179 MB float32) is rendered on first use into
    ``cache_dir`` (default ``$LAZYASTRO_CACHE/dre``, else ``~/.cache/lazyastro/dre``) through
    the streaming engine: written as ``<name>.partial`` and renamed when complete, so an
    interrupted build resumes and a half-written cube is never returned. The name carries the
    generator version, so a changed generator builds a new cube.

    Parameters
    ----------
    cache_dir : path-like, optional
        Where to keep the cube.
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str
        Path of the Zarr cube (open it with :func:`open_models`).

    Examples
    --------
    >>> default_models()  # doctest: +SKIP
    '/home/me/.cache/lazyastro/dre/sersic-default-v1.zarr'
    """
    from ..core.errors import OutputExistsError

    directory = _cache_dir(cache_dir)
    path = directory / f"sersic-default-v{GENERATOR_VERSION}.zarr"
    if path.is_dir() and (path / "zarr.json").exists():
        return str(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"cannot create the model cache directory: {exc.strerror}", directory) from None
    try:
        return write_models(make_models(**default_grid()), path, scheduler=scheduler, progress=progress)
    except OutputExistsError:  # another process finished it first
        return str(path)
