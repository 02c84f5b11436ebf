"""Receptive field computed from the layers, checked against the reference facts and empirically."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lazyastro.sgan.kernels import Layer, run_layers
from lazyastro.sgan.receptive import NotFullyConvolutionalError, generator_layers, receptive_field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from lazyastro.sgan.model import build_generator  # noqa: E402


@pytest.fixture(scope="module")
def reference_tiny():
    """The reference geometry (depth 4, kernels 4/3, strides of the spec) with few filters."""
    return build_generator(filters=1, noise_channels=2)


def test_reference_architecture_needs_6_noise_pixels():
    rf = receptive_field(build_generator())
    assert tuple(rf) == (3, 2)
    assert (rf.lead_band, rf.trail_band, rf.upsampling) == (44, 30, 16)
    assert rf.overlap == 6 and rf.size == 6
    assert (rf.depends_lead, rf.depends_trail) == (3, 2)


def test_other_architectures_are_computed_not_hard_coded():
    small = receptive_field(build_generator(filters=2, depth=2, noise_channels=2))
    assert small.upsampling == 4 and tuple(small) != (3, 2) or small.lead_band != 44
    wide = receptive_field(build_generator(filters=1, noise_channels=2, kernel=6))
    assert wide.lead_band > 44 and wide.trail_band > 30


def test_one_noise_pixel_influences_exactly_the_predicted_output_rows(reference_tiny):
    """Perturb one noise pixel, run the Keras model itself, see which output rows change."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, 12, 12, 2)).astype("f4")
    c = 6
    z2 = z.copy()
    z2[0, c, c] += 3.0
    d = np.abs(np.asarray(reference_tiny(z2)) - np.asarray(reference_tiny(z)))[0].max(axis=(1, 2))
    rows = np.nonzero(d > 1e-6)[0]
    # spec section 7: output rows 16(c-2)+2 ... 16(c+3)+11
    assert rows.min() == 16 * (c - 2) + 2 and rows.max() == 16 * (c + 3) + 11
    rf = receptive_field(reference_tiny)
    assert rows.min() >= 16 * (c - rf.depends_trail) and rows.max() < 16 * (c + rf.depends_lead + 1)


def test_edge_bands_are_exactly_where_a_window_differs_from_the_whole_field(reference_tiny):
    layers = generator_layers(reference_tiny)
    rf = receptive_field(layers)
    z = np.random.default_rng(1).standard_normal((14, 14, 2)).astype("f4")
    full = run_layers(layers, z)
    a, b = 4, 11
    win = run_layers(layers, z[a:b, a:b], origin=(a, a))
    n = 16 * (b - a)
    lo, hi = rf.lead_band, n - rf.trail_band
    diff = np.abs(win - full[16 * a:16 * b, 16 * a:16 * b]).max(axis=2)
    for d in (diff[:, lo:hi].max(axis=1), diff[lo:hi, :].max(axis=0)):  # rows, then columns
        same = np.nonzero(d == 0)[0]
        assert (same.min(), same.max() + 1) == (lo, hi)
        assert np.all(d[lo:hi] == 0) and d[lo - 1] > 0 and d[hi] > 0


def test_layers_that_cannot_be_analysed_are_refused():
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2DTranspose(4, 4, strides=2, padding="same")(inp)
    dense = keras.Model(inp, keras.layers.Dense(3, name="proj")(x))
    with pytest.raises(NotFullyConvolutionalError, match="'proj' \\(Dense\\)"):
        receptive_field(dense)
    valid = keras.Sequential([keras.Input((None, None, 3)),
                              keras.layers.Conv2DTranspose(4, 4, strides=2, padding="valid", name="v")])
    with pytest.raises(NotFullyConvolutionalError, match="padding 'valid'"):
        receptive_field(valid)
    pooled = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2DTranspose(4, 4, padding="same"),
                               keras.layers.MaxPooling2D(name="pool")])
    with pytest.raises(NotFullyConvolutionalError, match="MaxPooling2D"):
        receptive_field(pooled)


def test_sequential_with_activation_layers_is_accepted():
    seq = keras.Sequential([keras.Input((None, None, 2)),
                            keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same"),
                            keras.layers.LeakyReLU(negative_slope=0.1),
                            keras.layers.Conv2D(2, 3, padding="same", activation="tanh")])
    layers = generator_layers(seq)
    assert [x.kind for x in layers] == ["conv_transpose", "activation", "conv"]
    z = np.random.default_rng(2).standard_normal((1, 5, 6, 2)).astype("f4")
    np.testing.assert_allclose(run_layers(layers, z[0]), np.asarray(seq(z))[0], atol=2e-6)
    assert receptive_field(seq).upsampling == 2


def test_layer_records_without_keras():
    k = np.zeros((4, 4, 1, 1), "f4")
    rf = receptive_field([Layer("conv_transpose", k, stride=2)] * 2 + [Layer("conv", np.zeros((3, 3, 1, 1)))])
    assert rf.upsampling == 4 and rf.lead >= 1
