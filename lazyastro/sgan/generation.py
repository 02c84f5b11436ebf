"""Seeded generation of ``n`` images of noise side ``z_size``: a lazy ``(image, band, y, x)`` DataArray.

Each image is its own noise field (the noise of image ``i`` depends only on the seed and
``i``), generated tile by tile like :func:`lazyastro.sgan.tessellate` (same exact,
shape-independent evaluator, so memory stays at a few tiles however large the image), then
de-normalised to physical units with the model's metadata. The legacy post-processing is
available: ``rescale`` (subtract the left edge of the modal bin of a 10000-bin histogram, per
image and band) and ``shuffle`` (permute, seeded, the values below 1 sigma of the sky peak);
both need a whole image band in memory.

>>> import numpy as np
>>> from lazyastro.sgan.kernels import Layer
>>> g = [Layer("conv_transpose", np.full((4, 4, 1, 2), 0.1, "f4"), stride=2, activation="sigmoid")]
>>> imgs = generate(g, z_size=3, n=2, seed=0)
>>> imgs.dims, imgs.shape
(('image', 'band', 'y', 'x'), (2, 1, 6, 6))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import ParameterError
from ..core.random import block_rng, check_seed, grid_random, standard_normal
from . import kernels as K
from .noise import DEFAULT_BLOCK
from .receptive import receptive_field
from .tiling import GeneratorRef, _positive, _window, default_tile, resolve_model

__all__ = ["generate", "postprocess_image"]


def _image_tile(ref: GeneratorRef, spec: dict, block_info=None) -> np.ndarray:
    (i0, i1), (b0, b1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
    up, nz, c = spec["up"], spec["z_size"], spec["channels"]
    wy = _window(y0, y1, up, nz, spec["halo"])
    wx = _window(x0, x1, up, nz, spec["halo"])
    out = np.empty((i1 - i0, b1 - b0, y1 - y0, x1 - x0), dtype=np.float32)
    layers = ref.layers()
    for k, i in enumerate(range(i0, i1)):
        z = grid_random(spec["seed"], (spec["n"], nz, nz, c), (1, spec["noise_block"], spec["noise_block"], c),
                        standard_normal, (slice(i, i + 1), slice(*wy), slice(*wx), slice(0, c)),
                        dtype=np.float32)[0]
        g = K.run_layers(layers, z, origin=(wy[0], wx[0]), block=spec["block"],
                        align=spec["align"])
        g = g[y0 - wy[0] * up:y1 - wy[0] * up, x0 - wx[0] * up:x1 - wx[0] * up, b0:b1]
        out[k] = K.denormalise(np.moveaxis(g, -1, 0), spec["band_min"][b0:b1], spec["band_max"][b0:b1])
    return out


def postprocess_image(image: np.ndarray, *, rescale: bool, shuffle: bool, seed: int, index: tuple[int, int],
                      bins: int = 10000, shuffle_bins: int = 100000) -> np.ndarray:
    """The legacy FITS post-processing of one image band: modal-bin rescale, then seeded shuffle.

    Parameters
    ----------
    image : ndarray (y, x)
    rescale, shuffle : bool
    seed : int
    index : (image, band)
        Picks the shuffle's random generator (``block_rng(seed, index, stream=1)``).

    Returns
    -------
    ndarray (y, x) float32

    Examples
    --------
    >>> img = np.array([[0.0, 1.0], [1.0, 5.0]], "f4")
    >>> postprocess_image(img, rescale=True, shuffle=False, seed=0, index=(0, 0), bins=5).tolist()
    [[-1.0, 0.0], [0.0, 4.0]]
    """
    out = np.asarray(image, dtype=np.float32)
    if rescale:
        lo, hi = float(out.min()), float(out.max())
        if hi > lo:
            counts, edges = np.histogram(out, bins=bins, range=(lo, hi))
            out = (out - np.float32(K.modal_offset(counts, edges))).astype(np.float32)
    if shuffle:
        lo, hi = float(out.min()), float(out.max())
        if hi > lo:
            counts, edges = np.histogram(out, bins=shuffle_bins, range=(lo, hi))
            sigma = K.shuffle_threshold(counts, edges)
            out = K.shuffle_noise(out, sigma, block_rng(seed, index, stream=1))
    return out


def _post_block(block, rescale, shuffle, seed, block_info=None):
    (i0, _), (b0, _), _, _ = block_info[0]["array-location"]
    return postprocess_image(block[0, 0], rescale=rescale, shuffle=shuffle, seed=seed, index=(i0, b0))[None, None]


def generate(
    model: Any = None,
    *,
    z_size: int,
    n: int = 1,
    seed: int,
    shuffle: bool = False,
    rescale: bool = False,
    legacy: bool = False,
    tile: int | None = None,
    bands: Sequence[int | str] | None = None,
    noise_block: int = DEFAULT_BLOCK,
):
    """``n`` seeded images of ``upsampling * z_size`` pixels: a lazy DataArray ``(image, band, y, x)``.

    Parameters
    ----------
    model : path, SGANModel, keras.Model or list of Layer, optional
        The generator (default: the built-in model).
    z_size : int
        Noise side (``-z``); output side ``upsampling * z_size`` (``-z 232`` -> 3712 px).
    n : int
        Number of images.
    seed : int
        Non-negative seed; image ``i`` depends only on ``(seed, i)``.
    shuffle, rescale : bool
        The legacy post-processing (see the module docstring).
    legacy : bool
        Hard-coded XDF constants and the generator's own axes (as the legacy scripts wrote).
    tile : int, optional
        Tile side (output px) of the generation tasks (default: as :func:`lazyastro.sgan.tessellate`).
    bands : sequence of int or str, optional
        Subset of bands.
    noise_block : int
        Side of the fixed noise blocks (changing it changes the noise).

    Returns
    -------
    xarray.DataArray
        float32, physical units; attrs ``BUNIT``, ``MODELSHA``, ``SEED``, ``ZSIZE``, ``bands``.

    Raises
    ------
    ParameterError
        Bad z size, n, seed, tile or bands.
    NotFullyConvolutionalError, InputNotFoundError, FormatError
        As for :func:`lazyastro.sgan.tessellate`.

    Examples
    --------
    >>> import numpy as np
    >>> from lazyastro.sgan.kernels import Layer
    >>> g = [Layer("conv_transpose", np.full((4, 4, 1, 2), 0.1, "f4"), stride=2)]
    >>> a = generate(g, z_size=4, n=3, seed=1).values
    >>> b = generate(g, z_size=4, n=1, seed=1).values
    >>> bool(np.array_equal(a[:1], b))
    True
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    z_size = _positive("z_size", z_size)
    n = _positive("n", n)
    seed = check_seed(seed)
    tile = None if tile is None else _positive("tile", tile)
    noise_block = _positive("noise_block", noise_block)
    ref, layers, meta = resolve_model(model)
    rf = receptive_field(layers)
    if tile is None:
        tile = default_tile(rf)
    up = rf.upsampling
    if legacy:
        from .model import LEGACY_META

        if len(meta["bands"]) != len(LEGACY_META["bands"]):
            raise ParameterError(f"legacy constants are for {len(LEGACY_META['bands'])} bands, "
                                 f"the model makes {len(meta['bands'])}")
        meta = {**meta, "bands": LEGACY_META["bands"], "band_min": LEGACY_META["band_min"],
                "band_max": LEGACY_META["band_max"]}
    names = [str(b) for b in meta["bands"]]
    nb = len(names)
    channels = int(meta.get("noise_channels", 0)) or int(
        next(x for x in layers if x.kind != "activation").kernel.shape[-1])
    spec = {"up": up, "z_size": z_size, "n": n, "halo": (rf.lead, rf.trail), "channels": channels, "seed": seed,
            "noise_block": noise_block, "block": K.BLOCK, "align": -rf.lead,
            "band_min": [float(v) for v in meta["band_min"]],
            "band_max": [float(v) for v in meta["band_max"]]}
    side = up * z_size
    tiles = da.core.normalize_chunks(tile, (side,))[0]
    chunks = ((1,) * n, (nb,), tiles, tiles)
    name = "sgan-images-" + tokenize(ref.token, spec, chunks, "v1")
    data = da.map_blocks(_image_tile, ref, spec, chunks=chunks, dtype=np.float32,
                         meta=np.empty((0, 0, 0, 0), dtype=np.float32), name=name)
    swap = meta.get("layout") == "legacy" and not legacy
    if swap:
        data = data.transpose(0, 1, 3, 2)
    if rescale or shuffle:
        data = data.rechunk((1, 1, side, side)).map_blocks(_post_block, rescale, shuffle, seed, dtype=np.float32,
                                                           meta=np.empty((0, 0, 0, 0), dtype=np.float32))
    out = xr.DataArray(data, dims=("image", "band", "y", "x"), coords={"image": np.arange(n), "band": names},
                       name="images")
    out.attrs.update({"bands": names, "BUNIT": str(meta.get("units", "")), "MODELSHA": ref.token, "SEED": seed,
                      "ZSIZE": z_size, "NOISEBLK": noise_block, "LEGACY": bool(legacy), "RESCALED": bool(rescale),
                      "SHUFFLED": bool(shuffle), "TRANSPOS": bool(swap)})
    if bands is not None:
        from .tiling import _select_bands

        out = _select_bands(out, bands, names)
    return out
