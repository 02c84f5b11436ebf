"""The receptive field of a fully convolutional generator, computed from its layers.

A "same" transposed convolution of kernel ``k`` and stride ``s`` (TensorFlow rule) maps input
``i`` and kernel tap ``m`` to output ``o = i s + m - pb`` with ``pb = floor((k - s) / 2)``; a
"same" stride-1 convolution reads ``x[o + m - floor((k - 1) / 2)]``. Propagating these rules
through the layer list gives, per axis:

- the noise pixels an output pixel depends on (``c - depends_lead ... c + depends_trail`` for
  an output pixel of noise cell ``c``);
- the *zero-padding bands* of a finite window: output pixels closer than ``lead_band``
  (``trail_band``) to the leading (trailing) window edge see the edge; all others are
  identical to the output of an infinite field;
- the halo a tile needs to be exact: ``lead = ceil(lead_band / U)`` noise pixels before it
  and ``trail = ceil(trail_band / U)`` after it (``U`` the upsampling).

For the reference architecture (spec §7): bands 44 and 30 output pixels, halo 3 + 2 noise
pixels, dependence ``c - 3 ... c + 2`` (6 noise pixels), symmetric overlap 6.

>>> import numpy as np
>>> from lazyastro.sgan.kernels import Layer
>>> layers = [Layer("conv_transpose", np.zeros((4, 4, 1, 1)), stride=2) for _ in range(4)]
>>> tuple(receptive_field(layers)), receptive_field(layers).upsampling
((1, 1), 16)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..core.errors import ParameterError
from .kernels import ACTIVATIONS, Layer, upsampling

__all__ = ["ReceptiveField", "receptive_field", "generator_layers", "NotFullyConvolutionalError"]


class NotFullyConvolutionalError(ParameterError):
    """A generator layer that tiled generation cannot analyse (Dense, pooling, valid padding...)."""


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of a generator, per axis; unpacks as ``(lead, trail)`` noise pixels.

    Attributes
    ----------
    lead, trail : int
        Noise pixels of halo an exact tile needs before / after itself.
    lead_band, trail_band : int
        Output pixels at the leading / trailing edge of a finite window that see the edge.
    depends_lead, depends_trail : int
        An output pixel of noise cell ``c`` depends on noise ``c - depends_lead ... c + depends_trail``.
    upsampling : int
        Output pixels per noise pixel.
    """

    lead: int
    trail: int
    lead_band: int
    trail_band: int
    depends_lead: int
    depends_trail: int
    upsampling: int

    def __iter__(self):
        return iter((self.lead, self.trail))

    @property
    def overlap(self) -> int:
        """Minimum exact *symmetric* overlap in noise pixels (half before, half after a tile)."""
        return 2 * max(self.lead, self.trail)

    @property
    def size(self) -> int:
        """Noise pixels (per axis) one output pixel depends on."""
        return self.depends_lead + self.depends_trail + 1


def _activation_name(fn) -> tuple[str, float]:
    name = getattr(fn, "__name__", str(fn))
    if name not in ACTIVATIONS:
        raise NotFullyConvolutionalError(
            f"activation {name!r} is not supported for exact tiling (one of {', '.join(ACTIVATIONS)})")
    return name, {"elu": 1.0, "leaky_relu": 0.2}.get(name, 0.0)


def _pair(value, what: str, layer) -> int:
    vals = tuple(int(v) for v in (value if isinstance(value, tuple | list) else (value, value)))
    if len(set(vals)) != 1:
        raise NotFullyConvolutionalError(f"layer {layer.name!r}: {what} {vals} must be the same on both axes")
    return vals[0]


def _convert(layer) -> Layer | None:
    import numpy as np

    cls = type(layer).__name__
    if cls == "InputLayer":
        return None
    if cls in ("Conv2DTranspose", "Conv2D"):
        bad = []
        if getattr(layer, "padding", "same") != "same":
            bad.append(f"padding {layer.padding!r} (needs 'same')")
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            bad.append(f"data_format {layer.data_format!r} (needs 'channels_last')")
        if _pair(getattr(layer, "dilation_rate", 1), "dilation_rate", layer) != 1:
            bad.append("dilation")
        if getattr(layer, "output_padding", None) is not None:
            bad.append("output_padding")
        if getattr(layer, "groups", 1) != 1:
            bad.append("groups")
        stride = _pair(layer.strides, "strides", layer)
        k = _pair(layer.kernel_size, "kernel_size", layer)
        kind = "conv_transpose" if cls == "Conv2DTranspose" else "conv"
        if kind == "conv" and stride != 1:
            bad.append(f"stride {stride} (a Conv2D must have stride 1)")
        if kind == "conv_transpose" and (k - stride) < 0:
            bad.append(f"kernel {k} smaller than stride {stride}")
        if bad:
            raise NotFullyConvolutionalError(f"layer {layer.name!r} ({cls}) cannot be tiled exactly: "
                                             + ", ".join(bad))
        act, alpha = _activation_name(layer.activation)
        bias = np.asarray(layer.bias, dtype=np.float32) if getattr(layer, "use_bias", False) else None
        return Layer(kind, np.asarray(layer.kernel, dtype=np.float32), bias, stride, act, alpha, layer.name)
    if cls in ("Activation", "ELU", "LeakyReLU", "ReLU"):
        if cls == "Activation":
            act, alpha = _activation_name(layer.activation)
        elif cls == "ELU":
            act, alpha = "elu", float(layer.alpha)
        elif cls == "LeakyReLU":
            act, alpha = "leaky_relu", float(layer.negative_slope)
        else:
            if layer.max_value is not None or float(layer.negative_slope) or float(layer.threshold):
                raise NotFullyConvolutionalError(f"layer {layer.name!r} (ReLU) with max_value/slope/threshold "
                                                 "is not supported")
            act, alpha = "relu", 0.0
        return Layer("activation", activation=act, alpha=alpha, name=layer.name)
    raise NotFullyConvolutionalError(
        f"layer {layer.name!r} ({cls}) cannot be analysed: the generator must be fully convolutional "
        "(Conv2DTranspose / Conv2D with padding='same', and activations)")


def generator_layers(model: Any) -> list[Layer]:
    """The layers of a Keras generator (or an ``SGANModel``) as :class:`~.kernels.Layer` records.

    Parameters
    ----------
    model : keras.Model, SGANModel or list of Layer
        A chain of ``Conv2DTranspose`` / ``Conv2D`` ("same" padding) and activation layers.

    Returns
    -------
    list of Layer

    Raises
    ------
    NotFullyConvolutionalError
        For any other layer (Dense, pooling, normalisation...), branches, or several inputs.

    Examples
    --------
    >>> generator_layers([])
    Traceback (most recent call last):
    ...
    lazyastro.sgan.receptive.NotFullyConvolutionalError: the generator has no convolution layers
    """
    if isinstance(model, list | tuple) and all(isinstance(x, Layer) for x in model):
        layers = list(model)
    else:
        gen = getattr(model, "generator", model)
        if not hasattr(gen, "layers"):
            raise NotFullyConvolutionalError(f"not a Keras model: {type(model).__name__}")
        if len(getattr(gen, "inputs", None) or [None]) != 1 or len(getattr(gen, "outputs", None) or [None]) != 1:
            raise NotFullyConvolutionalError("the generator must have one input and one output")
        layers, prev = [], None
        for layer in gen.layers:
            conv = _convert(layer)
            if prev is not None and conv is not None:
                try:
                    chained = layer.input is prev.output
                except Exception:
                    chained = True  # Sequential layers without a built graph: order is the chain
                if not chained:
                    raise NotFullyConvolutionalError(f"layer {layer.name!r} does not follow {prev.name!r}: "
                                                     "the generator must be a chain of layers")
            prev = layer
            if conv is not None:
                layers.append(conv)
    if not any(x.kind != "activation" for x in layers):
        raise NotFullyConvolutionalError("the generator has no convolution layers")
    return layers


def _input_range(layer: Layer, lo: int, hi: int) -> tuple[int, int]:
    """Input indices ``[a, b]`` that outputs ``lo..hi`` of one layer read (infinite axis)."""
    k, pb = layer.size, layer.pad_before
    if layer.kind == "conv_transpose":
        s = layer.stride
        return -((-(lo + pb - (k - 1))) // s), (hi + pb) // s
    return lo - pb, hi - pb + k - 1


def receptive_field(generator: Any) -> ReceptiveField:
    """The receptive field of a fully convolutional generator, computed from its layers.

    Parameters
    ----------
    generator : keras.Model, SGANModel or list of Layer
        The generator (see :func:`generator_layers` for what is accepted).

    Returns
    -------
    ReceptiveField
        Unpacks as ``(lead, trail)``: noise pixels of halo an exact tile needs before and
        after itself; ``.lead_band`` / ``.trail_band`` in output pixels, ``.overlap`` the
        minimum exact symmetric overlap.

    Raises
    ------
    NotFullyConvolutionalError
        If a layer cannot be analysed.

    Examples
    --------
    >>> import numpy as np
    >>> from lazyastro.sgan.kernels import Layer
    >>> ref = [Layer("conv_transpose", np.zeros((4, 4, 1, 1)), stride=s) for s in (2, 2, 1, 1, 2, 1, 1, 2, 1, 1)]
    >>> rf = receptive_field(ref + [Layer("conv_transpose", np.zeros((3, 3, 1, 1)))])
    >>> tuple(rf), rf.lead_band, rf.trail_band, rf.size, rf.overlap
    ((3, 2), 44, 30, 6, 6)
    """
    layers = [x for x in generator_layers(generator) if x.kind != "activation"]
    up = upsampling(layers)
    # dependence: noise range of every sub-pixel of cell 0
    dep_lo, dep_hi = 0, 0
    for o in range(up):
        lo, hi = o, o
        for layer in reversed(layers):
            lo, hi = _input_range(layer, lo, hi)
        dep_lo, dep_hi = min(dep_lo, lo), max(dep_hi, hi)
    # exact interval of a finite window, propagated forward
    n = 8 * (sum(x.size for x in layers) + 8)
    a, b = 0, n  # exact outputs [a, b) of the current level
    for layer in layers:
        n_out = n * (layer.stride if layer.kind == "conv_transpose" else 1)
        exact = [o for o in range(n_out) if a <= _input_range(layer, o, o)[0] and _input_range(layer, o, o)[1] < b]
        if not exact:
            raise NotFullyConvolutionalError("the receptive field is larger than the analysis window")
        a, b, n = exact[0], exact[-1] + 1, n_out
    lead_band, trail_band = a, n - b
    return ReceptiveField(lead=math.ceil(lead_band / up), trail=math.ceil(trail_band / up), lead_band=lead_band,
                          trail_band=trail_band, depends_lead=-dep_lo, depends_trail=dep_hi, upsampling=up)
