"""Seam-free tiled generation of mosaics of any size: lazy, exact, resumable, bounded memory.

Every output tile is one dask task: it regenerates the noise of the tile plus a halo (the
receptive field of the generator, computed from its layers; clipped at the field edges
exactly as one-shot generation sees them) from the seed, runs the generator on it with the
shape-independent evaluator :func:`lazyastro.sgan.kernels.run_layers`, crops the halo and
de-normalises to physical units with the model's metadata. So a tiled mosaic equals the
one-shot mosaic (the whole noise field in one generator call) bit for bit, for any tile
size, overlap or scheduler, and a resumed write recomputes only the missing tiles.

The generator weights are loaded once per worker process (``functools.lru_cache`` keyed by
the model's path and SHA-256), not per tile; no TensorFlow runs in the tile tasks.

>>> import numpy as np
>>> from lazyastro.sgan.kernels import Layer
>>> layers = [Layer("conv_transpose", np.full((4, 4, 1, 2), 0.1, "f4"), stride=2, activation="sigmoid")]
>>> m = tessellate(layers, size=10, seed=1, tile=4)
>>> m.dims, m.shape, m.chunks
(('band', 'y', 'x'), (1, 10, 10), ((1,), (4, 4, 2), (4, 4, 2)))
>>> bool((tessellate(layers, size=10, seed=1, one_shot=True) == m).all())
True
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ParameterError
from ..core.random import check_seed
from . import kernels as K
from .noise import DEFAULT_BLOCK, noise_window
from .receptive import ReceptiveField, generator_layers, receptive_field

__all__ = ["tessellate", "resolve_model", "GeneratorRef", "DEFAULT_TILE", "default_tile", "write_mosaic",
           "FITS_LAYOUTS", "halo_for", "halo_cost"]

#: default tile side in output pixels: at least this, rounded up so that a tile's noise window
#: (core + halo) is a whole number of evaluator blocks (1072 for the reference architecture)
DEFAULT_TILE = 1024


def default_tile(rf: ReceptiveField, at_least: int = DEFAULT_TILE) -> int:
    """The smallest tile ``>= at_least`` whose noise window with halo is a whole number of blocks.

    Examples
    --------
    >>> from lazyastro.sgan.receptive import ReceptiveField
    >>> default_tile(ReceptiveField(3, 2, 44, 30, 3, 2, 16))
    1072
    """
    core = -(-at_least // rf.upsampling)
    while (core + rf.lead + rf.trail) % K.BLOCK:
        core += 1
    return core * rf.upsampling
FITS_LAYOUTS = ("cube", "per-band")


# --------------------------------------------------------------------------------------------- model


_SNAKE = {"Conv2DTranspose": "conv2d_transpose", "Conv2D": "conv2d"}
_ACT_LAYERS = ("Activation", "ELU", "LeakyReLU", "ReLU")


def read_layers(path: str | os.PathLike) -> list | None:
    """The layers of a ``.keras`` generator read without Keras (JSON config + HDF5 weights), or ``None``.

    Only plain data is read (no code, nothing deserialised), so this is at least as safe as
    Keras's ``safe_mode``; anything this reader does not fully understand returns ``None`` and
    the caller falls back to :func:`lazyastro.sgan.load_model`. Generation then needs no
    TensorFlow at all (about 600 MiB less memory, no import time), in the driver and in workers.
    """
    import io
    import json
    import zipfile

    try:
        import h5py

        with zipfile.ZipFile(path) as zf:
            cfg = json.loads(zf.read("config.json"))
            weights = h5py.File(io.BytesIO(zf.read("model.weights.h5")), "r")
    except Exception:
        return None
    from .kernels import ACTIVATIONS, Layer

    try:
        with weights:
            if cfg.get("class_name") not in ("Functional", "Sequential"):
                return None
            specs = cfg["config"]["layers"]
            layers, counts, channels = [], {}, None
            for i, spec in enumerate(specs):
                cls, c = spec.get("class_name"), spec.get("config", {})
                if cls == "InputLayer":
                    shape = c.get("batch_shape") or c.get("batch_input_shape")
                    channels = int(shape[-1]) if shape and shape[-1] is not None else None
                    continue
                dtype = c.get("dtype")
                if isinstance(dtype, dict):
                    dtype = dtype.get("config", {}).get("name")
                if dtype not in (None, "float32"):
                    return None
                if cls == "Functional" or i and cls not in _SNAKE and cls not in _ACT_LAYERS:
                    return None
                if cls in _ACT_LAYERS:
                    act = {"ELU": "elu", "LeakyReLU": "leaky_relu", "ReLU": "relu"}.get(cls, c.get("activation"))
                    alpha = float(c.get("alpha", c.get("negative_slope", 0.0)) or 0.0) if cls != "ReLU" else 0.0
                    if act not in ACTIVATIONS or cls == "ReLU" and (c.get("max_value") is not None
                                                                   or c.get("negative_slope") or c.get("threshold")):
                        return None
                    layers.append(Layer("activation", activation=act, alpha=alpha if cls != "Activation" else
                                        {"elu": 1.0, "leaky_relu": 0.2}.get(act, 0.0), name=c.get("name", "")))
                    continue
                n = counts.get(cls, 0)
                counts[cls] = n + 1
                key = f"layers/{_SNAKE[cls]}{'' if n == 0 else f'_{n}'}/vars"
                ks, st = tuple(c["kernel_size"]), tuple(c["strides"])
                act = c.get("activation")
                if (c.get("padding") != "same" or c.get("data_format", "channels_last") != "channels_last"
                        or tuple(c.get("dilation_rate", (1, 1))) != (1, 1) or c.get("output_padding") is not None
                        or c.get("groups", 1) != 1 or len(set(ks)) != 1 or len(set(st)) != 1
                        or not isinstance(act, str) or act not in ACTIVATIONS
                        or (cls == "Conv2D" and st[0] != 1)):
                    return None
                kernel = np.asarray(weights[key]["0"], dtype=np.float32)
                bias = np.asarray(weights[key]["1"], dtype=np.float32) if c.get("use_bias", True) else None
                kind = "conv_transpose" if cls == "Conv2DTranspose" else "conv"
                cin, cout = (kernel.shape[3], kernel.shape[2]) if kind == "conv_transpose" else kernel.shape[2:]
                if (kernel.shape[:2] != (ks[0], ks[0]) or cout != int(c["filters"])
                        or (channels is not None and cin != channels) or (bias is not None and bias.shape != (cout,))):
                    return None
                channels = int(cout)
                layers.append(Layer(kind, kernel, bias, int(st[0]), act,
                                    {"elu": 1.0, "leaky_relu": 0.2}.get(act, 0.0), c.get("name", "")))
            import re

            for cls, n in counts.items():  # every weight group of the file is one of these layers
                pat = re.compile(rf"{_SNAKE[cls]}(_\d+)?$")
                if sum(1 for name in weights["layers"] if pat.match(name)) != n:
                    return None
            return layers if any(x.kind != "activation" for x in layers) else None
    except Exception:
        return None


def _file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _load_layers(path: str, sha256: str) -> tuple[list, dict]:
    """Load a generator file once per process (the cache key includes the file's hash)."""
    if _file_sha256(path) != sha256:
        raise ParameterError(f"the model file changed since the mosaic was planned (expected sha256 "
                             f"{sha256[:12]})", path)
    layers = read_layers(path)
    if layers is not None:
        return layers, {}
    from .model import load_model

    m = load_model(path)
    return generator_layers(m.generator), dict(m.meta)


_PRIMED: dict[tuple[str, str], list] = {}
_PRIMED_LOCK = threading.Lock()


class GeneratorRef:
    """A picklable handle on a generator: a file (path + SHA-256, loaded once per worker) or layers.

    In the process that planned the graph the layers are already in memory; another
    process loads them from the file on first use (:func:`functools.lru_cache`).
    """

    def __init__(self, *, path: str | None = None, sha256: str | None = None, layers: list | None = None):
        self.path, self.sha256 = path, sha256
        self._layers = None if path is not None else layers
        if path is not None and layers is not None:
            with _PRIMED_LOCK:
                _PRIMED[(path, sha256)] = layers
        if path is None:
            self.sha256 = _layers_hash(layers)

    def __getstate__(self):
        return {"path": self.path, "sha256": self.sha256, "_layers": self._layers}

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def token(self) -> str:
        return str(self.sha256)

    def layers(self) -> list:
        if self._layers is not None:
            return self._layers
        key = (self.path, self.sha256)
        with _PRIMED_LOCK:
            primed = _PRIMED.get(key)
        if primed is not None:
            return primed
        return _load_layers(self.path, self.sha256)[0]


def _layers_hash(layers: list) -> str:
    h = hashlib.sha256()
    for layer in layers:
        h.update(repr((layer.kind, layer.stride, layer.activation, layer.alpha)).encode())
        for arr in (layer.kernel, layer.bias):
            if arr is not None:
                a = np.ascontiguousarray(arr, dtype=np.float32)
                h.update(repr(a.shape).encode())
                h.update(a.tobytes())
    return h.hexdigest()


def resolve_model(model: Any = None) -> tuple[GeneratorRef, list, dict]:
    """``(ref, layers, meta)`` of a model: ``None`` (built-in), a path, an ``SGANModel``, a Keras model
    or a list of :class:`~lazyastro.sgan.kernels.Layer` (meta: bands ``band0...``, no de-normalisation).

    Raises
    ------
    InputNotFoundError, FormatError
        Missing or unreadable model file.
    NotFullyConvolutionalError
        A layer that tiled generation cannot analyse.
    """
    if model is None or isinstance(model, str | os.PathLike):
        fast = _keras_free(model)
        if fast is not None:
            return fast
        from .model import load_model

        model = load_model(model)
    if hasattr(model, "generator") and hasattr(model, "meta"):
        layers = generator_layers(model.generator)
        meta = dict(model.meta)
        path = getattr(model, "path", None)
        sha = getattr(model, "sha256", None)
        if path is not None and sha is not None:
            return GeneratorRef(path=str(Path(path).resolve()), sha256=sha, layers=layers), layers, meta
        return GeneratorRef(layers=layers), layers, meta
    layers = generator_layers(model)
    conv = [x for x in layers if x.kind != "activation"]
    last = conv[-1]
    nb = int(last.kernel.shape[2] if last.kind == "conv_transpose" else last.kernel.shape[3])
    first = conv[0]
    nc = int(first.kernel.shape[3] if first.kind == "conv_transpose" else first.kernel.shape[2])
    meta = {"bands": [f"band{i}" for i in range(nb)], "band_min": [0.0] * nb, "band_max": [1.0] * nb,
            "units": "", "noise_channels": nc, "upsampling": K.upsampling(conv), "layout": "default"}
    return GeneratorRef(layers=layers), layers, meta


def _keras_free(model) -> tuple | None:
    """``resolve_model`` of a file without importing Keras, when the file is plain enough (else None)."""
    from ..core.paths import require_input
    from .model import builtin_model_path, read_meta

    path = builtin_model_path() if model is None else Path(model)
    if not path.exists() or path.suffix != ".keras":
        return None  # load_model gives the right error
    path = require_input(path)
    meta = read_meta(path)
    if meta is None or any(k not in meta for k in ("bands", "band_min", "band_max")):
        return None
    layers = read_layers(path)
    if layers is None:
        return None
    conv = [x for x in layers if x.kind != "activation"]
    first, last = conv[0], conv[-1]
    nc = int(first.kernel.shape[3] if first.kind == "conv_transpose" else first.kernel.shape[2])
    nb = int(last.kernel.shape[2] if last.kind == "conv_transpose" else last.kernel.shape[3])
    if not (len(meta["bands"]) == len(meta["band_min"]) == len(meta["band_max"]) == nb) or int(
            meta.get("noise_channels", nc)) != nc:
        return None
    meta = dict(meta)
    meta.setdefault("noise_channels", nc)
    meta.setdefault("upsampling", K.upsampling(conv))
    resolved = str(path.resolve())
    sha = _file_sha256(resolved)
    return GeneratorRef(path=resolved, sha256=sha, layers=layers), layers, meta


# --------------------------------------------------------------------------------------------- tiles


def _window(lo: int, hi: int, up: int, n_noise: int, halo: tuple[int, int]) -> tuple[int, int]:
    """Noise cells ``[w0, w1)`` a tile of output ``[lo, hi)`` needs (halo clipped at the field edges)."""
    c0, c1 = lo // up, -(-hi // up)
    return max(0, c0 - halo[0]), min(n_noise, c1 + halo[1])


def _tile(ref: GeneratorRef, spec: dict, block_info=None) -> np.ndarray:
    loc = block_info[None]["array-location"]
    (b0, b1), (y0, y1), (x0, x1) = loc
    up, (nzy, nzx) = spec["up"], spec["noise_shape"]
    wy = _window(y0, y1, up, nzy, spec["halo"])
    wx = _window(x0, x1, up, nzx, spec["halo"])
    z = noise_window((nzy, nzx), (slice(*wy), slice(*wx)), channels=spec["channels"], seed=spec["seed"],
                     block=spec["noise_block"])
    g = K.run_layers(ref.layers(), z, origin=(wy[0], wx[0]), block=spec["block"], align=spec["align"])
    g = g[y0 - wy[0] * up:y1 - wy[0] * up, x0 - wx[0] * up:x1 - wx[0] * up, b0:b1]
    g = np.ascontiguousarray(np.moveaxis(g, -1, 0))
    return K.denormalise(g, spec["band_min"][b0:b1], spec["band_max"][b0:b1])


def _size(size) -> tuple[int, int]:
    if isinstance(size, int | np.integer) and not isinstance(size, bool):
        size = (size, size)
    try:
        ny, nx = (int(v) for v in size)
        ok = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in size)
    except (TypeError, ValueError):
        ok = False
    if not ok or ny < 1 or nx < 1:
        raise ParameterError(f"size must be a positive integer or (ny, nx), got {size!r}")
    return ny, nx


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def halo_for(rf: ReceptiveField, overlap: int | None, *, exact: bool = True) -> tuple[int, int]:
    """The ``(lead, trail)`` noise halo of a tile for a symmetric ``overlap`` (``None``: the minimum).

    Raises
    ------
    ParameterError
        An overlap below the receptive field while ``exact``.

    Examples
    --------
    >>> from lazyastro.sgan.receptive import ReceptiveField
    >>> rf = ReceptiveField(3, 2, 44, 30, 3, 2, 16)
    >>> halo_for(rf, None), halo_for(rf, 8), halo_for(rf, 0, exact=False)
    ((3, 2), (4, 4), (0, 0))
    """
    if overlap is None:
        return (rf.lead, rf.trail)
    if isinstance(overlap, bool) or not isinstance(overlap, int | np.integer) or overlap < 0:
        raise ParameterError(f"overlap must be a non-negative integer (noise pixels), got {overlap!r}")
    overlap = int(overlap)
    if exact and overlap < rf.overlap:
        raise ParameterError(
            f"overlap {overlap} noise px is smaller than the generator's receptive field: exact tiling needs "
            f">= {rf.overlap} ({rf.overlap // 2} per side; edge bands {rf.lead_band} and {rf.trail_band} output "
            f"px); omit it for the minimum ({rf.lead} before + {rf.trail} after), or allow seams with "
            "exact=False / --non-exact")
    return (overlap - overlap // 2, overlap // 2)


def tessellate(
    model: Any = None,
    *,
    size: int | Sequence[int],
    seed: int,
    tile: int | None = None,
    overlap: int | None = None,
    exact: bool = True,
    one_shot: bool = False,
    bands: Sequence[int | str] | None = None,
    legacy: bool = False,
    rescale: bool | None = None,
    noise_block: int = DEFAULT_BLOCK,
):
    """A mosaic of any size from a generator: a lazy DataArray ``(band, y, x)`` in physical units.

    Parameters
    ----------
    model : path, SGANModel, keras.Model or list of Layer, optional
        The generator (default: the built-in model).
    size : int or (int, int)
        Output size in pixels (need not be a multiple of anything; the noise side is
        ``ceil(size / upsampling)`` and the output is cropped to ``size``).
    seed : int
        Non-negative seed of the noise field.
    tile : int, optional
        Tile side in output pixels (one task per tile; need not divide ``size``). Default: about
        1024, so that a tile's noise window is a whole number of evaluator blocks (1072 for the
        reference architecture; :func:`default_tile`).
    overlap : int, optional
        Symmetric overlap in noise pixels (half before, half after each tile, as in the legacy
        script). Default: the minimum exact halo from :func:`receptive_field` (3 before + 2
        after for the reference architecture). Smaller than ``receptive_field().overlap`` is
        refused unless ``exact=False``.
    exact : bool, optional
        ``False`` accepts overlaps below the receptive field (seams).
    one_shot : bool, optional
        Run the generator once on the whole noise field (one task; memory grows with ``size``).
    bands : sequence of int or str, optional
        Subset of bands (indices or names).
    legacy : bool, optional
        The legacy conventions: hard-coded XDF constants instead of the model's metadata,
        generator axes as written by the legacy scripts (transposed for a legacy-layout model)
        and the modal-bin rescale.
    rescale : bool, optional
        Subtract, per band, the left edge of the modal bin of a 10000-bin histogram over the
        band's range (default: ``legacy``). **Runs two streaming passes over the mosaic at
        once** (range, then histogram); the result stays lazy.
    noise_block : int, optional
        Side of the fixed noise blocks of the seed (default 64; changing it changes the noise).

    Returns
    -------
    xarray.DataArray
        ``(band, y, x)`` float32, chunked ``(bands, tile, tile)``; attrs ``bands``, ``BUNIT``,
        ``MODELSHA``, ``SEED``, ``NOISEBLK``, ``HALO``, ``TILE``, ``BAND1..n``.

    Raises
    ------
    ParameterError
        Bad size, seed, tile, overlap or bands.
    NotFullyConvolutionalError
        The generator has a layer that cannot be tiled exactly (Dense...).
    InputNotFoundError, FormatError
        A missing or unreadable model file.

    Examples
    --------
    >>> import numpy as np
    >>> from lazyastro.sgan.kernels import Layer
    >>> g = [Layer("conv_transpose", np.full((4, 4, 1, 2), 0.1, "f4"), stride=2)]
    >>> tessellate(g, size=(5, 7), seed=0, tile=3).shape
    (1, 5, 7)
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    ny, nx = _size(size)
    seed = check_seed(seed)
    tile = None if tile is None else _positive("tile", tile)
    noise_block = _positive("noise_block", noise_block)
    ref, layers, meta = resolve_model(model)
    rf = receptive_field(layers)
    halo = halo_for(rf, overlap, exact=exact)
    if tile is None:
        tile = default_tile(rf)
    up = rf.upsampling
    nb = len(meta["bands"])
    if legacy:
        from .model import LEGACY_META

        if nb != len(LEGACY_META["bands"]):
            raise ParameterError(f"legacy constants are for {len(LEGACY_META['bands'])} bands, the model makes {nb}")
        band_min, band_max = list(LEGACY_META["band_min"]), list(LEGACY_META["band_max"])
        names = list(LEGACY_META["bands"])
    else:
        band_min, band_max = [float(v) for v in meta["band_min"]], [float(v) for v in meta["band_max"]]
        names = [str(b) for b in meta["bands"]]
    # a legacy-layout model makes transposed images: undo it unless the legacy output is asked for
    swap = meta.get("layout") == "legacy" and not legacy
    gy, gx = (nx, ny) if swap else (ny, nx)
    noise_shape = (-(-gy // up), -(-gx // up))
    channels = int(meta.get("noise_channels", 0)) or int(
        next(x for x in layers if x.kind != "activation").kernel.shape[-1])
    spec = {"up": up, "noise_shape": noise_shape, "halo": (0, 0) if one_shot else halo, "channels": channels,
            "seed": seed, "noise_block": noise_block, "block": K.BLOCK, "align": -rf.lead,
            "band_min": band_min,
            "band_max": band_max}
    if one_shot:
        chunks = ((nb,), (gy,), (gx,))
    else:
        chunks = ((nb,), da.core.normalize_chunks(tile, (gy,))[0], da.core.normalize_chunks(tile, (gx,))[0])
    # the name is the resume fingerprint's token: everything that changes the pixels
    name = "sgan-tile-" + tokenize(ref.token, spec, chunks, "v1")
    data = da.map_blocks(_tile, ref, spec, chunks=chunks, dtype=np.float32,
                         meta=np.empty((0, 0, 0), dtype=np.float32), name=name)
    out = xr.DataArray(data, dims=("band", "x", "y") if swap else ("band", "y", "x"),
                       coords={"band": names}, name="mosaic")
    if swap:
        out = out.transpose("band", "y", "x")
    attrs = {"bands": names, "BUNIT": str(meta.get("units", "")), "MODELSHA": ref.token, "SEED": seed,
             "NOISEBLK": noise_block, "HALO": f"{halo[0]},{halo[1]}" if not one_shot else "one-shot",
             "TILE": int(max(gy, gx) if one_shot else tile), "LEGACY": bool(legacy), "TRANSPOS": bool(swap)}
    attrs.update({f"BAND{i + 1}": n for i, n in enumerate(names)})
    out.attrs.update(attrs)
    if bands is not None:
        out = _select_bands(out, bands, names)
    if rescale is None:
        rescale = legacy
    if rescale:
        out = rescale_modal(out)
    return out


def _select_bands(out, bands, names):
    idx = []
    for b in ([bands] if isinstance(bands, str | int) else bands):
        if isinstance(b, str):
            if b not in names:
                raise ParameterError(f"band {b!r} is not one of the model's bands {names}")
            idx.append(names.index(b))
        elif isinstance(b, int | np.integer) and not isinstance(b, bool) and 0 <= b < len(names):
            idx.append(int(b))
        else:
            raise ParameterError(f"band {b!r} is not a band index 0..{len(names) - 1} or name")
    if not idx:
        raise ParameterError("bands is empty")
    sel = out.isel(band=idx)
    sel.attrs = {k: v for k, v in out.attrs.items() if not k.startswith("BAND")}
    sel.attrs["bands"] = [names[i] for i in idx]
    sel.attrs.update({f"BAND{i + 1}": names[j] for i, j in enumerate(idx)})
    return sel


def rescale_modal(image, *, bins: int = 10000, scheduler: str | None = None):
    """Subtract per band the left edge of the modal bin of a ``bins``-bin histogram over its range.

    The legacy "rescale" (sky peak to about 0). Two streaming passes over ``image`` run at once
    (per-band min/max, then the histogram); the returned array is lazy. The offsets are in
    ``attrs["RESCALE"]`` (and ``RESCALE1..n``).

    Parameters
    ----------
    image : xarray.DataArray (band, y, x)
    bins : int
    scheduler : str, optional

    Returns
    -------
    xarray.DataArray
    """
    import dask.array as da

    from ..core.execution import compute

    data = image.data if hasattr(image.data, "dask") else da.asarray(image.data)
    lo, hi = compute(data.min(axis=(1, 2)), data.max(axis=(1, 2)), scheduler=scheduler, progress=False,
                     desc="rescale: range")
    offsets = []
    hists = [da.histogram(data[b], bins=bins, range=(float(lo[b]), float(hi[b]))) for b in range(data.shape[0])]
    counts = compute(*[h[0] for h in hists], scheduler=scheduler, progress=False, desc="rescale: histogram")
    for b, c in enumerate(counts):
        edges = np.linspace(float(lo[b]), float(hi[b]), bins + 1)
        offsets.append(K.modal_offset(c, edges) if hi[b] > lo[b] else float(lo[b]))
    off = np.asarray(offsets, dtype=np.float32)
    out = image - off[:, None, None]
    out = out.astype(np.float32)
    out.attrs = dict(image.attrs)
    out.attrs["RESCALE"] = [float(v) for v in off]
    out.attrs.update({f"RESCALE{i + 1}": float(v) for i, v in enumerate(off)})
    return out


# --------------------------------------------------------------------------------------------- writing


def write_mosaic(mosaic, out: str | os.PathLike, *, fits_layout: str = "cube", overwrite: bool = False,
                 scheduler: str | None = None, progress: bool | None = None, compute: bool = True):
    """Stream a mosaic to Zarr (with a ``band`` dim) or FITS (one cube, or one file per band).

    Resumable through :mod:`lazyastro.core.stream`: rerun after an interruption (even
    ``kill -9``) and only the missing tiles are generated.

    Parameters
    ----------
    mosaic : xarray.DataArray (band, y, x)
    out : path
        ``*.zarr`` or ``*.fits``; with ``fits_layout="per-band"`` the files are
        ``<stem>-<i>.fits`` (``i`` the band index, as the legacy ``<c>.fits``) with ``BAND``.
    fits_layout : {"cube", "per-band"}
    overwrite, scheduler, progress, compute
        As for :func:`lazyastro.to_zarr` / :func:`lazyastro.to_fits`.

    Returns
    -------
    list of str
        The written paths (or lazy stores for ``compute=False``).
    """
    from ..core.execution import compute as run
    from ..io.fits_write import to_fits
    from ..io.zarr_write import to_zarr

    if fits_layout not in FITS_LAYOUTS:
        raise ParameterError(f"fits_layout must be one of {', '.join(FITS_LAYOUTS)}, got {fits_layout!r}")
    out = Path(out)
    name = out.name.lower()
    if name.endswith(".zarr"):
        # Zarr chunks of at most 1024 px (a one-shot mosaic is one dask block)
        chunks = (mosaic.shape[0], *(min(max(c), 1024) if len(c) == 1 else max(c) for c in mosaic.chunks[1:]))
        return [to_zarr(mosaic, out, chunks=chunks, overwrite=overwrite, compute=compute, scheduler=scheduler,
                        progress=progress)]
    if not name.endswith((".fits", ".fit", ".fts")):
        raise ParameterError("output must end in .zarr or .fits", out)
    if fits_layout == "cube":
        return [to_fits(mosaic, out, overwrite=overwrite, compute=compute, scheduler=scheduler, progress=progress)]
    paths = [out.with_name(f"{out.stem}-{i}{out.suffix}") for i in range(mosaic.sizes["band"])]
    stores = []
    for i, p in enumerate(paths):
        band = mosaic.isel(band=i)
        band.attrs = {k: v for k, v in mosaic.attrs.items() if not k.startswith(("BAND", "RESCALE"))
                      or k == f"RESCALE{i + 1}"}
        band.attrs["BAND"] = str(mosaic["band"].values[i])
        if f"RESCALE{i + 1}" in band.attrs:
            band.attrs["RESCALE"] = band.attrs.pop(f"RESCALE{i + 1}")
        band = band.drop_vars("band")
        stores.append(to_fits(band, p, overwrite=overwrite, compute=False))
    if not compute:
        return stores
    # one pass: each tile is generated once for all the band files
    return list(run(*stores, scheduler=scheduler, progress=progress, desc=f"write {out.stem}-*.fits"))


def halo_cost(tile: int, up: int, halo: tuple[int, int]) -> float:
    """Generator work of a tile relative to its core (the tiling overhead).

    Examples
    --------
    >>> round(halo_cost(1024, 16, (3, 2)), 3)
    1.162
    """
    core = math.ceil(tile / up)
    return ((core + halo[0] + halo[1]) / core) ** 2
