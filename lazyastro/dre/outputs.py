"""DRE outputs: chi cubes (legacy HDF5 and Zarr), the summary table joined to the catalogue, mosaics.

- **Chi HDF5** ``Chi/<name>_chi.h5`` (the legacy layout): one float32 dataset ``EE_NNNN`` per
  successfully fitted object, shape ``(NINDEX, NAXRAT, NPOSANG, NLOGH)``, compressed per level
  (``none``, ``low`` = lzf, ``medium`` = gzip 4, ``high`` = gzip 9). Written under
  ``<name>.partial`` and renamed into place, so an old file is replaced atomically.
- **Chi Zarr** ``Chi/<name>_chi.zarr``: a group written through the streaming engine
  (:func:`lazyastro.core.stream.store`, resumable per block of objects) holding ``chi2``
  ``(object, n, q, theta, log_r)``, ``ext_number`` and ``number`` along ``object`` and the grid
  ``grid_n``, ``grid_q``, ``grid_theta``, ``grid_log_r``; :func:`open_chi` reads it back as a labelled DataArray.
- **Summary** ``Summary/<name>_dre.fits``: the legacy columns (``ROW, EXT_NUMBER, NUMBER, MODEL_IDX,
  INDEX, LOGR, AX_RATIO, ANGLE, CHI, CHI_STD, LOGR_CHI, LOGR_VAR, LOGR_CHI_VAR, LOGR_PARAB,
  LOGR_STD``) plus the flags, inner-joined (``astropy.table.join``) with the SExtractor catalogue
  (every ``LDAC_OBJECTS`` HDU stacked, ``VIGNET`` dropped, join keys = the common columns).
  ``ROW`` is the object's position in the cut file among the fitted objects (0-based), so a
  rerun gives the same table whatever order the blocks finished in.
- **Mosaics** ``Mosaics/<name>/<name>_<EE_NNNN>_mosaic.fits`` (image extension after an empty
  primary HDU) and ``.png``: data, mask x F_d/N_mask, best model x F_d/F_model, residual, side by
  side as a (B, 4B) image in cut orientation; ``orientation="legacy"`` gives the legacy layout
  (each panel transposed).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import partial_path, remove_path
from ..core.errors import FormatError, InputNotFoundError, ParameterError

__all__ = [
    "COMPRESSION_LEVELS", "h5_compression", "object_key", "parse_key",
    "write_chi_h5", "read_chi_h5", "write_chi_zarr", "open_chi", "chi_zarr_token",
    "SUMMARY_COLUMNS", "FLAG_COLUMNS", "summary_table", "read_catalog", "find_catalog", "join_catalog",
    "write_summary", "mosaic_panels", "mosaic_image", "write_mosaic",
]

#: h5py keywords of the legacy compression levels (shared by the cut and chi files).
COMPRESSION_LEVELS: dict[str, dict[str, Any]] = {
    "none": {},
    "low": {"compression": "lzf"},
    "medium": {"compression": "gzip", "compression_opts": 4},
    "high": {"compression": "gzip", "compression_opts": 9},
}

#: Columns of the legacy summary, in the legacy order.
SUMMARY_COLUMNS = ("ROW", "EXT_NUMBER", "NUMBER", "MODEL_IDX", "INDEX", "LOGR", "AX_RATIO", "ANGLE", "CHI",
                   "CHI_STD", "LOGR_CHI", "LOGR_VAR", "LOGR_CHI_VAR", "LOGR_PARAB", "LOGR_STD")
#: Robustness flags appended after the legacy columns.
FLAG_COLUMNS = ("FLAG_EDGE", "FLAG_NEG_FLUX", "FLAG_ALL_NAN")

CHI_GRID = ("n", "q", "theta", "log_r")


def h5_compression(level: str) -> dict[str, Any]:
    """h5py dataset keywords for a legacy compression level.

    Parameters
    ----------
    level : {"none", "low", "medium", "high"}

    Returns
    -------
    dict

    Raises
    ------
    ParameterError
        For an unknown level.

    Examples
    --------
    >>> h5_compression("medium")
    {'compression': 'gzip', 'compression_opts': 4}
    """
    try:
        return dict(COMPRESSION_LEVELS[level])
    except (KeyError, TypeError):
        raise ParameterError(f"unknown compression {level!r}; use none, low, medium or high") from None


def object_key(ext_number: int, number: int) -> str:
    """The legacy object key ``EE_NNNN``.

    >>> object_key(1, 42)
    '01_0042'
    """
    return f"{int(ext_number):02d}_{int(number):04d}"


def parse_key(key: str) -> tuple[int, int]:
    """``(EXT_NUMBER, NUMBER)`` of a key ``EE_NNNN``.

    >>> parse_key("01_0042")
    (1, 42)
    """
    try:
        ext, num = str(key).split("_")
        return int(ext), int(num)
    except ValueError:
        raise FormatError(f"object key {key!r} is not EE_NNNN") from None


# --------------------------------------------------------------------------- chi HDF5


def write_chi_h5(path: str | os.PathLike, cubes: Iterable[tuple[str, np.ndarray]], *,
                 compression: str = "medium") -> str:
    """Write chi cubes in the legacy layout: one float32 dataset ``EE_NNNN`` per object.

    The file is written as ``<path>.partial`` and renamed over any old file at the end.

    Parameters
    ----------
    path : path-like
        Output file (``Chi/<name>_chi.h5``).
    cubes : iterable of (str, ndarray)
        ``(key, cube)`` pairs; each cube of shape ``(NINDEX, NAXRAT, NPOSANG, NLOGH)``.
    compression : {"none", "low", "medium", "high"}
        The legacy levels (lzf, gzip 4, gzip 9).

    Returns
    -------
    str
        The path.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t_chi.h5")
    >>> write_chi_h5(p, [("00_0001", np.ones((1, 2, 3, 4)))]) == p
    True
    >>> sorted(read_chi_h5(p))
    ['00_0001']
    """
    from ..io.hdf5_write import new_file

    opts = h5_compression(compression)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    remove_path(tmp)
    try:
        with new_file(tmp) as f:  # no object times: the same cubes give the same bytes
            for key, cube in cubes:
                cube = np.asarray(cube, dtype="float32")
                if cube.ndim != 4:
                    raise ParameterError(f"chi cube {key} has shape {cube.shape}; expected 4 axes (n, q, theta, log_r)")
                f.create_dataset(str(key), data=cube, **opts)
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return str(path)


def read_chi_h5(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every cube of a legacy chi file, by key (small files; tests and notebooks)."""
    import h5py

    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


# --------------------------------------------------------------------------- chi Zarr


def chi_zarr_token(path: str | os.PathLike) -> str | None:
    """The fit token stored in a finished chi Zarr group (``None`` if absent or unreadable)."""
    import json

    meta = Path(path) / "zarr.json"
    try:
        return json.loads(meta.read_text()).get("attributes", {}).get("dre_token")
    except (OSError, ValueError, AttributeError):
        return None


def _named(data, name: str):
    """The same dask array under a fixed graph name (what the engine's resume fingerprint sees)."""
    return data.map_blocks(_same, name=name, dtype=data.dtype, meta=np.empty((0,) * data.ndim, data.dtype))


def _same(block):
    return block


def write_chi_zarr(chi, path: str | os.PathLike, *, token: str, scheduler: str | None = None,
                   progress: bool | None = None, variables: dict | None = None) -> str:
    """Stream a chi cube ``(object, n, q, theta, log_r)`` into a Zarr group, resumable per block.

    Parameters
    ----------
    chi : xarray.DataArray
        Lazy chi cube chunked along ``object``; coords ``n, q, theta, log_r`` and
        ``ext_number``, ``number`` along ``object``.
    path : path-like
        ``Chi/<name>_chi.zarr``.
    token : str
        A fingerprint of every input and parameter of the fit: blocks recorded under
        another token are never reused, and a finished store with this token is the
        resume state of a rerun.
    scheduler, progress
        As for :func:`lazyastro.compute`.
    variables : dict, optional
        More lazy per-object arrays (``name -> (dims, dask array)``) stored alongside.

    Returns
    -------
    str
        The path.
    """
    import dask.array as da
    import xarray as xr

    from ..core.stream import store
    from ..io.zarr_write import ZarrTarget

    data = chi.data if isinstance(chi.data, da.Array) else da.from_array(np.asarray(chi.data), chunks=(64, -1, -1, -1, -1))
    block = int(data.chunks[0][0])
    vars_: dict[str, Any] = {"chi2": (("object", *CHI_GRID), _named(data.astype("float32"), f"dre-chi-{token}"))}
    for name in ("ext_number", "number"):
        vals = np.asarray(chi.coords[name].values, dtype="int64")
        vars_[name] = (("object",), da.from_array(vals, chunks=block, name=f"dre-{name}-{token}"))
    for name in CHI_GRID:
        vals = np.asarray(chi.coords[name].values, dtype="float64")
        # stored as data variables (a Dataset turns a variable named like its dim into a coord)
        vars_[f"grid_{name}"] = ((name,), da.from_array(vals, chunks=-1, name=f"dre-{name}-{token}"))
    for name, (dims, arr) in (variables or {}).items():
        vars_[name] = (dims, _named(arr, f"dre-{name}-{token}"))
    ds = xr.Dataset({k: xr.Variable(d, a) for k, (d, a) in vars_.items()})
    attrs = {"dre_token": token, "dre_key_format": "EE_NNNN"}
    attrs.update({k: v for k, v in chi.attrs.items() if isinstance(v, str | int | float | bool)})
    target = ZarrTarget(path, group=True, group_attrs=attrs, codec="zstd")
    return store(ds, target, overwrite=True, scheduler=scheduler, progress=progress,
                 desc=f"fit {Path(path).name.removesuffix('_chi.zarr')}")


def open_chi(path: str | os.PathLike):
    """A chi Zarr group as a lazy DataArray ``chi2 (object, n, q, theta, log_r)`` with its coords.

    Parameters
    ----------
    path : path-like
        A store written by :func:`write_chi_zarr` (``Chi/<name>_chi.zarr``).

    Returns
    -------
    xarray.DataArray
        Coords: the grid, ``object`` (``EE_NNNN``), ``ext_number``, ``number`` (and any
        other per-object variable of the store).

    Raises
    ------
    InputNotFoundError, FormatError
    """
    import dask.array as da
    import xarray as xr
    import zarr

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no chi store", path)
    try:
        group = zarr.open_group(str(path), mode="r")
        arr = group["chi2"]
        coords = {name: np.asarray(group[f"grid_{name}"][...]) for name in CHI_GRID}
        ext = np.asarray(group["ext_number"][...])
        num = np.asarray(group["number"][...])
        extra = {k: np.asarray(v[...]) for k, v in group.arrays() if k not in ("chi2", "ext_number", "number")
                 and not k.startswith("grid_")}
    except (KeyError, OSError, ValueError) as exc:
        raise FormatError(f"not a DRE chi store ({type(exc).__name__}: {exc})", path) from None
    data = da.from_zarr(arr)
    keys = np.array([object_key(e, n) for e, n in zip(ext, num)], dtype=str)
    coords.update({"object": keys, "ext_number": ("object", ext), "number": ("object", num)})
    for k, v in extra.items():
        if v.ndim >= 1 and v.shape[0] == arr.shape[0]:
            coords[k] = (("object",) + tuple(f"{k}_{i}" for i in range(1, v.ndim)), v)
    return xr.DataArray(data, dims=("object", *CHI_GRID), coords=coords, name="chi2",
                        attrs=dict(group.attrs))


# --------------------------------------------------------------------------- summary


def summary_table(params, *, keep=None):
    """The legacy summary columns (and the flags) of a parameters Dataset as an astropy Table.

    Parameters
    ----------
    params : xarray.Dataset
        Output of :func:`lazyastro.dre.parameters` (over ``object``).
    keep : array of bool, optional
        Objects to keep (default: those without ``FLAG_ALL_NAN``, the legacy failures).

    Returns
    -------
    astropy.table.Table
        ``ROW`` (0-based position among the kept objects), the legacy columns, the flags.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"NUMBER": ("object", [3, 4]), "EXT_NUMBER": ("object", [0, 0]),
    ...                  "CHI": ("object", [1.0, np.nan]),
    ...                  "FLAG_ALL_NAN": ("object", [False, True])})
    >>> t = summary_table(ds); list(t["NUMBER"]), list(t["ROW"])
    ([np.int64(3)], [np.int64(0)])
    """
    from astropy.table import Table

    if keep is None:
        keep = ~np.asarray(params["FLAG_ALL_NAN"].values, bool) if "FLAG_ALL_NAN" in params else None
    n = params.sizes.get("object", 0)
    keep = np.ones(n, bool) if keep is None else np.asarray(keep, bool)
    table = Table()
    table["ROW"] = np.arange(int(keep.sum()), dtype="int64")
    for name in SUMMARY_COLUMNS[1:] + FLAG_COLUMNS:
        if name in params:
            values = np.asarray(params[name].values)[keep]
            if values.dtype.kind in "iu":
                values = values.astype("int64")
            elif values.dtype.kind == "f" and name not in ("INDEX", "LOGR", "AX_RATIO", "ANGLE"):
                values = values.astype("float64")
            table[name] = values
    return table


def find_catalog(catalogs: str | os.PathLike | None, name: str) -> Path | None:
    """The catalogue of tile ``name`` under ``catalogs``: ``<name>/<name>_cat.fits`` or ``<name>_cat.fits``.

    ``catalogs`` may also be the catalogue file itself. ``None`` when not found.
    """
    if catalogs is None:
        return None
    root = Path(catalogs)
    if root.is_file():
        return root
    for cand in (root / name / f"{name}_cat.fits", root / f"{name}_cat.fits"):
        if cand.is_file():
            return cand
    return None


def read_catalog(path: str | os.PathLike):
    """Every ``LDAC_OBJECTS`` HDU of a FITS_LDAC catalogue, stacked, without ``VIGNET``.

    A plain FITS table (no ``LDAC_OBJECTS`` HDU) is read from its first table HDU.
    A catalogue without ``EXT_NUMBER`` gets ``EXT_NUMBER = 0`` (the cut-file key convention).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    InputNotFoundError, FormatError
        No file, no table, no rows, no ``NUMBER`` column.
    """
    from astropy.io import fits
    from astropy.table import Table, vstack

    from ..core.errors import reading

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("no catalogue", path)
    with reading(path, "catalogue"):
        with fits.open(path, memmap=False) as hdul:
            hdus = [h for h in hdul if h.name == "LDAC_OBJECTS"]
            if not hdus:
                hdus = [h for h in hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)][:1]
            if not hdus:
                raise FormatError("no LDAC_OBJECTS (or other table) HDU in the catalogue", path)
            tables = []
            for h in hdus:
                t = Table(h.data)
                if "VIGNET" in t.colnames:
                    t.remove_column("VIGNET")
                tables.append(t)
    table = vstack(tables, metadata_conflicts="silent") if len(tables) > 1 else tables[0]
    if "NUMBER" not in table.colnames:
        raise FormatError(f"catalogue has no NUMBER column (columns: {', '.join(table.colnames[:12])})", path)
    if len(table) == 0:
        raise FormatError("catalogue is empty (no objects)", path)
    if "EXT_NUMBER" not in table.colnames:
        table["EXT_NUMBER"] = np.zeros(len(table), dtype="int64")
    return table


def join_catalog(summary, catalog):
    """Inner-join the summary with the catalogue on every common column (normally NUMBER, EXT_NUMBER).

    Parameters
    ----------
    summary, catalog : astropy.table.Table

    Returns
    -------
    astropy.table.Table
        Sorted by the join keys (astropy's ``join`` order).

    Examples
    --------
    >>> from astropy.table import Table
    >>> s = Table({"ROW": [0, 1], "EXT_NUMBER": [0, 0], "NUMBER": [2, 1]})
    >>> c = Table({"EXT_NUMBER": [0, 0, 0], "NUMBER": [1, 2, 3], "FLUX": [1.0, 2.0, 3.0]})
    >>> list(join_catalog(s, c)["FLUX"])
    [np.float64(1.0), np.float64(2.0)]
    """
    from astropy.table import join

    keys = [c for c in summary.colnames if c in catalog.colnames]
    if not keys:
        raise ParameterError("the summary and the catalogue have no column in common to join on")
    for key in keys:  # FITS tables may read as big-endian or another int width
        if catalog[key].dtype.kind in "iu" and summary[key].dtype.kind in "iu":
            catalog[key] = np.asarray(catalog[key], dtype="int64")
    return join(summary, catalog, keys=keys, join_type="inner", metadata_conflicts="silent")


def write_summary(table, path: str | os.PathLike) -> str:
    """Write the summary table as FITS, atomically (``<path>.partial`` then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    remove_path(tmp)
    try:
        table.write(tmp, format="fits", overwrite=True)
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise
    return str(path)


def summary_with_catalog(table, catalog_path, *, tile: str):
    """Join ``table`` with the catalogue at ``catalog_path``; unjoined with a warning when there is none."""
    if catalog_path is None:
        warnings.warn(f"{tile}: no SExtractor catalogue found; the summary is written unjoined", stacklevel=3)
        return table
    return join_catalog(table, read_catalog(catalog_path))


# --------------------------------------------------------------------------- mosaics


def mosaic_panels(obj: np.ndarray, mask: np.ndarray, model: np.ndarray) -> np.ndarray:
    """The four mosaic panels ``(4, B, B)``: data, mask x F_d/N, scaled model, residual.

    Fluxes are summed over the mask: ``F_d = nansum(d[M])``, the model scaled by
    ``F_d / sum(model[M])``, the residual ``d - scaled model``.

    Examples
    --------
    >>> import numpy as np
    >>> d = np.ones((4, 4)); m = np.zeros((4, 4), bool); m[1:3, 1:3] = True
    >>> p = mosaic_panels(d, m, np.full((4, 4), 0.5))
    >>> p.shape, float(p[1].sum()), float(np.abs(p[3]).max())
    ((4, 4, 4), 4.0, 0.0)
    """
    obj = np.asarray(obj, dtype="float64")
    mask = np.asarray(mask, dtype=bool)
    model = np.asarray(model, dtype="float64")
    flux = float(np.nansum(obj[mask])) if mask.any() else float("nan")
    npix = int(mask.sum())
    fmodel = float(model[mask].sum()) if npix else float("nan")
    scale = flux / fmodel if fmodel else float("nan")
    scaled = model * scale
    return np.stack([obj, mask * (flux / npix if npix else np.nan), scaled, obj - scaled]).astype("float32")


def mosaic_image(panels: np.ndarray, *, orientation: str = "cut") -> np.ndarray:
    """Lay four ``(B, B)`` panels out as one ``(B, 4B)`` image.

    ``orientation="cut"``: side by side as in the cut; ``"legacy"``: the legacy
    ``(4, B, B) -> (4B, B) -> transpose`` layout (each panel transposed).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.arange(4 * 2 * 2).reshape(4, 2, 2)
    >>> mosaic_image(p)[:, :2].tolist(), mosaic_image(p, orientation="legacy")[:, :2].tolist()
    ([[0, 1], [2, 3]], [[0, 2], [1, 3]])
    """
    panels = np.asarray(panels)
    k, b, b2 = panels.shape
    if orientation == "cut":
        return np.concatenate(list(panels), axis=1)
    if orientation == "legacy":
        return panels.reshape(k * b, b2).T
    raise ParameterError(f"mosaic orientation must be 'cut' or 'legacy', got {orientation!r}")


def _png(path: Path, panels: np.ndarray, orientation: str, title: str, *, zoom: int = 2) -> None:
    """Four labelled panels as one PNG (colour-mapped arrays and Pillow; no figure: ~10 ms each).

    Data and model share one asinh stretch (set by the data's noise and peak), the mask has its
    own grey scale, the residual a symmetric asinh stretch set by the residual inside the mask.
    Row 0 is at the bottom, as in ``imshow(origin="lower")``.
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    show = [p.T if orientation == "legacy" else p for p in panels]
    data = panels[0][np.isfinite(panels[0])]
    inside = panels[1] > 0
    if data.size:
        med = float(np.median(data))
        noise = 1.4826 * float(np.median(np.abs(data - med))) or 1e-3 * float(np.abs(data).max() or 1.0)
    else:
        noise = 1.0
    peak = float(np.nanmax(panels[0])) if data.size else 1.0

    def stretch(x):
        return np.arcsinh(np.asarray(x, float) / (3.0 * noise))

    lo, hi = float(stretch(-2.0 * noise)), float(stretch(max(peak, 5.0 * noise)))
    res = panels[3][inside & np.isfinite(panels[3])]
    rmax = float(stretch(np.percentile(np.abs(res), 99.0))) if res.size else 1.0
    rmax = rmax if rmax > 0 else 1.0
    tiles = []
    for i, img in enumerate(show):
        if i == 1:
            top = float(np.nanmax(img)) or 1.0
            norm, cmap = np.asarray(img, float) / top, "gray"
        elif i == 3:
            norm, cmap = (stretch(img) + rmax) / (2 * rmax), "RdBu_r"
        else:
            norm, cmap = (stretch(img) - lo) / (hi - lo), "magma"
        rgb = colormaps[cmap](np.clip(np.nan_to_num(norm, nan=0.0), 0, 1)[::-1], bytes=True)[..., :3]
        tiles.append(np.kron(rgb, np.ones((zoom, zoom, 1), np.uint8)))
    gap, head = 6, 34
    h, w = tiles[0].shape[:2]
    canvas = np.full((h + head + gap, 4 * w + 5 * gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        x0 = gap + i * (w + gap)
        canvas[head : head + h, x0 : x0 + w] = t
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    draw.text((gap, 3), title, fill=(0, 0, 0))
    names = ("data", "mask x F/N", "model x F/F_model", "residual")
    for i, name in enumerate(names):
        draw.text((gap + i * (w + gap) + 4, 18), name, fill=(0, 0, 0))
    im.save(path, format="PNG")


def write_mosaic(directory: str | os.PathLike, tile: str, key: str, obj: np.ndarray, mask: np.ndarray,
                 model: np.ndarray, *, orientation: str = "cut", png: bool = True,
                 title: str | None = None) -> list[str]:
    """Write ``<dir>/<tile>/<tile>_<key>_mosaic.fits`` (and ``.png``) for one object.

    Parameters
    ----------
    directory : path-like
        ``Mosaics``.
    tile, key : str
        Tile name and object key ``EE_NNNN``.
    obj, mask, model : ndarray
        The cut, its mask and the best convolved model (any normalisation).
    orientation : {"cut", "legacy"}
        See :func:`mosaic_image`.
    png : bool
        Also write a PNG (four labelled panels).

    Returns
    -------
    list of str
        The paths written.
    """
    from astropy.io import fits

    out = Path(directory) / tile
    out.mkdir(parents=True, exist_ok=True)
    panels = mosaic_panels(obj, mask, model)
    image = mosaic_image(panels, orientation=orientation)
    path = out / f"{tile}_{key}_mosaic.fits"
    tmp = partial_path(path)
    hdu = fits.ImageHDU(image, name="MOSAIC")
    hdu.header["ORIENT"] = (orientation, "cut: as cut; legacy: panels transposed")
    hdu.header["PANELS"] = ("data,mask*F/N,model*F/Fm,residual", "in order")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    paths = [str(path)]
    if png:
        ppath = path.with_suffix(".png")
        tmp = partial_path(ppath)
        _png(tmp, panels, orientation, title or f"{tile} {key}")
        os.replace(tmp, ppath)
        paths.append(str(ppath))
    return paths
