"""The Spatial GAN model: reference generator/discriminator, RaSGAN losses, model files.

Keras 3 is imported inside the functions (it comes with the ``lazyastro[gan]`` extra), so importing
this module is cheap. Nothing here is backend-specific (``keras.ops`` only).

- :func:`build_generator`: the fully convolutional generator of the spec (noise ``(h, w, 50)`` ->
  image ``(16h, 16w, 3)``; 1,582,851 parameters with the defaults).
- :func:`build_discriminator`: four strided convolutions, global average pooling, one logit; its
  input packs two images per sample (6 channels; 691,937 parameters with the defaults).
- :func:`rasgan_losses`: the relativistic average standard GAN losses.
- :func:`save_model` / :func:`load_model`: a ``.keras`` file with the normalisation metadata stored
  inside the zip (member ``lazyastro.json``), loaded with ``safe_mode=True``; the result is an
  :class:`SGANModel`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from ..core.paths import require_input

__all__ = [
    "build_generator", "build_discriminator", "rasgan_losses", "pack_pairs", "save_model", "load_model",
    "SGANModel", "builtin_model_path", "LEGACY_META", "META_MEMBER", "BUILTIN_MODEL_NAME",
]

#: Name of the zip member of a ``.keras`` file that holds the lazyastro metadata.
META_MEMBER = "lazyastro.json"
#: File name of the built-in model in ``lazyastro/sgan/data``.
BUILTIN_MODEL_NAME = "hdf_sgan.keras"

#: Metadata of a generator without any: the constants hard-coded in the legacy generation scripts
#: (the pre-normalisation min/max of the three XDF training bands, spec section 1).
LEGACY_META: dict[str, Any] = {
    "format": "lazyastro-sgan",
    "version": 1,
    "bands": ["F606W", "F775W", "F814W"],
    "band_min": [-0.004748813, -0.0031752307, -0.011242471],
    "band_max": [0.5262004, 0.44799575, 0.62030375],
    "units": "HLSP XDF sci image units (not confirmed)",
    "preprocessing": {"rotate": 43.25, "crop": [[2080, 5320], [2080, 5320]], "clip_percentile": 99.99,
                      "normalise": "minmax", "source": "legacy XDF notebook (hard-coded constants)"},
    "layout": "legacy",
    "noise_channels": 50,
    "upsampling": 16,
    "training": {},
}

_NOT_CONVOLUTIONAL = ("Dense", "Flatten", "Reshape", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
                      "GlobalAveragePooling1D", "GlobalMaxPooling1D", "EinsumDense", "Embedding",
                      "RepeatVector", "Permute")


def _keras():
    mod = sys.modules.get("keras")
    if mod is not None:  # already imported (and no os.environ call inside traced tf.functions)
        return mod
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LazyAstroError("the Spatial GAN needs Keras 3 and TensorFlow: pip install 'lazyastro[gan]'") from exc
    return keras


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return value


def build_generator(*, noise_channels: int = 50, filters: int = 32, depth: int = 4, out_channels: int = 3,
                    kernel: int = 4, out_kernel: int = 3, extra_layers: int = 2, name: str = "sgan_generator"):
    """The fully convolutional Spatial GAN generator (reference architecture by default).

    Block ``i`` (``i = depth-1 ... 0``) has ``filters * 2**i`` filters: the first block is one
    stride-2 transposed convolution, every later block one stride-2 and ``extra_layers`` stride-1
    transposed convolutions, all ``kernel`` wide, ``"same"`` padding and ELU; a final stride-1
    ``out_kernel`` transposed convolution with a sigmoid gives ``out_channels`` channels in (0, 1).
    The upsampling factor is ``2**depth`` and the spatial input size is free.

    Parameters
    ----------
    noise_channels : int, optional
        Channels of the noise ``z`` (50 in the reference).
    filters : int, optional
        Filters of the last block (32 in the reference: 256, 128, 64, 32).
    depth : int, optional
        Number of stride-2 blocks (4: upsampling 16).
    out_channels : int, optional
        Output bands (3).
    kernel, out_kernel : int, optional
        Kernel sizes of the hidden (4) and output (3) layers.
    extra_layers : int, optional
        Stride-1 layers after the stride-2 layer of every block but the first (2).
    name : str, optional
        Keras model name.

    Returns
    -------
    keras.Model
        Input ``(None, None, noise_channels)``, output ``(None, None, out_channels)``.

    Raises
    ------
    ParameterError
        If a size is not a positive integer.

    Examples
    --------
    >>> g = build_generator()  # doctest: +SKIP
    >>> g.count_params(), g(np.zeros((1, 4, 4, 50), "float32")).shape  # doctest: +SKIP
    (1582851, TensorShape([1, 64, 64, 3]))
    """
    for n, v in (("noise_channels", noise_channels), ("filters", filters), ("depth", depth),
                 ("out_channels", out_channels), ("kernel", kernel), ("out_kernel", out_kernel)):
        _positive(n, v)
    if isinstance(extra_layers, bool) or not isinstance(extra_layers, int) or extra_layers < 0:
        raise ParameterError(f"extra_layers must be a non-negative integer, got {extra_layers!r}")
    keras = _keras()
    layers = keras.layers
    z = keras.Input((None, None, noise_channels), name="z")
    x = z
    k = 0
    for b, i in enumerate(range(depth - 1, -1, -1)):
        nf = filters * 2**i
        strides = [2] + ([1] * extra_layers if b > 0 else [])
        for s in strides:
            k += 1
            x = layers.Conv2DTranspose(nf, kernel, strides=s, padding="same", activation="elu",
                                       name=f"deconv{k}")(x)
    x = layers.Conv2DTranspose(out_channels, out_kernel, strides=1, padding="same", activation="sigmoid",
                               name="image")(x)
    return keras.Model(z, x, name=name)


def build_discriminator(*, in_channels: int = 3, pack: int = 2, filters: int = 32, depth: int = 4,
                        kernel: int = 4, negative_slope: float = 0.1, name: str = "sgan_discriminator"):
    """The Spatial GAN discriminator: ``depth`` strided convolutions, global average pooling, a logit.

    Conv2D layers with ``filters * 2**i`` filters (``i = 0 ... depth-1``: 32, 64, 128, 256), kernel
    ``kernel``, stride 2, ``"same"``, each followed by LeakyReLU(``negative_slope``); then global
    average pooling and ``Dense(1)`` (linear). The input holds ``pack`` images per sample stacked on
    the channel axis (``in_channels * pack`` channels, see :func:`pack_pairs`).

    Parameters
    ----------
    in_channels : int, optional
        Bands of one image (3).
    pack : int, optional
        Images per sample (2, PacGAN-style).
    filters, depth, kernel : int, optional
        First-layer filters (32), number of layers (4), kernel size (4).
    negative_slope : float, optional
        LeakyReLU slope (0.1).
    name : str, optional
        Keras model name.

    Returns
    -------
    keras.Model
        Input ``(None, None, in_channels * pack)``, output ``(1,)`` logits.

    Raises
    ------
    ParameterError
        If a size is not a positive integer.

    Examples
    --------
    >>> build_discriminator().count_params()  # doctest: +SKIP
    691937
    """
    for n, v in (("in_channels", in_channels), ("pack", pack), ("filters", filters), ("depth", depth),
                 ("kernel", kernel)):
        _positive(n, v)
    keras = _keras()
    layers = keras.layers
    inp = keras.Input((None, None, in_channels * pack), name="pairs")
    x = inp
    for i in range(depth):
        x = layers.Conv2D(filters * 2**i, kernel, strides=2, padding="same", name=f"conv{i + 1}")(x)
        x = layers.LeakyReLU(negative_slope=negative_slope, name=f"lrelu{i + 1}")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(1, name="logit")(x)
    return keras.Model(inp, x, name=name)


def pack_pairs(images, pack: int = 2):
    """Pack ``pack`` images per sample: split the batch into ``pack`` parts, stack them on channels.

    A batch of 32 images ``(32, h, w, c)`` becomes ``(16, h, w, 2c)``: sample ``j`` holds images
    ``j`` and ``j + 16`` (the spec's packing).

    Parameters
    ----------
    images : array or tensor
        ``(n, h, w, c)`` with ``n`` a multiple of ``pack``.
    pack : int, optional
        Images per sample.

    Returns
    -------
    tensor
        ``(n // pack, h, w, pack * c)``.

    Examples
    --------
    >>> pack_pairs(np.zeros((4, 2, 2, 3), "float32")).shape  # doctest: +SKIP
    TensorShape([2, 2, 2, 6])
    """
    keras = _keras()
    ops = keras.ops
    parts = ops.split(images, pack, axis=0)
    return ops.concatenate(parts, axis=-1)


def rasgan_losses(c_real, c_fake, *, eps: float = 1e-9):
    """Relativistic average standard GAN losses ``(L_D, L_G)`` from real and fake logits.

    With ``r = sigmoid(C_r - mean C_f)`` and ``f = sigmoid(C_f - mean C_r)``::

        L_D = -(mean log(r + eps) + mean log(1 - f + eps))
        L_G = -(mean log(f + eps) + mean log(1 - r + eps))

    Parameters
    ----------
    c_real, c_fake : array or tensor
        Discriminator logits of real and of fake (packed) samples.
    eps : float, optional
        Added inside the logarithms (1e-9).

    Returns
    -------
    (tensor, tensor)
        Scalar discriminator and generator losses.

    Examples
    --------
    >>> d, g = rasgan_losses(np.zeros(4, "float32"), np.zeros(4, "float32"))  # doctest: +SKIP
    >>> round(float(d), 4), round(float(g), 4)  # doctest: +SKIP
    (1.3863, 1.3863)
    """
    ops = _keras().ops
    c_real = ops.convert_to_tensor(c_real)
    c_fake = ops.convert_to_tensor(c_fake)
    r = ops.sigmoid(c_real - ops.mean(c_fake))
    f = ops.sigmoid(c_fake - ops.mean(c_real))
    d_loss = ops.abs(-(ops.mean(ops.log(r + eps)) + ops.mean(ops.log(1.0 - f + eps))))
    g_loss = ops.abs(-(ops.mean(ops.log(f + eps)) + ops.mean(ops.log(1.0 - r + eps))))
    return d_loss, g_loss


# --------------------------------------------------------------------------------------------- files


def builtin_model_path() -> Path:
    """Path of the built-in generator (trained on scikit-image's Hubble deep field image).

    Returns
    -------
    pathlib.Path
        ``lazyastro/sgan/data/hdf_sgan.keras`` inside the installed package.

    Examples
    --------
    >>> builtin_model_path().name
    'hdf_sgan.keras'
    """
    return Path(__file__).resolve().parent / "data" / BUILTIN_MODEL_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class SGANModel:
    """A generator with its metadata (what :func:`load_model` returns).

    Attributes
    ----------
    generator : keras.Model
        Fully convolutional: noise ``(n, h, w, noise_channels)`` -> image
        ``(n, upsampling*h, upsampling*w, bands)`` in (0, 1).
    meta : dict
        ``bands``, ``band_min``, ``band_max`` (per band, to undo the min-max normalisation),
        ``units``, ``preprocessing`` (settings), ``noise_channels``, ``upsampling``, ``layout``
        (``"default"`` or ``"legacy"``), ``architecture``, ``training``.
    path : pathlib.Path or None
        The file it came from.
    sha256 : str or None
        SHA-256 of that file.
    """

    generator: Any
    meta: dict = field(default_factory=dict)
    path: Path | None = None
    sha256: str | None = None

    @property
    def bands(self) -> list[str]:
        """Band names, one per output channel."""
        return list(self.meta["bands"])

    @property
    def band_min(self) -> list[float]:
        """Per-band minimum before normalisation (physical units)."""
        return [float(v) for v in self.meta["band_min"]]

    @property
    def band_max(self) -> list[float]:
        """Per-band maximum (after the percentile clip) before normalisation."""
        return [float(v) for v in self.meta["band_max"]]

    @property
    def units(self) -> str:
        """Pixel units of the un-normalised bands."""
        return str(self.meta.get("units", ""))

    @property
    def noise_channels(self) -> int:
        """Channels of the noise input."""
        return int(self.meta["noise_channels"])

    @property
    def upsampling(self) -> int:
        """Output pixels per noise pixel along each axis."""
        return int(self.meta["upsampling"])

    def denormalise(self, image, *, axis: int = -1):
        """Undo the min-max normalisation: ``g * (max_c - min_c) + min_c`` per band.

        Parameters
        ----------
        image : array
            Generator output in (0, 1), bands along ``axis``.
        axis : int, optional
            The band axis (last by default).

        Returns
        -------
        array
            Same shape, physical units (same array module as ``image``).
        """
        import numpy as np

        lo = np.asarray(self.band_min, dtype="float32")
        hi = np.asarray(self.band_max, dtype="float32")
        shape = [1] * image.ndim
        shape[axis] = lo.size
        return image * (hi - lo).reshape(shape) + lo.reshape(shape)


def _check_meta(meta: dict, path) -> dict:
    for key in ("bands", "band_min", "band_max"):
        if key not in meta:
            raise FormatError(f"model metadata has no {key!r}", path)
    n = len(meta["bands"])
    if len(meta["band_min"]) != n or len(meta["band_max"]) != n:
        raise FormatError(f"model metadata: bands, band_min and band_max differ in length "
                          f"({n}, {len(meta['band_min'])}, {len(meta['band_max'])})", path)
    return meta


def _check_generator(gen, path) -> None:
    """Refuse a generator that is not fully convolutional (fixed spatial input or dense layers)."""
    inputs = getattr(gen, "inputs", None)
    if not inputs or len(inputs) != 1 or len(gen.outputs) != 1:
        raise FormatError("a generator must have one input (the noise) and one output (the image)", path)
    shape = tuple(inputs[0].shape)
    if len(shape) != 4:
        raise FormatError(f"a generator's input must be (batch, y, x, channels), got {shape}", path)
    if shape[1] is not None or shape[2] is not None:
        raise FormatError(f"the generator is not fully convolutional: its input has a fixed spatial size "
                          f"{shape[1:3]} (both must be None)", path)
    if shape[3] is None:
        raise FormatError("the generator's noise channels are not fixed", path)

    def walk(model):
        for layer in getattr(model, "layers", []):
            yield layer
            if hasattr(layer, "layers"):
                yield from walk(layer)

    for layer in walk(gen):
        if type(layer).__name__ in _NOT_CONVOLUTIONAL:
            raise FormatError(f"the generator is not fully convolutional: layer {layer.name!r} is a "
                              f"{type(layer).__name__}", path)
    if len(tuple(gen.outputs[0].shape)) != 4:
        raise FormatError(f"a generator's output must be (batch, y, x, bands), got {tuple(gen.outputs[0].shape)}",
                          path)


def _upsampling(gen) -> int:
    import numpy as np

    c = int(gen.inputs[0].shape[-1])
    out = gen(np.zeros((1, 4, 4, c), dtype="float32"), training=False)
    return int(out.shape[1]) // 4


def save_model(generator, path: str | os.PathLike, *, meta: dict, overwrite: bool = True) -> Path:
    """Write a generator and its metadata to one ``.keras`` file.

    The metadata goes into the zip as the member ``lazyastro.json`` (Keras ignores it), so it
    travels with the model. The file is written to ``<path>.partial.keras`` and renamed.

    Parameters
    ----------
    generator : keras.Model
        A fully convolutional generator.
    path : str or os.PathLike
        Output file; must end in ``.keras``.
    meta : dict
        At least ``bands``, ``band_min``, ``band_max``; JSON-serialisable. ``noise_channels`` and
        ``upsampling`` are filled in from the generator.
    overwrite : bool, optional
        Replace an existing file (default).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ParameterError
        If the suffix is not ``.keras`` or the metadata is incomplete.
    OutputExistsError
        If the file exists and ``overwrite`` is false.

    Examples
    --------
    >>> save_model(build_generator(filters=4), "g.keras", meta=meta)  # doctest: +SKIP
    PosixPath('g.keras')
    """
    from ..core.errors import OutputExistsError

    path = Path(path)
    if path.suffix != ".keras":
        raise ParameterError("a model file must end in .keras", path)
    if path.exists() and not overwrite:
        raise OutputExistsError("exists (pass overwrite=True)", path)
    _check_generator(generator, path)
    meta = copy.deepcopy(dict(meta))
    try:
        _check_meta(meta, path)
    except FormatError as exc:
        raise ParameterError(exc.message, path) from None
    meta.setdefault("format", "lazyastro-sgan")
    meta.setdefault("version", 1)
    meta.setdefault("layout", "default")
    meta["noise_channels"] = int(generator.inputs[0].shape[-1])
    meta["upsampling"] = _upsampling(generator)
    if len(meta["bands"]) != int(generator.outputs[0].shape[-1]):
        raise ParameterError(f"metadata has {len(meta['bands'])} bands, the generator makes "
                             f"{int(generator.outputs[0].shape[-1])}", path)
    try:
        text = json.dumps(meta, indent=1, sort_keys=True)
    except TypeError as exc:
        raise ParameterError(f"metadata is not JSON-serialisable: {exc}", path) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial.keras")
    generator.save(tmp)
    with zipfile.ZipFile(tmp, "a") as zf:
        zf.writestr(META_MEMBER, text)
    os.replace(tmp, path)
    return path


def read_meta(path: str | os.PathLike) -> dict | None:
    """The lazyastro metadata stored in a ``.keras`` file (``None`` when it has none).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file.

    Returns
    -------
    dict or None

    Raises
    ------
    FormatError
        If the file is not a zip or the metadata is not valid JSON.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            if META_MEMBER not in zf.namelist():
                return None
            raw = zf.read(META_MEMBER)
    except zipfile.BadZipFile:
        raise FormatError("not a .keras model file (not a zip archive)", path) from None
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise FormatError(f"{META_MEMBER}: invalid JSON ({exc})", path) from None
    if not isinstance(meta, dict):
        raise FormatError(f"{META_MEMBER}: not a JSON object", path)
    return meta


def load_model(path: str | os.PathLike | None = None, *, safe_mode: bool = True) -> SGANModel:
    """Load a generator file (the built-in model when ``path`` is ``None``).

    A ``.keras`` file is loaded with ``keras.models.load_model(path, safe_mode=True,
    compile=False)``: Lambda layers and other unsafe content are refused. The generator must be
    fully convolutional (free spatial input size, no dense/flatten/reshape layers). A file without
    lazyastro metadata gets the legacy hard-coded XDF constants (:data:`LEGACY_META`) with a warning.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The ``.keras`` file; ``None`` for :func:`builtin_model_path`.
    safe_mode : bool, optional
        Keras safe mode (keep it on for files you did not write).

    Returns
    -------
    SGANModel

    Raises
    ------
    InputNotFoundError
        If the file does not exist.
    FormatError
        If it is not a Keras model, holds unsafe content, or is not a fully convolutional generator.

    Examples
    --------
    >>> m = load_model()  # doctest: +SKIP
    >>> m.bands, m.upsampling  # doctest: +SKIP
    (['R', 'G', 'B'], 16)
    """
    if path is None:
        path = builtin_model_path()
        if not path.exists():
            raise InputNotFoundError("the built-in model is missing from this installation", path)
    path = require_input(path)
    if path.suffix != ".keras":
        raise FormatError("not a .keras model file (Keras 3 format; convert a legacy HDF5 model with "
                          "keras.models.load_model(...).save('model.keras'))", path)
    meta = read_meta(path)
    keras = _keras()
    try:
        gen = keras.models.load_model(path, safe_mode=safe_mode, compile=False)
    except Exception as exc:  # Keras raises ValueError/TypeError/OSError for bad or unsafe content
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise FormatError(f"refused unsafe model content (safe_mode=True): {first}", path) from None
        raise FormatError(f"cannot load the Keras model: {first}", path) from None
    _check_generator(gen, path)
    if meta is None:
        warnings.warn(f"{path}: no lazyastro metadata in the model; using the legacy XDF constants "
                      "(bands F606W, F775W, F814W)", stacklevel=2)
        meta = copy.deepcopy(LEGACY_META)
        meta["noise_channels"] = int(gen.inputs[0].shape[-1])
        meta["upsampling"] = _upsampling(gen)
        if len(meta["bands"]) != int(gen.outputs[0].shape[-1]):
            raise FormatError(f"no lazyastro metadata and {int(gen.outputs[0].shape[-1])} output bands "
                              "(the legacy constants are for 3)", path)
    else:
        _check_meta(meta, path)
        if int(meta.get("noise_channels", gen.inputs[0].shape[-1])) != int(gen.inputs[0].shape[-1]):
            raise FormatError(f"metadata says {meta['noise_channels']} noise channels, the generator has "
                              f"{int(gen.inputs[0].shape[-1])}", path)
        if len(meta["bands"]) != int(gen.outputs[0].shape[-1]):
            raise FormatError(f"metadata has {len(meta['bands'])} bands, the generator makes "
                              f"{int(gen.outputs[0].shape[-1])}", path)
        if "upsampling" not in meta:
            meta["upsampling"] = _upsampling(gen)
    return SGANModel(generator=gen, meta=meta, path=path, sha256=_sha256(path))
