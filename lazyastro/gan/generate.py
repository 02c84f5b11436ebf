"""Image sets from a Keras 3 generator, and the intensity histograms of many generated sets.

- :func:`load_generator`: a ``.keras`` file loaded with ``safe_mode=True`` (a model
  holding a ``Lambda`` layer or other arbitrary Python code is refused before Keras
  deserialises anything).
- :func:`generate_images`: ``n`` images from seeded latent noise, batched, de-normalised
  with the real set's ``lognorminfo`` (spec section 2:
  ``x = exp((g + 1)(Lmax - Lmin)/2 + Lmin)``), lazily or streamed to an image set
  (legacy ``gen_GAN_images.py``; the real set is only read).
- :func:`gan_histograms`: ``n_sets x images_per_set`` generated images, one summed
  log10-intensity histogram per set (legacy ``gen_GAN_intensity_histograms.py``);
  :func:`open_gan_histograms` reads the file back.

The latent vector of image ``i`` (of set ``s``) is drawn by
:func:`lazyastro.core.random.grid_random` on a grid of one image per block, so it depends
only on ``(seed, i)`` (``(seed, s, i)``): not on the batch size, the scheduler or a
resume. The images then agree for any batch size up to the float32 rounding of the
model's kernels (a batched matrix product may round differently).

Keras and TensorFlow are the optional ``lazyastro[gan]`` extra, imported only when a
model is loaded or run; without them everything else in :mod:`lazyastro.gan` works.

>>> import numpy as np
>>> z = latent_noise(7, (4,), start=2, stop=3)
>>> z.shape, z.dtype.name, bool(np.array_equal(z, latent_noise(7, (4,), start=0, stop=3)[2:]))
((1, 4), 'float32', True)
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import os
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, LazyAstroError, ParameterError
from ..core.random import check_seed, grid_random, standard_normal
from ..core.stream import StreamTarget, Variable, store
from . import kernels as K
from .imageset import ImageSetTarget

__all__ = ["load_generator", "generate_images", "gan_histograms", "open_gan_histograms", "latent_noise",
           "GeneratedSetTarget", "HistogramSetsTarget", "KerasMissingError"]

_EXTRA_HINT = "install the GAN extra: pip install 'lazyastro[gan]'"
#: layer classes whose saved config carries Python code (refused even before Keras sees them)
_UNSAFE_CLASSES = ("Lambda", "TorchModuleWrapper")


class KerasMissingError(LazyAstroError, ImportError):
    """Keras (the ``lazyastro[gan]`` extra) is not installed."""


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError as exc:
        raise KerasMissingError(f"Keras is needed to run a generator ({exc}); {_EXTRA_HINT}") from None
    return keras


# --------------------------------------------------------------------------- latent noise


def latent_noise(seed: int, latent_shape: tuple[int, ...] | list[int], *, start: int = 0, stop: int | None = None,
                 set_index: int | None = None) -> np.ndarray:
    """Standard-normal latent vectors of images ``start .. stop-1`` (float32), one seeded block per image.

    Parameters
    ----------
    seed : int
        Non-negative seed.
    latent_shape : tuple of int
        Shape of one latent input (the model's input shape without the batch axis).
    start, stop : int, optional
        Image range (``stop`` defaults to ``start + 1``).
    set_index : int, optional
        Set number (:func:`gan_histograms`): images of different sets get independent noise.

    Returns
    -------
    numpy.ndarray (stop - start, *latent_shape) float32
        Image ``i``'s vector depends only on ``(seed, i)`` (or ``(seed, set_index, i)``).

    Raises
    ------
    ParameterError
        Bad seed or range.

    Examples
    --------
    >>> latent_noise(0, (3,), start=5, stop=7).shape
    (2, 3)
    """
    seed = check_seed(seed)
    latent = tuple(int(v) for v in latent_shape)
    stop = start + 1 if stop is None else stop
    if not 0 <= start <= stop:
        raise ParameterError(f"image range must satisfy 0 <= start <= stop, got {start}..{stop}")
    lead = () if set_index is None else (int(set_index),)
    shape = (*(int(v) + 1 for v in lead), int(stop), *latent)
    grid = (*(1 for _ in lead), 1, *latent)
    region = (*(slice(v, v + 1) for v in lead), slice(int(start), int(stop)), *(slice(0, n) for n in latent))
    z = grid_random(seed, shape, grid, standard_normal, region, dtype=np.float32)
    return z.reshape((int(stop) - int(start), *latent))


# --------------------------------------------------------------------------- loading


def _walk_classes(node) -> list[str]:
    found = []
    stack = [node]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if isinstance(v.get("class_name"), str):
                found.append(v["class_name"])
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return found


def _check_archive(path: Path) -> None:
    """Refuse anything but a ``.keras`` zip whose config holds no code-carrying layer."""
    if path.suffix.lower() != ".keras":
        raise FormatError("a generator must be a Keras 3 '.keras' file (legacy .h5 / SavedModel models are "
                          "not loaded: they cannot be checked for unsafe content)", path)
    if not zipfile.is_zipfile(path):
        raise FormatError("not a Keras '.keras' file (not a zip archive)", path)
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except KeyError:
        raise FormatError("not a Keras '.keras' file (no config.json in the archive)", path) from None
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise FormatError(f"cannot read the Keras archive ({exc})", path) from None
    bad = sorted(set(_walk_classes(config)) & set(_UNSAFE_CLASSES))
    if bad:
        raise FormatError(f"refused: the model holds a {' and a '.join(bad)} layer (arbitrary Python code); "
                          "lazyastro loads models with safe_mode=True only. Rebuild the generator from "
                          "standard layers (or registered custom layers)", path)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def _load(path: Path):
    keras = _keras()
    try:
        return keras.models.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises ValueError/TypeError/... for anything it cannot rebuild
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text:
            raise FormatError("refused: the model holds unsafe content (Keras safe_mode): "
                              f"{_first_line(exc)}", path) from None
        raise FormatError(f"cannot load the Keras model ({type(exc).__name__}: {_first_line(exc)})", path) from None


def load_generator(path: str | os.PathLike) -> Any:
    """Load a generator from a Keras 3 ``.keras`` file, safely (``safe_mode=True``, not compiled).

    Parameters
    ----------
    path : path-like
        The ``.keras`` file.

    Returns
    -------
    keras.Model

    Raises
    ------
    InputNotFoundError
        No such file.
    FormatError
        Not a ``.keras`` archive; a ``Lambda`` layer or other unsafe content (refused);
        a model Keras cannot rebuild; not one latent input with a fixed shape; output not
        ``(batch, H, W)`` or ``(batch, H, W, channels)``.
    KerasMissingError
        Keras is not installed.

    Examples
    --------
    >>> load_generator("/nonexistent.keras")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputNotFoundError: /nonexistent.keras: no such file
    """
    from ..core.paths import require_input

    p = require_input(path)
    _check_archive(p)
    model = _load(p)
    _model_shapes(model, p)
    return model


def _model_shapes(model, path=None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(latent shape, output shape)`` without the batch axis; a clear error for unusable models."""
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs:
        raise FormatError("the model has no defined inputs/outputs (build it with keras.Input)", path)
    if len(inputs) != 1 or len(outputs) != 1:
        raise FormatError(f"a generator must have one latent input and one output, this model has "
                          f"{len(inputs)} inputs and {len(outputs)} outputs", path)
    latent = tuple(inputs[0].shape[1:])
    out = tuple(outputs[0].shape[1:])
    if not latent or any(v is None for v in latent):
        raise FormatError(f"the latent input shape {tuple(inputs[0].shape)} is not fully defined", path)
    if len(out) not in (2, 3) or any(v is None for v in out):
        raise FormatError(f"the generator output must be (batch, H, W) or (batch, H, W, channels), got "
                          f"{tuple(outputs[0].shape)}", path)
    return tuple(int(v) for v in latent), tuple(int(v) for v in out)


_MODELS: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


class _Generator:
    """A picklable handle on a generator: its file (loaded once per process) or an in-memory model."""

    def __init__(self, generator, channel: int):
        if isinstance(generator, str | os.PathLike):
            from ..core.paths import require_input

            self.path = str(require_input(generator))
            _check_archive(Path(self.path))
            self.digest = _file_digest(Path(self.path))
            self._model = None
            model = self.model()
            self.token = self.digest
            self.label = self.path
        else:
            if not all(hasattr(generator, a) for a in ("inputs", "outputs", "__call__")):
                raise ParameterError(f"generator must be a .keras path or a Keras model, got {type(generator).__name__}")
            self.path = self.digest = None
            self._model = model = generator
            self.token = f"in-memory-{uuid.uuid4().hex}"  # no resume across processes for a model object
            self.label = f"<{type(generator).__name__} {getattr(generator, 'name', '')}>"
        self.latent, self.out_shape = _model_shapes(model, self.path)
        channels = self.out_shape[2] if len(self.out_shape) == 3 else 1
        if isinstance(channel, bool) or not isinstance(channel, int | np.integer) or not 0 <= channel < channels:
            raise ParameterError(f"channel must be in 0..{channels - 1} for output shape {self.out_shape}, "
                                 f"got {channel!r}", self.path)
        self.channel = int(channel)
        self.image_shape = self.out_shape[:2]

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.path is not None:
            state["_model"] = None  # each process loads the file once
        return state

    def model(self):
        if self._model is not None:
            return self._model
        key = (self.path, self.digest)
        with _LOCK:
            if key not in _MODELS:
                if _file_digest(Path(self.path)) != self.digest:
                    raise FormatError("the generator file changed while images were being generated", self.path)
                _MODELS[key] = _load(Path(self.path))
            self._model = _MODELS[key]
        return self._model

    def __call__(self, z: np.ndarray) -> np.ndarray:
        """Generator output of latent vectors ``z`` as ``(batch, H, W)`` float32."""
        keras = _keras()
        out = self.model()(z, training=False)
        # TF eager tensors: .numpy() (keras.ops.convert_to_numpy goes through a deprecated __array__)
        g = np.asarray(out.numpy()) if keras.backend.backend() == "tensorflow" else keras.ops.convert_to_numpy(out)
        if g.ndim == 4:
            g = g[..., self.channel]
        if g.shape != (z.shape[0], *self.image_shape):
            raise FormatError(f"the generator returned shape {g.shape}, expected {(z.shape[0], *self.image_shape)}",
                              self.path)
        return g


# --------------------------------------------------------------------------- generation


def _resolve_lognorminfo(lognorminfo, like) -> list[float]:
    from .imageset import lognorminfo_of, open_imageset

    if (lognorminfo is None) == (like is None):
        raise ParameterError("give exactly one of lognorminfo=[Lmin, Lmax] and like=<the real image set> "
                             "(the generator's output is de-normalised with the real set's constants)")
    if like is not None:
        path = like if isinstance(like, str | os.PathLike) else None
        images = open_imageset(like) if path is not None else like
        return lognorminfo_of(images, path)
    vals = [float(v) for v in np.ravel(np.asarray(lognorminfo, dtype=np.float64))]
    if len(vals) != 2 or not all(math.isfinite(v) for v in vals) or not vals[1] > vals[0]:
        raise ParameterError(f"lognorminfo must be two finite numbers Lmin < Lmax, got {lognorminfo!r}")
    return vals


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ParameterError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _generate_block(gen: _Generator, seed: int, ln: list[float], dtype: str, block_info=None) -> np.ndarray:
    (i0, i1), _, _ = block_info[None]["array-location"]
    g = gen(latent_noise(seed, gen.latent, start=i0, stop=i1))
    return K.denormalise(g, ln).astype(dtype, copy=False)


def _sigma_block(block):
    x = np.asarray(block, dtype=np.float64)
    return np.stack([x.mean(axis=(1, 2)), (x * x).mean(axis=(1, 2))], axis=1)


def _musigma(moments: np.ndarray, legacy: bool) -> list[float]:
    mu = float(np.mean(moments[:, 0]))
    sq = float(np.mean(moments[:, 1]))
    if legacy:  # the legacy defect: sqrt(E[x^2] - mu)
        with np.errstate(invalid="ignore"):
            return [mu, float(np.sqrt(sq - mu))]
    return [mu, math.sqrt(max(sq - mu * mu, 0.0))]


class GeneratedSetTarget(ImageSetTarget):
    """The legacy image-set layout, plus provenance attributes and the generated set's ``musigmainfo``.

    ``musigmainfo`` (``[mu, sigma]`` of the generated pixels; ``legacy=True``: the legacy
    ``sqrt(E[x^2] - mu)``) is computed from the written images in :meth:`finalize`, before
    the atomic rename, so a complete output always has it.
    """

    def __init__(self, path, *, lognorminfo, attrs: dict, legacy: bool = False):
        super().__init__(path, constants={"lognorminfo": lognorminfo})
        self.attrs = dict(attrs)
        self.legacy = bool(legacy)

    def params(self) -> dict:
        return {**super().params(), "attrs": self.attrs, "legacy": self.legacy}

    def _layout(self, f, variables: list[Variable]) -> None:
        # everything the finished file holds exists from the start, musigmainfo too (filled in
        # finalize, in place): a resumed run ends with the bytes of an uninterrupted one
        from ..io.hdf5_write import fixed_dataset

        super()._layout(f, variables)
        fixed_dataset(f, "musigmainfo", (2,), np.float64)
        for k, v in self.attrs.items():
            f.attrs[k] = v if isinstance(v, int | float | str) else json.dumps(v)

    def finalize(self, tmp: Path) -> None:
        import h5py

        with h5py.File(tmp, "r+") as f:
            n = 0
            rows = []
            while str(n) in f:
                rows.append(_sigma_block(f[str(n)][()][None])[0])
                n += 1
            f["musigmainfo"][...] = np.asarray(_musigma(np.asarray(rows), self.legacy), dtype=np.float64)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())


def generate_images(
    generator: Any,
    n: int,
    *,
    seed: int | None = None,
    batch_size: int = 16,
    lognorminfo: Any = None,
    like: Any = None,
    out: str | os.PathLike | None = None,
    channel: int = 0,
    dtype: Any = np.float64,
    legacy: bool = False,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> Any:
    """``n`` images from a generator: seeded latent noise, batched, de-normalised (legacy ``gen_GAN_images.py``).

    Parameters
    ----------
    generator : path-like or keras.Model
        A ``.keras`` file (loaded with :func:`load_generator`; each worker process loads it
        once) or a model object (``sync``/``threads`` schedulers; not resumable by another
        process). Its input is the latent vector (shape from the model), its output
        ``(batch, H, W[, channels])`` in [-1, 1] (tanh).
    n : int
        Number of images.
    seed : int, optional
        Seed of the latent noise (default: a fresh one, recorded in the output's attributes).
    batch_size : int, optional
        Images per model call and per written block (legacy: 16); the latent noise does
        not depend on it.
    lognorminfo : array-like of 2 floats, optional
        ``[Lmin, Lmax]`` of the real set.
    like : path-like or xarray.DataArray, optional
        The real image set whose ``lognorminfo`` de-normalises the output (it is only read;
        give this or ``lognorminfo``).
    out : path-like, optional
        Image set to write (legacy HDF5 layout, or ``.zarr``), streamed through the core
        engine: atomic, and a rerun after an interruption resumes. The file gets the real
        set's ``lognorminfo``, the generated set's ``musigmainfo`` and the provenance
        (``seed``, ``generator``, ``generator_sha256``, ``latent_shape``, ``batch_size``) as
        attributes (HDF5: written before the rename; Zarr: added right after it).
        Default: return the lazy images.
    channel : int, optional
        Output channel taken from a 4-D output (legacy: 0).
    dtype : dtype, optional
        Pixel type written (default float64).
    legacy : bool, optional
        ``musigmainfo`` of the written set with the legacy sigma ``sqrt(E[x^2] - mu)``.
    overwrite, scheduler, progress
        As for :func:`lazyastro.gan.write_imageset`.

    Returns
    -------
    xarray.DataArray (image, y, x) or str
        The lazy de-normalised images (``attrs``: ``lognorminfo``, ``seed``, ``generator``),
        or the path written.

    Raises
    ------
    ParameterError
        Bad ``n``, ``batch_size``, ``seed``, ``channel``; neither or both of
        ``lognorminfo`` and ``like``.
    FormatError, InputNotFoundError
        See :func:`load_generator`; the real set has no ``lognorminfo``.
    KerasMissingError
        Keras is not installed.

    Examples
    --------
    >>> generate_images("/nonexistent.keras", 4, lognorminfo=[0, 1])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputNotFoundError: /nonexistent.keras: no such file
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize

    n = _check_count(n, "n")
    batch_size = _check_count(batch_size, "batch size")
    seed = check_seed(seed)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ParameterError(f"dtype must be a floating type, got {dtype}")
    ln = _resolve_lognorminfo(lognorminfo, like)
    gen = _Generator(generator, channel)
    h, w = gen.image_shape
    chunks = (tuple(min(batch_size, n - i) for i in builtins.range(0, n, batch_size)), (h,), (w,))
    name = "gan-generate-" + tokenize(gen.token, gen.channel, seed, n, batch_size, ln, dtype.str)
    data = da.map_blocks(_generate_block, gen, seed, ln, dtype.str, chunks=chunks, dtype=dtype, name=name,
                         meta=np.empty((0, 0, 0), dtype))
    attrs = {"seed": seed, "generator": gen.label, "generator_sha256": gen.digest or "",
             "latent_shape": list(gen.latent), "batch_size": batch_size}
    images = xr.DataArray(data, dims=("image", "y", "x"), name="images",
                          attrs={"lognorminfo": ln, **attrs})
    if out is None:
        return images
    out = Path(os.fspath(out))
    from .imageset import _is_zarr

    if _is_zarr(out):
        from ..core.execution import compute
        from .imageset import write_imageset

        path = write_imageset(images, out, overwrite=overwrite, scheduler=scheduler, progress=progress)
        import zarr

        from .imageset import open_imageset

        written = open_imageset(path).data
        (mom,) = compute(written.map_blocks(_sigma_block, drop_axis=2, chunks=(written.chunks[0], (2,)),
                                            dtype=np.float64, meta=np.empty((0, 0))),
                         scheduler=scheduler, progress=False)
        node = zarr.open(str(path), mode="r+")
        node.attrs.update({"musigmainfo": _musigma(np.asarray(mom), legacy), **attrs})
        return path
    target = GeneratedSetTarget(out, lognorminfo=ln, attrs=attrs, legacy=legacy)
    return store(data, target, overwrite=overwrite, scheduler=scheduler, progress=progress,
                 desc=f"generate {out.name}")


# --------------------------------------------------------------------------- histograms of generated sets


def _hist_block(gen: _Generator, seed: int, ln: list[float], per_set: int, batch_size: int, bins: int,
                range_: tuple[float, float], block_info=None) -> np.ndarray:
    (s, _), (j, _), _ = block_info[None]["array-location"]
    i0, i1 = j * batch_size, min(per_set, (j + 1) * batch_size)
    g = gen(latent_noise(seed, gen.latent, start=i0, stop=i1, set_index=s))
    vec = K.histogram_block(K.denormalise_log10(g, ln), bins=bins, range=range_, log=False)
    return vec.reshape(1, 1, -1)


class HistogramSetsTarget(StreamTarget):
    """The legacy ``gen_GAN_intensity_histograms.py`` file, one set per write block (resumable).

    ``"<set>"`` float64 ``(bins,)`` summed counts, ``binedges`` ``(bins + 1,)``, ``imagesize``
    ``[width, height]``, ``datasize`` ``[n_sets, images_per_set]``, plus ``droppedpixels``
    ``(n_sets, 5)`` int64 (non-positive, NaN, below, above, total) and provenance attributes.
    """

    format = "gan-histograms"
    single_writer = True

    def __init__(self, path, *, edges, imagesize, datasize, attrs: dict):
        super().__init__(path)
        self.edges = [float(v) for v in edges]
        self.imagesize = [int(v) for v in imagesize]
        self.datasize = [int(v) for v in datasize]
        self.attrs = dict(attrs)

    def params(self) -> dict:
        return {"edges": self.edges, "imagesize": self.imagesize, "datasize": self.datasize, "attrs": self.attrs}

    def is_own_output(self, path: Path) -> bool:
        import h5py

        try:
            with h5py.File(path, "r") as f:
                return "binedges" in f and "datasize" in f
        except Exception:
            return False

    def chunks(self, var_index, var):
        return ((1,) * var.shape[0], (var.shape[1],))

    def create(self, tmp: Path, variables: list[Variable]) -> None:
        from ..io.hdf5_write import fixed_dataset, new_file

        bins = len(self.edges) - 1
        # no object times, and every dataset's space allocated now (writes then change no
        # metadata): a resumed or repeated run gives the same bytes
        with new_file(tmp) as f:
            for s in builtins.range(self.datasize[0]):
                fixed_dataset(f, str(s), (bins,), np.float64)
            for k, v, t in (("binedges", self.edges, np.float64), ("imagesize", self.imagesize, np.int64),
                            ("datasize", self.datasize, np.int64)):
                fixed_dataset(f, k, (len(v),), t, data=np.asarray(v, dtype=t))
            fixed_dataset(f, "droppedpixels", (self.datasize[0], 5), np.int64)
            for k, v in self.attrs.items():
                f.attrs[k] = v if isinstance(v, int | float | str) else json.dumps(v)

    def write(self, tmp: Path, var_index, region, block) -> None:
        import h5py

        bins = len(self.edges) - 1
        with h5py.File(tmp, "r+") as f:
            for k, s in enumerate(builtins.range(region[0].start, region[0].stop)):
                f[str(s)][...] = block[k, :bins].astype(np.float64)
                f["droppedpixels"][s] = block[k, bins:]
            f.flush()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())


def gan_histograms(
    generator: Any,
    out: str | os.PathLike,
    *,
    n_sets: int,
    images_per_set: int,
    range: tuple[float, float] = (-5.0, 10.0),  # noqa: A002
    bins: int = 100,
    seed: int | None = None,
    batch_size: int = 16,
    lognorminfo: Any = None,
    like: Any = None,
    channel: int = 0,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> str:
    """Log10-intensity histograms of ``n_sets`` generated sets of ``images_per_set`` images each.

    The legacy ``gen_GAN_intensity_histograms.py`` job: per set, fresh latent noise, batches
    of ``batch_size``, ``log10`` of the de-normalised pixels
    (:func:`~lazyastro.gan.denormalise_log10`), one accumulated histogram per set (NumPy
    semantics). The images are never stored; pixels outside the range (or NaN) are counted
    in ``droppedpixels`` instead of silently lost. Batches run in parallel; each finished set
    is recorded, so an interrupted run resumes.

    Parameters
    ----------
    generator : path-like or keras.Model
        As for :func:`generate_images`.
    out : path-like
        The HDF5 file to write (see :class:`HistogramSetsTarget`).
    n_sets, images_per_set : int
        Number of sets and images per set.
    range : (float, float), optional
        Histogram range in log10 units (legacy ``histrangelower histrangeupper``).
    bins : int, optional
        Number of bins.
    seed : int, optional
        Seed (default: a fresh one, recorded in the file's attributes); set ``s``, image ``i``
        get the latent vector of ``(seed, s, i)``.
    batch_size, lognorminfo, like, channel, overwrite, scheduler, progress
        As for :func:`generate_images`.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ParameterError, FormatError, InputNotFoundError, KerasMissingError
        As for :func:`generate_images`; bad ``bins``/``range``.

    Examples
    --------
    >>> gan_histograms("/nonexistent.keras", "/tmp/h.h5", n_sets=2, images_per_set=3,
    ...                lognorminfo=[0, 1])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputNotFoundError: /nonexistent.keras: no such file
    """
    import dask.array as da
    from dask.base import tokenize

    n_sets = _check_count(n_sets, "n_sets")
    per_set = _check_count(images_per_set, "images_per_set")
    batch_size = _check_count(batch_size, "batch size")
    seed = check_seed(seed)
    bins = _check_count(bins, "bins")
    lo, hi = (float(v) for v in range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ParameterError(f"range must be two finite numbers lower < upper, got {range!r}")
    ln = _resolve_lognorminfo(lognorminfo, like)
    gen = _Generator(generator, channel)
    h, w = gen.image_shape
    n_batches = math.ceil(per_set / batch_size)
    name = "gan-histograms-" + tokenize(gen.token, gen.channel, seed, n_sets, per_set, batch_size, ln, bins, lo, hi)
    parts = da.map_blocks(_hist_block, gen, seed, ln, per_set, batch_size, bins, (lo, hi), name=name,
                          chunks=((1,) * n_sets, (1,) * n_batches, (bins + 5,)), dtype=np.int64,
                          meta=np.empty((0, 0, 0), np.int64))
    counts = parts.sum(axis=1, dtype=np.int64)
    attrs = {"seed": seed, "generator": gen.label, "generator_sha256": gen.digest or "",
             "lognorminfo": ln, "batch_size": batch_size, "droppedpixels_columns": "nonpositive,nan,below,above,total"}
    target = HistogramSetsTarget(out, edges=np.linspace(lo, hi, bins + 1), imagesize=[w, h],
                                 datasize=[n_sets, per_set], attrs=attrs)
    return store(counts, target, overwrite=overwrite, scheduler=scheduler, progress=progress,
                 desc=f"histograms {Path(os.fspath(out)).name}")


def open_gan_histograms(path: str | os.PathLike) -> Any:
    """Read a :func:`gan_histograms` file (or a legacy one) as an ``xarray.Dataset``.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    xarray.Dataset
        ``counts (set, bin)`` float64, coordinates ``bin_centre``, ``edges (edge)``; attrs
        ``imagesize`` ``[width, height]``, ``images_per_set``; ``dropped (set, reason)``
        when the file has it.

    Raises
    ------
    InputNotFoundError, FormatError

    Examples
    --------
    >>> open_gan_histograms("/nonexistent.h5")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputNotFoundError: /nonexistent.h5: no such file
    """
    import xarray as xr

    from ..core.paths import require_input
    from ..io.hdf5 import open_h5file

    p = require_input(path)
    with open_h5file(p) as f:
        missing = [k for k in ("binedges", "datasize") if k not in f]
        if missing:
            raise FormatError(f"not a GAN histograms file: no {' or '.join(missing)}", p)
        edges = np.asarray(f["binedges"][()], dtype=np.float64)
        n_sets, per_set = (int(v) for v in np.ravel(f["datasize"][()])[:2])
        absent = [str(s) for s in builtins.range(n_sets) if str(s) not in f]
        if absent:
            raise FormatError(f"histogram {absent[0]!r} is missing (datasize says {n_sets} sets)", p)
        counts = np.stack([np.asarray(f[str(s)][()], dtype=np.float64) for s in builtins.range(n_sets)])
        if counts.shape[1] != len(edges) - 1:
            raise FormatError(f"histograms have {counts.shape[1]} bins but binedges {len(edges)} edges", p)
        imagesize = [int(v) for v in np.ravel(f["imagesize"][()])] if "imagesize" in f else None
        dropped = np.asarray(f["droppedpixels"][()]) if "droppedpixels" in f else None
    ds = xr.Dataset({"counts": (("set", "bin"), counts)},
                    coords={"bin_centre": ("bin", 0.5 * (edges[1:] + edges[:-1])), "edges": ("edge", edges)},
                    attrs={"images_per_set": per_set, **({"imagesize": imagesize} if imagesize else {})})
    if dropped is not None:
        ds["dropped"] = (("set", "reason"), dropped)
        ds = ds.assign_coords(reason=["nonpositive", "nan", "below", "above", "total"])
    return ds
