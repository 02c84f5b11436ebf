"""Looking at generated fields: asinh-stretched 8-bit images and RGB previews of any-size mosaics.

- :func:`stretch`: an in-memory image ``(y, x)`` or ``(y, x, 3)`` -> uint8, one asinh stretch for
  all bands (so the colour balance of the bands is kept).
- :func:`preview`: a lazy ``(band, y, x)`` mosaic of any size -> a small uint8 RGB (or grey)
  image: an optional region, a block-mean downsampling to at most ``max_side`` pixels computed
  chunk by chunk (memory bounded by the chunks, not the mosaic), then :func:`stretch`.
- :func:`write_preview`: the same, written atomically as a PNG.

>>> import numpy as np, xarray as xr
>>> m = xr.DataArray(np.random.default_rng(0).random((3, 64, 48), dtype="f4"), dims=("band", "y", "x"))
>>> preview(m, max_side=16).shape
(16, 12, 3)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

from ..core.errors import ParameterError

__all__ = ["stretch", "preview", "write_preview", "parse_region"]


def stretch(image: np.ndarray, *, softening: float = 0.3,
            limits: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """An 8-bit display of an image ``(y, x, bands)``: asinh stretch, the same for all bands.

    Values are scaled from ``limits`` (default (0, 1), the normalised range, so that samples of
    different checkpoints and the real data look alike; ``None``: the 0.5th and 99.9th
    percentiles of all finite values, all bands together) to [0, 1], then
    ``asinh(v / softening) / asinh(1 / softening)``.

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` or ``(y, x, bands)``; 3 bands give RGB, others show band 0.
    softening : float, optional
        The asinh softening (smaller: stronger stretch of faint levels).
    limits : (float, float) or None, optional
        Values shown as black and white.

    Returns
    -------
    numpy.ndarray
        uint8 ``(y, x, 3)`` or ``(y, x)``; non-finite values are black.

    Examples
    --------
    >>> stretch(np.linspace(0, 1, 12).reshape(2, 2, 3)).dtype
    dtype('uint8')
    >>> stretch(np.array([[0.0, 1.0]])).tolist()
    [[0, 255]]
    """
    if not softening > 0:
        raise ParameterError(f"softening must be > 0, got {softening}")
    img = np.asarray(image, dtype="float64")
    if img.ndim == 3 and img.shape[-1] != 3:
        img = img[..., 0]
    finite = np.isfinite(img)
    if limits is None:
        lo, hi = np.percentile(img[finite], [0.5, 99.9]) if finite.any() else (0.0, 1.0)
    else:
        lo, hi = limits
    v = np.clip((np.where(finite, img, lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    v = np.arcsinh(v / softening) / np.arcsinh(1 / softening)
    return (v * 255 + 0.5).astype("uint8")


def parse_region(text: str | None) -> tuple[slice, slice] | None:
    """``"Y0:Y1,X0:X1"`` (pixel ranges, ends exclusive, either end may be empty) -> two slices.

    Examples
    --------
    >>> parse_region("100:612,:512")
    (slice(100, 612, None), slice(None, 512, None))
    """
    if text is None:
        return None
    try:
        parts = [p.split(":") for p in text.split(",")]
        if len(parts) != 2 or any(len(p) != 2 for p in parts):
            raise ValueError
        return tuple(slice(int(a) if a.strip() else None, int(b) if b.strip() else None) for a, b in parts)
    except ValueError:
        raise ParameterError(f"a region is Y0:Y1,X0:X1 in pixels, got {text!r}") from None


def preview(mosaic, *, max_side: int = 2048, region: tuple[slice, slice] | str | None = None,
            bands: Sequence[int] | None = None, softening: float = 0.3,
            limits: tuple[float, float] | None = None, scheduler: str | None = None) -> np.ndarray:
    """A small display image of a lazy ``(band, y, x)`` mosaic of any size.

    Parameters
    ----------
    mosaic : xarray.DataArray (band, y, x) or (y, x)
        Lazy (dask) or in memory, e.g. :func:`lazyastro.sgan.tessellate` or
        ``lazyastro.open("mosaic.zarr")``.
    max_side : int, optional
        Largest side of the result: the (region of the) mosaic is averaged in square blocks of
        ``ceil(side / max_side)`` pixels (edge pixels that do not fill a block are dropped).
    region : (slice, slice) or "Y0:Y1,X0:X1", optional
        Show only this part (e.g. a full-resolution crop across a tile seam).
    bands : sequence of int, optional
        Three band indices shown as red, green, blue (default: bands 0, 1, 2 when there are 3;
        band 0 in grey otherwise).
    softening, limits
        As for :func:`stretch`; the default limits are percentiles of the downsampled image,
        the same for all bands.
    scheduler : str, optional
        Dask scheduler of the downsampling.

    Returns
    -------
    numpy.ndarray
        uint8 ``(y, x, 3)`` (RGB) or ``(y, x)`` (grey).

    Raises
    ------
    ParameterError
        Bad ``max_side``, region or band indices.

    Examples
    --------
    >>> import xarray as xr
    >>> m = xr.DataArray(np.ones((3, 10, 10), "f4"), dims=("band", "y", "x"))
    >>> preview(m, max_side=5, region="0:4,0:10").shape
    (2, 5, 3)
    """
    from ..core.execution import compute

    if isinstance(max_side, bool) or not isinstance(max_side, int | np.integer) or max_side < 1:
        raise ParameterError(f"max_side must be a positive integer, got {max_side!r}")
    m = mosaic if "band" in mosaic.dims else mosaic.expand_dims("band")
    if set(m.dims) != {"band", "y", "x"}:
        raise ParameterError(f"a mosaic has dims (band, y, x), got {tuple(mosaic.dims)}")
    m = m.transpose("band", "y", "x")
    nb = m.sizes["band"]
    if bands is None:
        bands = [0, 1, 2] if nb == 3 else [0]
    bands = [int(b) for b in bands]
    if len(bands) not in (1, 3) or any(not 0 <= b < nb for b in bands):
        raise ParameterError(f"bands must be 1 or 3 indices below {nb}, got {bands}")
    m = m.isel(band=bands)
    if isinstance(region, str):
        region = parse_region(region)
    if region is not None:
        m = m.isel(y=region[0], x=region[1])
    if m.sizes["y"] == 0 or m.sizes["x"] == 0:
        raise ParameterError(f"the region is empty (mosaic {mosaic.sizes['y']} x {mosaic.sizes['x']} px)")
    f = max(1, math.ceil(max(m.sizes["y"], m.sizes["x"]) / max_side))
    if f > 1:
        m = m.coarsen(y=f, x=f, boundary="trim").mean()
        if m.sizes["y"] == 0 or m.sizes["x"] == 0:
            raise ParameterError(f"the region is thinner than one {f} x {f} px block; lower the downsampling")
    data = m.data
    img = np.asarray(compute(data, scheduler=scheduler, progress=False)[0] if hasattr(data, "dask") else data)
    img = np.moveaxis(img, 0, -1)
    return stretch(img if len(bands) == 3 else img[..., 0], softening=softening, limits=limits)


def write_preview(mosaic, path: str | os.PathLike, *, overwrite: bool = False, **options) -> str:
    """:func:`preview` written atomically as a PNG; returns the path.

    Examples
    --------
    >>> import tempfile, xarray as xr
    >>> m = xr.DataArray(np.zeros((3, 8, 8), "f4"), dims=("band", "y", "x"))
    >>> write_preview(m, tempfile.mkdtemp() + "/p.png").endswith("p.png")
    True
    """
    from PIL import Image

    from ..core.atomic import atomic_output

    img = preview(mosaic, **options)
    with atomic_output(path, overwrite=overwrite) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
    return str(path)
