"""Spatial GAN preprocessing: optional rotation and crop, per-band percentile clip, min-max scaling.

The spec's XDF notebook, generalised: any registry format (FITS, Zarr, HDF5, TIFF, npy), a list
of single-band files (one band each, in sorted order like the legacy notebook), an RGB image
(PNG/JPEG), a ``skimage:NAME`` sample image, or an array ``(band, y, x)``. The result is a lazy
DataArray ``(band, y, x)`` in [0, 1] whose attrs hold what generation needs to write physical
units (``bands``, ``band_min``, ``band_max``, ``units``, ``preprocessing``); :func:`model_meta`
turns them into the metadata stored with a trained model.

Large inputs stay lazy: the percentile is exact and computed in a few dask passes (range, then
histograms that narrow down the bin holding the wanted rank, then the few values of that bin),
never by loading a whole band. Rotation is the one step that works on a whole band in memory
(``scipy.ndimage.rotate``, one band at a time, as a dask task); leave it off for large mosaics.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, ParameterError, reading
from ..core.paths import require_input

__all__ = ["preprocess", "band_percentile", "model_meta", "load_source", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp")
_HIST_BINS = 4096
_SELECT_LIMIT = 4_000_000  # values of the final bin gathered in memory for the exact rank


def _skimage_image(name: str) -> tuple[np.ndarray, str]:
    try:
        import skimage.data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ParameterError("skimage: sources need scikit-image (pip install 'lazyastro[gan]')") from exc
    if name not in getattr(skimage.data, "__all__", ()) or name in ("download_all", "lfw_subset", "data_dir"):
        raise ParameterError(f"skimage:{name}: not an image of skimage.data")
    img = getattr(skimage.data, name)()
    return np.asarray(img), f"skimage:{name}"


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with reading(path, "image"):
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "I", "I;16", "F", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im)


def load_source(data: Any, *, band_axis: int | None = None, bands: list[str] | None = None):
    """Any supported input as a lazy DataArray ``(band, y, x)`` plus a description of the source.

    Parameters
    ----------
    data : str, path, list of paths, numpy/dask array or xarray.DataArray
        See :func:`preprocess`.
    band_axis : int, optional
        The band axis of a 3-D array (default 0; RGB images have their bands last and are
        detected).
    bands : list of str, optional
        Band names (default: from the source, else ``band0, band1, ...``).

    Returns
    -------
    (xarray.DataArray, str)
        The bands (not normalised) and a text naming the source.

    Raises
    ------
    InputNotFoundError, FormatError, ParameterError
    """
    import dask.array as da
    import xarray as xr

    names: list[str] | None = None
    units = None
    if isinstance(data, (list, tuple)) and data and all(isinstance(p, (str, os.PathLike)) for p in data):
        paths = sorted(os.fspath(p) for p in data)
        layers = []
        for p in paths:
            arr, _ = load_source(p)
            if arr.sizes["band"] != 1:
                raise FormatError(f"a list of files needs one band per file, this one has {arr.sizes['band']}", p)
            layers.append(arr.data[0])
        shapes = {a.shape for a in layers}
        if len(shapes) != 1:
            raise FormatError(f"the band files differ in shape: {sorted(shapes)}", paths[0])
        arr = da.stack(layers)
        names = [Path(p).name.split(".")[0] for p in paths]
        source = ",".join(paths)
    elif isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        if text.startswith("skimage:"):
            img, source = _skimage_image(text[len("skimage:"):])
            arr, names = _from_image(img)
        else:
            path = require_input(text, kind="any")
            source = os.fspath(path)
            if path.suffix.lower() in IMAGE_SUFFIXES:
                arr, names = _from_image(_read_image(path))
            else:
                import lazyastro

                opened = lazyastro.open(path)
                units = opened.attrs.get("units") or opened.attrs.get("BUNIT")
                if "bands" in opened.attrs and isinstance(opened.attrs["bands"], (list, tuple)):
                    names = list(opened.attrs["bands"])
                arr = _to_band_first(opened, band_axis, source)
    elif isinstance(data, xr.DataArray):
        source = str(data.attrs.get("source", "DataArray"))
        units = data.attrs.get("units")
        if "band" in data.dims:
            if "band" in data.coords:
                names = [str(v) for v in data["band"].values]
            data = data.transpose("band", ...)
        arr = _to_band_first(data, band_axis, source)
    else:
        a = data if hasattr(data, "dask") else np.asarray(data)
        source = "array"
        if a.ndim == 3 and band_axis is None and a.shape[-1] in (3, 4) and a.shape[0] > 4 and a.dtype == np.uint8:
            arr, names = _from_image(np.asarray(a))
        else:
            arr = _to_band_first(a, band_axis, source)
    if not isinstance(arr, da.Array):
        arr = da.from_array(np.asarray(arr), chunks=(1, -1, -1))
    if arr.dtype.kind not in "iuf":
        raise FormatError(f"the image must be numeric, got dtype {arr.dtype}", source if source != "array" else None)
    if bands is not None:
        if len(bands) != arr.shape[0]:
            raise ParameterError(f"{len(bands)} band names for {arr.shape[0]} bands")
        names = [str(b) for b in bands]
    if names is None or len(names) != arr.shape[0]:
        names = [f"band{i}" for i in range(arr.shape[0])]
    out = xr.DataArray(arr, dims=("band", "y", "x"), coords={"band": names})
    if units:
        out.attrs["units"] = str(units)
    return out, source


def _from_image(img: np.ndarray):
    import dask.array as da

    if img.ndim == 2:
        return da.from_array(img[None], chunks=-1), ["L"]
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        img = img[..., :3]
        return da.from_array(np.ascontiguousarray(np.moveaxis(img, -1, 0)), chunks=(1, -1, -1)), ["R", "G", "B"]
    raise FormatError(f"an image must be grayscale or RGB, got shape {img.shape}")


def _to_band_first(a, band_axis: int | None, source: str):
    import dask.array as da

    data = a.data if hasattr(a, "dims") else a
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=-1)
    where = None if source in ("array", "DataArray") else source
    if data.ndim == 2:
        return data[None]
    if data.ndim != 3:
        raise FormatError(f"need an image (y, x) or a cube (band, y, x), got {data.ndim} dimensions", where)
    ax = 0 if band_axis is None else band_axis
    if not -3 <= ax < 3:
        raise ParameterError(f"band_axis must be 0, 1, 2 or negative, got {band_axis}")
    return da.moveaxis(data, ax, 0)


def band_percentile(band, q: float, *, bins: int = _HIST_BINS, select_limit: int = _SELECT_LIMIT) -> float:
    """Exact ``numpy.nanpercentile(band, q)`` (linear interpolation) of a lazy 2-D band.

    A range pass, then histograms over the bin that holds the wanted rank until that bin has at
    most ``select_limit`` values, which are then gathered and ranked exactly. Memory is the
    histogram plus ``select_limit`` values, whatever the band's size.

    Parameters
    ----------
    band : dask or numpy array
        Any shape; NaNs are ignored.
    q : float
        Percentile in [0, 100].
    bins : int, optional
        Bins of each histogram pass.
    select_limit : int, optional
        At most this many values are gathered in memory.

    Returns
    -------
    float

    Raises
    ------
    ParameterError
        If ``q`` is out of range.
    FormatError
        If the band has no finite value.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 60))
    >>> bool(band_percentile(x, 99.0) == np.percentile(x, 99.0))
    True
    """
    import dask
    import dask.array as da

    if not (isinstance(q, (int, float)) and 0 <= q <= 100) or isinstance(q, bool):
        raise ParameterError(f"percentile must be in [0, 100], got {q!r}")
    x = band if isinstance(band, da.Array) else da.from_array(np.asarray(band), chunks=-1)
    x = x.ravel().astype("float64")
    finite = da.isfinite(x)
    lo, hi, n = dask.compute(da.nanmin(x), da.nanmax(x), finite.sum())
    n = int(n)
    if n == 0:
        raise FormatError("the band has no finite value")
    pos = q / 100.0 * (n - 1)
    k = int(math.floor(pos))
    frac = pos - k
    a, b = float(lo), float(hi)
    inside, below_est = n, 0  # values in [a, b] and below a, as the histograms count them
    for _ in range(32):
        if inside <= select_limit or b - a <= 8 * bins * np.spacing(max(abs(a), abs(b))):
            break  # few enough values, or the window cannot be split further
        counts = da.histogram(x, bins=bins, range=(a, b))[0].compute()
        cum = below_est + np.cumsum(counts)
        i = min(int(np.searchsorted(cum, k, side="right")), bins - 1)
        edges = np.linspace(a, b, bins + 1)
        # a window of three bins around it: histogram edge rounding cannot move a value that far
        j0, j1 = max(i - 1, 0), min(i + 2, bins)
        new_inside = int(counts[j0:j1].sum())
        if new_inside >= inside:
            break  # no progress (ties)
        below_est += int(counts[:j0].sum())
        a, b, inside = float(edges[j0]), float(edges[j1]), new_inside
    # one exact pass: values below the window, the window's values, the next value above it
    sel = (x >= a) & (x <= b)
    below, count_in, vmin, vmax, above = dask.compute(
        (x < a).sum(), sel.sum(), da.nanmin(da.where(sel, x, np.inf)), da.nanmax(da.where(sel, x, -np.inf)),
        da.nanmin(da.where(x > b, x, np.inf)))
    below, count_in = int(below), int(count_in)
    r = k - below
    if not 0 <= r < count_in:  # pragma: no cover - the window always holds rank k
        raise FormatError(f"percentile search lost rank {k} (window [{a}, {b}])")
    if vmin == vmax:  # a single distinct value (ties): no need to gather
        v_k = float(vmin)
        v_k1 = v_k if r + 1 < count_in else float(above)
    else:
        vals = np.sort(x[sel].compute())
        v_k = float(vals[r])
        v_k1 = float(vals[r + 1]) if r + 1 < vals.size else float(above)
    if frac == 0 or k + 1 >= n:
        return v_k
    diff = v_k1 - v_k  # numpy's linear interpolation, in its exact form
    return float(v_k1 - diff * (1 - frac)) if frac >= 0.5 else float(v_k + diff * frac)


def _rotate_band(block: np.ndarray, angle: float) -> np.ndarray:
    from scipy import ndimage

    return ndimage.rotate(block[0].astype("float64"), angle, order=3, reshape=True, mode="constant",
                          cval=0.0)[None].astype("float32")


def preprocess(data: Any, *, bands: list[str] | None = None, band_axis: int | None = None,
               units: str | None = None, rotate: float | None = None,
               crop: tuple[tuple[int, int], tuple[int, int]] | None = None, clip_percentile: float | None = 99.99,
               select: list[int] | None = None):
    """Preprocess images for the Spatial GAN: rotate, crop, clip the upper tail, min-max per band.

    The spec's steps (section 1), each optional: rotation by ``rotate`` degrees (cubic spline,
    output enlarged to hold the whole rotated image, 0 fill), crop ``[y0:y1, x0:x1]``, per-band
    clip of values above the ``clip_percentile``-th percentile (the low tail is kept), per-band
    ``(x - min) / (max - min)``. Band order is kept as given; no axis swap (the legacy cube is
    transposed, this one is ``(band, y, x)`` in sky orientation).

    Parameters
    ----------
    data : str, path, list of paths, array or xarray.DataArray
        A file of any registry format (FITS, Zarr, HDF5, TIFF, npy: ``(y, x)`` or
        ``(band, y, x)``), a PNG/JPEG image (RGB -> bands R, G, B), ``"skimage:NAME"`` (an image
        of ``skimage.data``, e.g. ``skimage:hubble_deep_field``), a list of single-band files
        (sorted by name, like the legacy notebook), or an array ``(band, y, x)`` (an 8-bit
        ``(y, x, 3)`` array is read as RGB).
    bands : list of str, optional
        Band names (default from the source: file names, RGB, or ``band0...``).
    band_axis : int, optional
        The band axis of a 3-D array or file (default 0).
    units : str, optional
        Pixel units (default from the source's ``units``/``BUNIT``, else ``"unknown"``).
    rotate : float, optional
        Rotation angle in degrees (43.25 for the legacy XDF); loads one band at a time.
    crop : ((int, int), (int, int)), optional
        ``((y0, y1), (x0, x1))`` applied after the rotation (legacy: ``((2080, 5320), (2080, 5320))``).
    clip_percentile : float or None, optional
        Upper clip percentile (99.99); ``None`` disables the clip.
    select : list of int, optional
        Keep these bands (after loading; legacy: ``[1, 2, 3]`` of the five XDF bands).

    Returns
    -------
    xarray.DataArray
        Lazy float32 ``(band, y, x)`` in [0, 1]; attrs ``bands``, ``band_min``, ``band_max``,
        ``units``, ``preprocessing`` (a JSON text of the settings) and ``source``.

    Raises
    ------
    InputNotFoundError, FormatError, ParameterError

    Examples
    --------
    >>> import numpy as np
    >>> cube = np.random.default_rng(0).normal(size=(2, 40, 50)).astype("float32")
    >>> out = preprocess(cube, bands=["a", "b"])
    >>> out.dims, out.shape, out.attrs["bands"]
    (('band', 'y', 'x'), (2, 40, 50), ['a', 'b'])
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    """
    import dask.array as da

    arr, source = load_source(data, band_axis=band_axis, bands=bands)
    names = [str(v) for v in arr["band"].values]
    if units is None:
        units = arr.attrs.get("units", "unknown")
    x = arr.data
    if select is not None:
        sel = [int(i) for i in select]
        if not sel or any(i < 0 or i >= x.shape[0] for i in sel):
            raise ParameterError(f"select {select!r} out of range for {x.shape[0]} bands")
        x = x[sel]
        names = [names[i] for i in sel]
    if rotate is not None:
        angle = float(rotate)
        if not math.isfinite(angle):
            raise ParameterError(f"rotate must be a finite angle, got {rotate!r}")
        shape = _rotated_shape(x.shape[1:], angle)
        x = x.rechunk((1, -1, -1)).map_blocks(_rotate_band, angle, dtype="float32", chunks=((1,) * x.shape[0],) +
                                              tuple((s,) for s in shape))
    if crop is not None:
        try:
            (y0, y1), (x0, x1) = crop
            y0, y1, x0, x1 = (int(v) for v in (y0, y1, x0, x1))
        except (TypeError, ValueError):
            raise ParameterError(f"crop must be ((y0, y1), (x0, x1)), got {crop!r}") from None
        if not (0 <= y0 < y1 <= x.shape[1] and 0 <= x0 < x1 <= x.shape[2]):
            raise ParameterError(f"crop {crop!r} is outside the image of {x.shape[1]} x {x.shape[2]} pixels")
        x = x[:, y0:y1, x0:x1]
    if clip_percentile is not None and not (0 < float(clip_percentile) <= 100):
        raise ParameterError(f"clip_percentile must be in (0, 100], got {clip_percentile!r}")
    lo_list, hi_list = [], []
    out_bands = []
    for c in range(x.shape[0]):
        band = x[c].astype("float64")
        lo = float(da.nanmin(band).compute())
        hi = band_percentile(band, float(clip_percentile)) if clip_percentile is not None else float(
            da.nanmax(band).compute())
        if not hi > lo:
            raise FormatError(f"band {names[c]!r} is constant after clipping (min {lo}, max {hi})",
                              source if source not in ("array", "DataArray") else None)
        lo_list.append(lo)
        hi_list.append(hi)
        out_bands.append(((da.minimum(band, hi) - lo) / (hi - lo)).astype("float32"))
    import xarray as xr

    settings = {"source": source, "rotate": rotate, "crop": None if crop is None else [list(map(int, c)) for c in crop],
                "clip_percentile": clip_percentile, "normalise": "minmax", "select": select,
                "band_axis": band_axis}
    out = xr.DataArray(da.stack(out_bands), dims=("band", "y", "x"), coords={"band": names}, name="sgan_input")
    out.attrs.update({"bands": names, "band_min": lo_list, "band_max": hi_list, "units": str(units),
                      "preprocessing": json.dumps(settings), "source": source})
    return out


def _rotated_shape(shape: tuple[int, int], angle: float) -> tuple[int, int]:
    """The output shape of ``scipy.ndimage.rotate(reshape=True)`` for a 2-D input (its formula)."""
    rad = np.deg2rad(angle)
    c, s = np.cos(rad), np.sin(rad)
    rot = np.array([[c, s], [-s, c]])
    iy, ix = shape[1], shape[0]  # scipy's plane shape for axes=(1, 0)
    bounds = rot @ np.array([[0, 0, iy, iy], [0, ix, 0, ix]])
    out = (np.ptp(bounds, axis=1) + 0.5).astype(int)
    return int(out[1]), int(out[0])


def model_meta(data, **extra: Any) -> dict:
    """The model metadata (what :func:`lazyastro.sgan.save_model` stores) from preprocessed attrs.

    Parameters
    ----------
    data : xarray.DataArray
        The output of :func:`preprocess` (or any DataArray with its attrs).
    **extra
        More keys (``architecture``, ``training``, ...).

    Returns
    -------
    dict

    Raises
    ------
    FormatError
        If the attrs lack the normalisation constants.

    Examples
    --------
    >>> import numpy as np
    >>> m = model_meta(preprocess(np.arange(200.0).reshape(2, 10, 10), clip_percentile=None))
    >>> m["bands"], m["band_min"], m["band_max"]
    (['band0', 'band1'], [0.0, 100.0], [99.0, 199.0])
    """
    attrs = data.attrs
    for key in ("bands", "band_min", "band_max"):
        if key not in attrs:
            raise FormatError(f"the training data has no {key!r} attribute (run lazyastro.sgan.preprocess first)")
    prep = attrs.get("preprocessing", "{}")
    if isinstance(prep, str):
        try:
            prep = json.loads(prep)
        except ValueError:
            prep = {"text": prep}
    meta = {"bands": [str(b) for b in attrs["bands"]], "band_min": [float(v) for v in attrs["band_min"]],
            "band_max": [float(v) for v in attrs["band_max"]], "units": str(attrs.get("units", "unknown")),
            "preprocessing": prep, "layout": "default"}
    meta.update(extra)
    return meta
