"""RaSGAN training of the Spatial GAN (spec section 4), with checkpoints, resume and a loss log.

Each iteration picks one (noise size, crop size) pair uniformly, then makes one generator step
and one discriminator step, each with fresh random crops (uniform corners, random horizontal and
vertical flips) and fresh ``z ~ N(0, 1)``. The two networks have their own Adam optimisers
(2e-4, 0.5, 0.999), unlike the legacy shared one. Steps are ``tf.GradientTape`` functions (the
TensorFlow backend of Keras 3); the models themselves are backend-neutral.

Output directory ``out``::

    losses.csv                one row per iteration (epoch, iteration, sizes, losses, seconds)
    loss_curve.png            updated at every checkpoint
    real_sample.png           a crop of the training data, same stretch as the samples
    checkpoints/epoch-NNNNN/  generator.keras (with metadata), discriminator.keras,
                              optimizers.npz, state.json (counters, RNG state), sample.png

A checkpoint directory appears complete or not at all (written as ``.partial`` and renamed);
``resume=True`` continues from the latest one: weights, optimiser moments, RNG state and the
epoch counter.

Training data is the output of :func:`lazyastro.sgan.preprocess` (or any input it accepts, which
is preprocessed first). Data up to ``in_memory_limit`` bytes is held in memory; larger data stays
a dask array and each batch reads only its crops.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, ParameterError
from ..core.random import check_seed
from .display import stretch  # noqa: F401  (public here too: training samples use it)

__all__ = ["train", "TrainResult", "parse_sizes", "stretch", "latest_checkpoint", "REFERENCE_SIZES"]

REFERENCE_SIZES = ((4, 64), (8, 128), (16, 256))
_CSV_FIELDS = ("epoch", "iteration", "z_size", "crop_size", "d_loss", "g_loss", "seconds")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    out : pathlib.Path
        The output directory.
    checkpoint : pathlib.Path or None
        The latest checkpoint directory (holds ``generator.keras``).
    epoch : int
        Epochs done in total (including resumed ones).
    iterations : int
        Iterations done in total.
    d_loss, g_loss : float
        Losses of the last iteration.
    seconds : float
        Training wall time in total (including resumed runs).
    """

    out: Path
    checkpoint: Path | None
    epoch: int
    iterations: int
    d_loss: float
    g_loss: float
    seconds: float

    @property
    def generator_path(self) -> Path | None:
        """``generator.keras`` of the latest checkpoint."""
        return None if self.checkpoint is None else self.checkpoint / "generator.keras"


def parse_sizes(text: str | list | tuple) -> tuple[tuple[int, int], ...]:
    """``"4:64,8:128"`` (or pairs) -> ``((4, 64), (8, 128))`` of (noise size, crop size).

    Parameters
    ----------
    text : str or sequence of pairs
        Comma-separated ``Z:CROP`` pairs.

    Returns
    -------
    tuple of (int, int)

    Raises
    ------
    ParameterError
        If a pair is malformed or not positive.

    Examples
    --------
    >>> parse_sizes("4:64,8:128")
    ((4, 64), (8, 128))
    """
    try:
        if isinstance(text, str):
            pairs = [tuple(int(v) for v in item.split(":")) for item in text.split(",") if item.strip()]
        else:
            pairs = [tuple(int(v) for v in p) for p in text]
    except (TypeError, ValueError):
        raise ParameterError(f"sizes must be Z:CROP pairs like 4:64,8:128, got {text!r}") from None
    if not pairs or any(len(p) != 2 or p[0] < 1 or p[1] < 1 for p in pairs):
        raise ParameterError(f"sizes must be positive Z:CROP pairs like 4:64,8:128, got {text!r}")
    return tuple((int(a), int(b)) for a, b in pairs)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(array).save(path)


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint directory under ``out/checkpoints`` (``None`` when none).

    Parameters
    ----------
    out : str or os.PathLike
        A training output directory.

    Returns
    -------
    pathlib.Path or None

    Examples
    --------
    >>> latest_checkpoint("/nonexistent") is None
    True
    """
    root = Path(out) / "checkpoints"
    if not root.is_dir():
        return None
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("epoch-") and not p.name.endswith(".partial")
            and (p / "state.json").is_file()]
    if not done:
        return None
    return max(done, key=lambda p: int(p.name.split("-")[1]))


class _Crops:
    """Random crops ``(n, c, c, bands)`` with random flips from a ``(band, y, x)`` array."""

    def __init__(self, data, rng: np.random.Generator, in_memory_limit: int):
        self.rng = rng
        arr = data.data if hasattr(data, "dims") else data
        self.shape = tuple(int(s) for s in arr.shape)
        nbytes = int(np.prod(self.shape)) * 4
        if nbytes <= in_memory_limit:
            self.cube = np.ascontiguousarray(np.moveaxis(np.asarray(arr, dtype="float32"), 0, -1))
            self.lazy = None
        else:
            self.cube = None
            self.lazy = arr

    def batch(self, n: int, c: int) -> np.ndarray:
        _, h, w = self.shape
        if c > h or c > w:
            raise ParameterError(f"crop size {c} is larger than the training image ({h} x {w})")
        ys = self.rng.integers(0, h - c + 1, n)
        xs = self.rng.integers(0, w - c + 1, n)
        flip_y = self.rng.random(n) < 0.5
        flip_x = self.rng.random(n) < 0.5
        if self.cube is not None:
            crops = np.stack([self.cube[y:y + c, x:x + c] for y, x in zip(ys, xs)])
        else:
            import dask.array as da

            crops = np.moveaxis(np.asarray(da.stack([self.lazy[:, y:y + c, x:x + c] for y, x in zip(ys, xs)])
                                           .compute(), dtype="float32"), 1, -1)
        crops[flip_y] = crops[flip_y, ::-1]
        crops[flip_x] = crops[flip_x, :, ::-1]
        return np.ascontiguousarray(crops, dtype="float32")


def _training_data(data: Any, preprocess_options: dict | None):
    import xarray as xr

    from .preprocessing import IMAGE_SUFFIXES, preprocess

    if isinstance(data, xr.DataArray) and "band_min" in data.attrs:
        if preprocess_options:
            raise ParameterError("the training data is already preprocessed; drop the preprocessing options")
        return data.transpose("band", ...) if "band" in data.dims else data
    if isinstance(data, (str, os.PathLike)) and not os.fspath(data).startswith("skimage:") and \
            Path(data).suffix.lower() not in IMAGE_SUFFIXES:
        import lazyastro

        path = Path(data)
        if not path.exists():
            raise InputNotFoundError("no such file or directory", path)
        opened = lazyastro.open(path)
        if "band_min" in opened.attrs and "band_max" in opened.attrs:
            if preprocess_options:
                raise ParameterError("the training data is already preprocessed; drop the preprocessing options",
                                     path)
            if opened.ndim != 3:
                raise FormatError(f"preprocessed data must be (band, y, x), got {opened.dims}", path)
            attrs = dict(opened.attrs)
            attrs.setdefault("bands", [f"band{i}" for i in range(opened.shape[0])])
            out = xr.DataArray(opened.data, dims=("band", "y", "x"), attrs=attrs)
            return out
    return preprocess(data, **(preprocess_options or {}))


def _set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:  # TensorFlow already initialised: keep its settings
        pass


def _plot_losses(csv_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(open(csv_path, newline="")))
    if not rows:
        return
    it = np.array([int(r["iteration"]) for r in rows])
    d = np.array([float(r["d_loss"]) for r in rows])
    g = np.array([float(r["g_loss"]) for r in rows])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for y, label, color in ((d, "discriminator", "tab:blue"), (g, "generator", "tab:orange")):
        ax.plot(it, y, color=color, alpha=0.25, lw=0.6)
        k = max(1, min(len(y) // 20, 60))
        if len(y) >= k:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            ax.plot(it[k - 1:], smooth, color=color, lw=1.5, label=f"{label} (mean of {k})")
    ax.set_xlabel("iteration")
    ax.set_ylabel("RaSGAN loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)


def train(data: Any, out: str | os.PathLike, *, epochs: int, iterations_per_epoch: int = 30, batch_size: int = 32,
          sizes: Any = REFERENCE_SIZES, filters: int = 32, noise_channels: int = 50, depth: int = 4,
          checkpoint_every: int = 10, resume: bool = False, seed: int | None = None,
          learning_rate: float = 2e-4, beta_1: float = 0.5, beta_2: float = 0.999, sample_size: int = 32,
          threads: int | None = None, progress: bool | None = None, preprocess_options: dict | None = None,
          in_memory_limit: int = 2**30) -> TrainResult:
    """Train a Spatial GAN generator with RaSGAN (spec section 4) and write checkpoints.

    Parameters
    ----------
    data : xarray.DataArray, str, path or array
        Preprocessed data (the output of :func:`lazyastro.sgan.preprocess`, or a Zarr/FITS/... file
        written from it, recognised by its ``band_min``/``band_max`` attrs) or any input of
        ``preprocess``, which is then preprocessed with ``preprocess_options``.
    out : str or os.PathLike
        Output directory (created).
    epochs : int
        Train until this many epochs are done in total (a resumed run continues the count).
    iterations_per_epoch : int, optional
        Iterations per epoch (30).
    batch_size : int, optional
        Images per step (32; even: the discriminator sees pairs).
    sizes : str or sequence of (int, int), optional
        (noise size, crop size) pairs drawn uniformly per iteration; ``crop = 2**depth * z``.
    filters, noise_channels, depth : int, optional
        Architecture (:func:`lazyastro.sgan.build_generator`; the discriminator gets the same
        ``filters`` and ``depth``).
    checkpoint_every : int, optional
        Write a checkpoint every this many epochs (and after the last one).
    resume : bool, optional
        Continue from the latest checkpoint in ``out``.
    seed : int, optional
        Seeds crops, flips, noise and the initial weights (fresh when ``None``).
    learning_rate, beta_1, beta_2 : float, optional
        Adam settings of both optimisers.
    sample_size : int, optional
        Noise side of the sample image written with each checkpoint (32 -> 512 px).
    threads : int, optional
        TensorFlow intra/inter-op threads.
    progress : bool, optional
        Show a progress bar (default: the ``progress`` option).
    preprocess_options : dict, optional
        Keywords of :func:`lazyastro.sgan.preprocess` for raw data.
    in_memory_limit : int, optional
        Data up to this many bytes (float32) is loaded; larger data is read crop by crop.

    Returns
    -------
    TrainResult

    Raises
    ------
    ParameterError
        Bad settings (odd batch, crop larger than the data, crop != 2**depth * z, resume without
        a checkpoint or with another architecture).

    Examples
    --------
    >>> train(preprocess("skimage:hubble_deep_field"), "run", epochs=2, filters=4, sizes="2:32")  # doctest: +SKIP
    """
    from ..core.execution import _want_progress

    for name, v in (("epochs", epochs), ("iterations_per_epoch", iterations_per_epoch), ("batch_size", batch_size),
                    ("checkpoint_every", checkpoint_every), ("filters", filters), ("noise_channels", noise_channels),
                    ("depth", depth), ("sample_size", sample_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    if batch_size % 2:
        raise ParameterError(f"batch_size must be even (the discriminator sees pairs), got {batch_size}")
    sizes = parse_sizes(sizes)
    up = 2**depth
    for z, c in sizes:
        if c != up * z:
            raise ParameterError(f"size {z}:{c}: the crop must be {up} x the noise size ({up * z})")
    seed = check_seed(seed)
    out = Path(out)
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        raise ParameterError("nothing to resume: no checkpoint in this directory", out / "checkpoints")
    if not resume and latest_checkpoint(out) is not None:
        raise ParameterError("has checkpoints already: pass resume=True (--resume) or another directory", out)

    cube = _training_data(data, preprocess_options)
    from .preprocessing import model_meta

    base_meta = model_meta(cube)
    n_bands = int(cube.shape[0])

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set_threads(threads)
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ParameterError(f"training needs the TensorFlow backend of Keras (KERAS_BACKEND), got "
                             f"{keras.backend.backend()!r}")
    from .model import build_discriminator, build_generator, pack_pairs, rasgan_losses, save_model

    state: dict[str, Any]
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        arch = state["architecture"]
        if (arch["filters"], arch["noise_channels"], arch["depth"]) != (filters, noise_channels, depth):
            raise ParameterError(f"the checkpoint has filters={arch['filters']}, noise_channels="
                                 f"{arch['noise_channels']}, depth={arch['depth']}; pass the same to resume", ckpt)
        if int(state["bands"]) != n_bands:
            raise ParameterError(f"the checkpoint was trained on {state['bands']} bands, the data has {n_bands}", ckpt)
        gen = keras.models.load_model(ckpt / "generator.keras", safe_mode=True, compile=False)
        disc = keras.models.load_model(ckpt / "discriminator.keras", safe_mode=True, compile=False)
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        seed = int(state["seed"])
        start_epoch = int(state["epoch"])
        iteration = int(state["iteration"])
        seconds_before = float(state["seconds"])
    else:
        keras.utils.set_random_seed(seed % 2**32)
        gen = build_generator(noise_channels=noise_channels, filters=filters, depth=depth, out_channels=n_bands)
        disc = build_discriminator(in_channels=n_bands, filters=filters, depth=depth)
        rng = np.random.default_rng([seed, 0])
        start_epoch = 0
        iteration = 0
        seconds_before = 0.0
    arch = {"filters": filters, "noise_channels": noise_channels, "depth": depth, "out_channels": n_bands,
            "generator": "lazyastro.sgan.build_generator", "discriminator": "lazyastro.sgan.build_discriminator",
            "generator_parameters": int(gen.count_params()),
            "discriminator_parameters": int(disc.count_params())}
    g_opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    d_opt = keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2)
    g_opt.build(gen.trainable_variables)
    d_opt.build(disc.trainable_variables)
    if ckpt is not None:
        with np.load(ckpt / "optimizers.npz", allow_pickle=False) as f:
            for prefix, opt in (("g", g_opt), ("d", d_opt)):
                n = int(f[f"{prefix}_count"])
                if n != len(opt.variables):
                    raise FormatError(f"optimizer state has {n} variables, expected {len(opt.variables)}", ckpt)
                for i, var in enumerate(opt.variables):
                    var.assign(f[f"{prefix}{i}"])

    spec = tf.TensorSpec([None, None, None, noise_channels], tf.float32)
    img_spec = tf.TensorSpec([None, None, None, n_bands], tf.float32)

    @tf.function(input_signature=[spec, img_spec])
    def g_step(z, reals):
        with tf.GradientTape() as tape:
            fakes = gen(z, training=True)
            d_loss, g_loss = rasgan_losses(disc(pack_pairs(reals), training=True),
                                           disc(pack_pairs(fakes), training=True))
        grads = tape.gradient(g_loss, gen.trainable_variables)
        g_opt.apply_gradients(zip(grads, gen.trainable_variables))
        return d_loss, g_loss

    @tf.function(input_signature=[spec, img_spec])
    def d_step(z, reals):
        fakes = gen(z, training=False)
        with tf.GradientTape() as tape:
            d_loss, g_loss = rasgan_losses(disc(pack_pairs(reals), training=True),
                                           disc(pack_pairs(fakes), training=True))
        grads = tape.gradient(d_loss, disc.trainable_variables)
        d_opt.apply_gradients(zip(grads, disc.trainable_variables))
        return d_loss, g_loss

    crops = _Crops(cube, rng, in_memory_limit)
    for _, c in sizes:
        if c > crops.shape[1] or c > crops.shape[2]:
            raise ParameterError(f"crop size {c} is larger than the training image ({crops.shape[1]} x "
                                 f"{crops.shape[2]})")
    test_z = np.random.default_rng([seed, 1]).standard_normal((1, sample_size, sample_size, noise_channels),
                                                               dtype="float32")
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)
    csv_path = out / "losses.csv"
    if ckpt is not None and csv_path.exists():  # drop rows after the checkpoint (work that was lost)
        rows = [r for r in csv.DictReader(open(csv_path, newline="")) if int(r["epoch"]) <= start_epoch]
    else:
        rows = []
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
        w.writeheader()
        w.writerows(rows)
    if not (out / "real_sample.png").exists():
        side = min(16 * sample_size, crops.shape[1], crops.shape[2])
        real = np.moveaxis(np.asarray(cube.data[:, :side, :side], dtype="float32"), 0, -1)
        _save_png(stretch(real), out / "real_sample.png")

    config = {"iterations_per_epoch": iterations_per_epoch, "batch_size": batch_size,
              "sizes": [list(s) for s in sizes], "learning_rate": learning_rate, "beta_1": beta_1,
              "beta_2": beta_2, "seed": seed, "data_shape": list(crops.shape),
              "optimizers": "two Adam (generator, discriminator)", "loss": "RaSGAN", "flips": "random h and v"}
    d_loss = g_loss = float("nan")
    last = ckpt
    t0 = time.perf_counter()

    def checkpoint(epoch: int) -> Path:
        elapsed = seconds_before + time.perf_counter() - t0
        final = out / "checkpoints" / f"epoch-{epoch:05d}"
        tmp = final.with_name(final.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        training = dict(config, epochs=epoch, iterations=iteration, seconds=round(elapsed, 1),
                        d_loss=d_loss, g_loss=g_loss)
        meta = dict(base_meta, architecture=arch, training=training)
        save_model(gen, tmp / "generator.keras", meta=meta)
        disc.save(tmp / "discriminator.keras")
        arrays = {}
        for prefix, opt in (("g", g_opt), ("d", d_opt)):
            arrays[f"{prefix}_count"] = np.array(len(opt.variables))
            for i, var in enumerate(opt.variables):
                arrays[f"{prefix}{i}"] = np.asarray(var.numpy())
        np.savez(tmp / "optimizers.npz", **arrays)
        sample = np.asarray(gen(test_z, training=False))[0]
        _save_png(stretch(sample), tmp / "sample.png")
        st = {"epoch": epoch, "iteration": iteration, "seconds": elapsed, "seed": seed, "rng": rng.bit_generator.state,
              "architecture": arch, "bands": n_bands, "config": config, "d_loss": d_loss, "g_loss": g_loss}
        (tmp / "state.json").write_text(json.dumps(st, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        try:
            _plot_losses(csv_path, out / "loss_curve.png")
        except ImportError:  # pragma: no cover - matplotlib is optional
            pass
        return final

    total = max(0, epochs - start_epoch) * iterations_per_epoch
    bar = None
    if _want_progress(progress) and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="sgan train", unit="it", file=sys.stderr)
    try:
        with open(csv_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
            for epoch in range(start_epoch + 1, epochs + 1):
                for _ in range(iterations_per_epoch):
                    zs, cs = sizes[int(rng.integers(len(sizes)))]
                    reals = crops.batch(batch_size, cs)
                    z = rng.standard_normal((batch_size, zs, zs, noise_channels), dtype="float32")
                    _, gl = g_step(z, reals)
                    reals = crops.batch(batch_size, cs)
                    z = rng.standard_normal((batch_size, zs, zs, noise_channels), dtype="float32")
                    dl, _ = d_step(z, reals)
                    d_loss, g_loss = float(dl), float(gl)
                    if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
                        raise FormatError(f"training diverged at iteration {iteration} (losses {d_loss}, {g_loss})",
                                          out)
                    iteration += 1
                    w.writerow({"epoch": epoch, "iteration": iteration, "z_size": zs, "crop_size": cs,
                                "d_loss": f"{d_loss:.6g}", "g_loss": f"{g_loss:.6g}",
                                "seconds": f"{seconds_before + time.perf_counter() - t0:.2f}"})
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(epoch=epoch, d=f"{d_loss:.3f}", g=f"{g_loss:.3f}", refresh=False)
                f.flush()
                if epoch % checkpoint_every == 0 or epoch == epochs:
                    last = checkpoint(epoch)
    finally:
        if bar is not None:
            bar.close()
    if last is not None and ckpt is last:  # nothing new trained (epochs already reached)
        state = json.loads((last / "state.json").read_text())
        d_loss, g_loss = float(state["d_loss"]), float(state["g_loss"])
    return TrainResult(out=out, checkpoint=last, epoch=max(epochs, start_epoch), iterations=iteration,
                       d_loss=d_loss, g_loss=g_loss, seconds=seconds_before + time.perf_counter() - t0)
