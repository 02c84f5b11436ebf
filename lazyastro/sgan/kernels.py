"""Kernels of Spatial-GAN generation: pure functions on in-memory blocks (numpy or CuPy).

No Keras, dask, files or printing here; the array module comes from the input.

- :func:`run_layers`: evaluate a fully convolutional generator (a list of :class:`Layer`
  records: transposed / plain convolutions with "same" padding, and element-wise
  activations) on one noise window, **so that every output pixel is computed with the same
  arithmetic whatever the window's size or position**. TensorFlow's own convolutions (and
  BLAS matrix products) choose their blocking, and so their summation order, from the
  input shape, and its vectorised activations round the tail of an array differently
  from its body: a pixel then differs in the last bits between a tile and the whole
  field. Here each layer is a set of matrix products of one fixed shape over blocks of
  ``BLOCK x BLOCK`` noise pixels (scaled to each layer) on a grid fixed in absolute field coordinates
  (every pixel sits at the same place of a same-shaped product in a tile and in the whole
  field), followed by numpy's element-wise bias and activation (correctly rounded or
  position independent). That is what makes tiled generation equal one-shot generation
  bit for bit.
- :func:`denormalise`: sigmoid output -> physical units with per-band min/max.
- :func:`modal_offset`: the legacy "rescale" (left edge of the modal bin of a histogram).
- :func:`shuffle_noise`: the legacy noise shuffle, seeded.

>>> import numpy as np
>>> denormalise(np.full((2, 1, 1), 0.5, "f4"), [0.0, -1.0], [2.0, 1.0]).ravel().tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import vectorize

from ..core.backend import array_namespace
from ..core.errors import ParameterError
from ..core.threads import single_thread_blas

__all__ = ["Layer", "BLOCK", "ACTIVATIONS", "run_layers", "apply_activation", "denormalise",
           "modal_offset", "shuffle_threshold", "shuffle_noise", "upsampling"]

#: side, in noise pixels, of the fixed blocks of the matrix products: a layer whose input grid
#: has ``u`` pixels per noise pixel works in blocks of ``BLOCK * u`` pixels. Part of what the
#: pixels are (another value changes the last bits), so fixed.
BLOCK = 8
#: element-wise activations :func:`run_layers` evaluates
ACTIVATIONS = ("linear", "relu", "elu", "leaky_relu", "sigmoid", "tanh")


@dataclass
class Layer:
    """One layer of a fully convolutional generator, as :func:`run_layers` evaluates it.

    ``kind`` is ``"conv_transpose"`` (kernel ``(k, k, out, in)``, Keras layout), ``"conv"``
    (kernel ``(k, k, in, out)``, stride 1) or ``"activation"`` (no kernel). ``activation`` is
    applied after the bias; ``alpha`` is the ELU / leaky-ReLU parameter.
    """

    kind: str
    kernel: Any = None
    bias: Any = None
    stride: int = 1
    activation: str = "linear"
    alpha: float = 0.0
    name: str = ""
    _mats: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return 1 if self.kernel is None else int(self.kernel.shape[0])

    @property
    def pad_before(self) -> int:
        """First index cropped from the full (transposed) convolution: the TF "same" rule."""
        if self.kind == "conv_transpose":
            return (self.size - self.stride) // 2
        return (self.size - 1) // 2

    def taps(self, phase: int) -> list[tuple[int, int]]:
        """``(m, d)``: kernel taps ``m`` that reach output phase ``phase``, read at input offset ``d``.

        Output ``o = s q + phase`` is ``sum_m x[q + d] K[m]``.
        """
        k, s, pb = self.size, self.stride, self.pad_before
        if self.kind == "conv_transpose":  # o = i s + m - pb
            return [(m, (phase + pb - m) // s) for m in range(k) if (phase + pb - m) % s == 0]
        return [(m, m - pb) for m in range(k)]  # o = i - m + pb ... read x[o + m - pb]


def upsampling(layers: list[Layer]) -> int:
    """Total upsampling factor of a layer list.

    >>> upsampling([Layer("conv_transpose", np.zeros((4, 4, 1, 1)), stride=2)] * 2)
    4
    """
    return math.prod(layer.stride if layer.kind == "conv_transpose" else 1 for layer in layers)


def apply_activation(x, name: str, alpha: float = 0.0):
    """An element-wise activation whose value at a pixel does not depend on the array around it.

    Parameters
    ----------
    x : array
        Pre-activation values (float32).
    name : str
        One of :data:`ACTIVATIONS`.
    alpha : float
        ELU / leaky-ReLU parameter.

    Returns
    -------
    array

    Examples
    --------
    >>> apply_activation(np.array([-1.0, 2.0], "f4"), "relu").tolist()
    [0.0, 2.0]
    """
    xp = array_namespace(x)
    if name == "linear":
        return x
    if name == "relu":
        return xp.maximum(x, x.dtype.type(0))
    if name == "elu":
        # expm1 of x itself where x <= 0 (so -0 stays -0, as in Keras and the compiled form)
        neg = xp.expm1(xp.where(x > 0, x.dtype.type(0), x))
        if alpha != 1.0:
            neg = neg * x.dtype.type(alpha)
        return xp.where(x > 0, x, neg)
    if name == "leaky_relu":
        return xp.where(x > 0, x, x * x.dtype.type(alpha))
    if name == "sigmoid":
        e = xp.exp(-xp.abs(x))
        one = x.dtype.type(1)
        return xp.where(x >= 0, one / (one + e), e / (one + e))
    if name == "tanh":
        return xp.tanh(x)
    raise ParameterError(f"activation {name!r} is not supported (one of {', '.join(ACTIVATIONS)})")


@vectorize(["float32(float32)"], nopython=True, cache=True)
def _elu_f32(v):  # pragma: no cover - compiled
    # one scalar libm expm1f per negative element: the same bits as numpy's float32 expm1 branch
    # of :func:`apply_activation`, whatever the element's position (no SIMD body / tail split)
    return v if v > 0 else math.expm1(v)


def _activate_inplace(x, name: str, alpha: float):
    """:func:`apply_activation` on a fresh float32 array it may overwrite (numpy ELU in place)."""
    if name == "elu" and alpha == 1.0 and isinstance(x, np.ndarray) and x.dtype == np.float32:
        return _elu_f32(x, out=x)
    return apply_activation(x, name, alpha)


def _matrix(layer: Layer, ty: list, tx: list, xp):
    """The ``(ntaps * in, out)`` weight matrix of one output phase, rows in patch order (cached)."""
    key = (tuple(ty), tuple(tx), xp.__name__)
    mat = layer._mats.get(key)
    if mat is None:
        kern = np.asarray(layer.kernel, dtype=np.float32)
        rows = []
        for my, _ in ty:
            for mx, _ in tx:
                w = kern[my, mx]
                rows.append(w.T if layer.kind == "conv_transpose" else w)  # (in, out)
        mat = xp.asarray(np.ascontiguousarray(np.concatenate(rows, axis=0)))
        layer._mats[key] = mat
    return mat


def _conv_layer(x, layer: Layer, origin: tuple[int, int], block: int, align: int):
    """One convolution on window ``x (H, W, in)`` whose first pixel is at ``origin`` (absolute).

    Blocks of ``block`` pixels start at the absolute positions ``align + k * block``.
    """
    xp = array_namespace(x)
    h, w, cin = x.shape
    s = layer.stride if layer.kind == "conv_transpose" else 1
    cout = int(layer.kernel.shape[2] if layer.kind == "conv_transpose" else layer.kernel.shape[3])
    out = xp.empty((h * s, w * s, cout), dtype=np.float32)
    for ry in range(s):
        # taps in increasing input offset: a patch is then one sliding-window view
        ty = sorted(layer.taps(ry), key=lambda t: t[1])
        for rx in range(s):
            tx = sorted(layer.taps(rx), key=lambda t: t[1])
            mat = _matrix(layer, ty, tx, xp)
            dy0, dx0 = ty[0][1], tx[0][1]
            nty, ntx = len(ty), len(tx)
            lo_y, hi_y = max(0, -dy0), max(0, ty[-1][1])
            lo_x, hi_x = max(0, -dx0), max(0, tx[-1][1])
            padded = xp.zeros((h + lo_y + hi_y, w + lo_x + hi_x, cin), dtype=np.float32)
            padded[lo_y:lo_y + h, lo_x:lo_x + w] = x
            # view[a, b, c, i, j] = padded[a + i, b + j, c]
            view = xp.lib.stride_tricks.sliding_window_view(padded, (nty, ntx), axis=(0, 1))
            patch = xp.zeros((block, block, nty, ntx, cin), dtype=np.float32)
            phase_out = out[ry::s, rx::s]
            # blocks of the phase grid q (= input grid), aligned to absolute coordinates
            for by in range(origin[0] - (origin[0] - align) % block, origin[0] + h, block):
                y0, y1 = max(by, origin[0]), min(by + block, origin[0] + h)
                for bx in range(origin[1] - (origin[1] - align) % block, origin[1] + w, block):
                    x0, x1 = max(bx, origin[1]), min(bx + block, origin[1] + w)
                    if (y1 - y0, x1 - x0) != (block, block):
                        patch[...] = 0
                    py, px = y0 - by, x0 - bx
                    qy, qx = y0 - origin[0] + dy0 + lo_y, x0 - origin[1] + dx0 + lo_x
                    patch[py:py + y1 - y0, px:px + x1 - x0] = view[qy:qy + y1 - y0, qx:qx + x1 - x0].transpose(
                        0, 1, 3, 4, 2)
                    res = (patch.reshape(block * block, -1) @ mat).reshape(block, block, cout)
                    oy, ox = y0 - origin[0], x0 - origin[1]
                    phase_out[oy:oy + y1 - y0, ox:ox + x1 - x0] = res[py:py + y1 - y0, px:px + x1 - x0]
    if layer.bias is not None:
        out += xp.asarray(np.asarray(layer.bias, dtype=np.float32))
    return out


def run_layers(layers: list[Layer], z, *, origin: tuple[int, int] = (0, 0), block: int = BLOCK,
               align: int = 0):
    """Evaluate a generator on one noise window, pixel by pixel independent of the window.

    Parameters
    ----------
    layers : list of Layer
        The generator (see :func:`lazyastro.sgan.receptive.generator_layers`).
    z : array (h, w, channels) float32
        The noise window.
    origin : (int, int)
        Absolute noise coordinates of ``z[0, 0]`` in the whole field (aligns the blocks).
    block : int, optional
        Block side of the matrix products in noise pixels (:data:`BLOCK`); it must be the same
        for every window of a field.
    align : int, optional
        Noise position of a block start (the same for every window of a field; tiling passes
        ``-lead`` so that tile windows start on a block).

    Returns
    -------
    array (h * U, w * U, bands) float32
        ``U`` = :func:`upsampling`; pixels closer to a window edge than the model's receptive
        band see the window edge as the field edge.

    Examples
    --------
    >>> k = np.ones((2, 2, 1, 1), "f4")
    >>> run_layers([Layer("conv_transpose", k, stride=2)], np.ones((1, 1, 1), "f4")).ravel().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    xp = array_namespace(z)
    x = xp.asarray(z, dtype=np.float32)
    if x.ndim != 3:
        raise ParameterError(f"a noise window must be (y, x, channel), got shape {tuple(x.shape)}")
    oy, ox = (int(v) for v in origin)
    if isinstance(x, np.ndarray):
        # one BLAS thread: OpenBLAS splits a product differently (and so rounds it differently) with
        # its thread count, so a pixel must not depend on how many threads a tile's process allows;
        # parallelism comes from tiles running side by side
        with single_thread_blas():
            return _run(layers, x, oy, ox, block, align)
    return _run(layers, x, oy, ox, block, align)


def _run(layers, x, oy: int, ox: int, block: int, align: int):
    up = 1  # pixels of the current grid per noise pixel
    for layer in layers:
        if layer.kind == "activation":
            x = apply_activation(x, layer.activation, layer.alpha)  # x may be the caller's window
            continue
        x = _conv_layer(x, layer, (oy, ox), block * up, (align * up) % (block * up))
        if layer.kind == "conv_transpose":
            oy, ox, up = oy * layer.stride, ox * layer.stride, up * layer.stride
        x = _activate_inplace(x, layer.activation, layer.alpha)  # x is this layer's fresh output
    return x


def denormalise(g, band_min, band_max):
    """Sigmoid output in [0, 1] -> physical units: ``g (max - min) + min`` per band (axis 0).

    Parameters
    ----------
    g : array (band, ...) float32
    band_min, band_max : sequence of float, one per band

    Returns
    -------
    array, float32

    Examples
    --------
    >>> denormalise(np.ones((1, 2), "f4"), [1.0], [3.0]).tolist()
    [[3.0, 3.0]]
    """
    xp = array_namespace(g)
    lo = np.asarray(band_min, dtype=np.float32).reshape((-1,) + (1,) * (g.ndim - 1))
    hi = np.asarray(band_max, dtype=np.float32).reshape((-1,) + (1,) * (g.ndim - 1))
    if lo.shape[0] != g.shape[0]:
        raise ParameterError(f"{lo.shape[0]} band constants for {g.shape[0]} bands")
    return (g * xp.asarray(hi - lo) + xp.asarray(lo)).astype(np.float32, copy=False)


def modal_offset(counts, edges) -> float:
    """The legacy rescale offset: the left edge of the modal (most populated) histogram bin.

    Examples
    --------
    >>> modal_offset(np.array([1, 5, 2]), np.array([0.0, 1.0, 2.0, 3.0]))
    1.0
    """
    counts = np.asarray(counts)
    return float(np.asarray(edges)[int(np.argmax(counts))])


def shuffle_threshold(counts, edges) -> float:
    """The legacy shuffle threshold (1 sigma of the sky peak) from a 100000-bin histogram.

    Among bins whose left edge is <= 0, the bin whose count is closest to half the peak count
    gives the half width at half maximum (its negative left edge); ``sigma = 2 |HWHM| /
    sqrt(8 ln 2)``.

    Examples
    --------
    >>> e = np.linspace(-4, 4, 9); c = np.array([0, 1, 5, 9, 10, 9, 5, 1])
    >>> round(shuffle_threshold(c, e), 4)
    1.6986
    """
    counts, edges = np.asarray(counts), np.asarray(edges)
    left = edges[:-1]
    ok = np.nonzero(left <= 0)[0]
    if ok.size == 0:
        return 0.0
    half = counts.max() / 2.0
    i = ok[np.argmin(np.abs(counts[ok] - half))]
    hwhm = float(left[i])
    return 2.0 * abs(hwhm) / math.sqrt(8.0 * math.log(2.0))


def shuffle_noise(image, threshold: float, rng: np.random.Generator):
    """Permute, with ``rng``, all values ``<= threshold`` among their own positions (a copy).

    Examples
    --------
    >>> out = shuffle_noise(np.arange(6.0), 2.0, np.random.default_rng(0))
    >>> sorted(out[:3].tolist()), out[3:].tolist()
    ([0.0, 1.0, 2.0], [3.0, 4.0, 5.0])
    """
    out = np.array(image, copy=True)
    flat = out.reshape(-1)
    idx = np.nonzero(flat <= threshold)[0]
    flat[idx] = flat[idx[rng.permutation(idx.size)]]
    return out
