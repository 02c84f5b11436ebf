"""The Spatial GAN model: builders (spec sizes and parameter counts), RaSGAN losses, model files."""

from __future__ import annotations

import json
import os
import warnings
import zipfile

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from lazyastro.core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError  # noqa: E402
from lazyastro.sgan import (  # noqa: E402
    SGANModel,
    build_discriminator,
    build_generator,
    builtin_model_path,
    load_model,
    rasgan_losses,
    save_model,
)
from lazyastro.sgan.model import LEGACY_META, META_MEMBER, pack_pairs, read_meta  # noqa: E402

META = {"bands": ["R", "G", "B"], "band_min": [0.0, 1.0, 2.0], "band_max": [10.0, 11.0, 12.0],
        "units": "counts", "preprocessing": {"clip_percentile": 99.99}}


@pytest.fixture(scope="module")
def reference_generator():
    return build_generator()


def test_reference_generator_parameters_and_sizes(reference_generator):
    g = reference_generator
    assert g.count_params() == 1_582_851
    assert tuple(g.inputs[0].shape) == (None, None, None, 50)
    for z, px in ((4, 64), (7, 112)):
        out = np.asarray(g(np.random.default_rng(0).normal(size=(1, z, z, 50)).astype("float32")))
        assert out.shape == (1, px, px, 3)
        assert np.all((out > 0) & (out < 1))  # sigmoid
    # the table of spec section 2: filters, kernels, strides
    convs = [layer for layer in g.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert [c.filters for c in convs] == [256, 128, 128, 128, 64, 64, 64, 32, 32, 32, 3]
    assert [c.strides[0] for c in convs] == [2, 2, 1, 1, 2, 1, 1, 2, 1, 1, 1]
    assert [c.kernel_size[0] for c in convs] == [4] * 10 + [3]
    assert all(c.padding == "same" for c in convs)


def test_reference_discriminator_parameters():
    d = build_discriminator()
    assert d.count_params() == 691_937
    assert tuple(d.inputs[0].shape) == (None, None, None, 6)
    for px in (64, 128):
        assert d(np.zeros((2, px, px, 6), "float32")).shape == (2, 1)


def test_configurable_builders():
    g = build_generator(noise_channels=5, filters=4, depth=3, out_channels=2)
    assert g(np.zeros((1, 3, 5, 5), "float32")).shape == (1, 24, 40, 2)
    d = build_discriminator(in_channels=2, filters=4, depth=2)
    assert tuple(d.inputs[0].shape) == (None, None, None, 4)
    with pytest.raises(ParameterError, match="filters"):
        build_generator(filters=0)
    with pytest.raises(ParameterError, match="depth"):
        build_discriminator(depth=-1)


def test_pack_pairs_layout():
    x = np.arange(4 * 2 * 2 * 3, dtype="float32").reshape(4, 2, 2, 3)
    p = np.asarray(pack_pairs(x))
    assert p.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(p[0, ..., :3], x[0])
    np.testing.assert_array_equal(p[0, ..., 3:], x[2])
    np.testing.assert_array_equal(p[1, ..., 3:], x[3])


def test_rasgan_losses_match_the_formula():
    rng = np.random.default_rng(1)
    cr = rng.normal(size=16).astype("float32") + 1
    cf = rng.normal(size=16).astype("float32") - 1

    def sig(v):
        return 1 / (1 + np.exp(-v.astype("float64")))

    r = sig(cr - cf.mean())
    f = sig(cf - cr.mean())
    eps = 1e-9
    d_ref = abs(-(np.mean(np.log(r + eps)) + np.mean(np.log(1 - f + eps))))
    g_ref = abs(-(np.mean(np.log(f + eps)) + np.mean(np.log(1 - r + eps))))
    d, g = rasgan_losses(cr, cf)
    assert np.isfinite(float(d)) and np.isfinite(float(g))
    assert float(d) == pytest.approx(d_ref, rel=1e-5)
    assert float(g) == pytest.approx(g_ref, rel=1e-5)
    # equal logits: both losses are 2 log 2
    d0, g0 = rasgan_losses(np.zeros(4, "float32"), np.zeros(4, "float32"))
    assert float(d0) == pytest.approx(2 * np.log(2), rel=1e-6)
    assert float(g0) == pytest.approx(2 * np.log(2), rel=1e-6)
    # saturated logits stay finite thanks to eps
    d1, g1 = rasgan_losses(np.full(4, 200.0, "float32"), np.full(4, -200.0, "float32"))
    assert np.isfinite(float(d1)) and np.isfinite(float(g1))


def test_save_load_round_trip_keeps_weights_and_metadata(tmp_path):
    g = build_generator(filters=4, noise_channels=8)
    path = save_model(g, tmp_path / "g.keras", meta=META)
    assert path.exists() and not (tmp_path / "g.partial.keras").exists()
    with zipfile.ZipFile(path) as zf:
        stored = json.loads(zf.read(META_MEMBER))
    assert stored["bands"] == ["R", "G", "B"] and stored["noise_channels"] == 8 and stored["upsampling"] == 16
    m = load_model(path)
    assert isinstance(m, SGANModel)
    assert m.bands == ["R", "G", "B"] and m.band_min == [0.0, 1.0, 2.0] and m.band_max == [10.0, 11.0, 12.0]
    assert m.units == "counts" and m.noise_channels == 8 and m.upsampling == 16
    assert m.meta["preprocessing"] == {"clip_percentile": 99.99}
    assert m.path == path and len(m.sha256) == 64
    z = np.random.default_rng(2).normal(size=(1, 3, 3, 8)).astype("float32")
    np.testing.assert_array_equal(np.asarray(m.generator(z)), np.asarray(g(z)))
    phys = m.denormalise(np.ones((2, 2, 3), "float32"))
    np.testing.assert_allclose(phys[0, 0], [10.0, 11.0, 12.0])
    assert read_meta(path)["units"] == "counts"


def test_save_refuses_bad_arguments(tmp_path):
    g = build_generator(filters=4, noise_channels=8)
    with pytest.raises(ParameterError, match=".keras"):
        save_model(g, tmp_path / "g.h5", meta=META)
    with pytest.raises(ParameterError, match="band_max"):
        save_model(g, tmp_path / "g.keras", meta={"bands": ["a"], "band_min": [0]})
    with pytest.raises(ParameterError, match="bands"):
        save_model(g, tmp_path / "g.keras", meta={**META, "bands": ["a", "b"], "band_min": [0, 0],
                                                    "band_max": [1, 1]})


def test_model_without_metadata_gets_legacy_constants(tmp_path):
    g = build_generator(filters=4, noise_channels=8)
    g.save(tmp_path / "plain.keras")
    with pytest.warns(UserWarning, match="legacy"):
        m = load_model(tmp_path / "plain.keras")
    assert m.bands == LEGACY_META["bands"] and m.band_max == LEGACY_META["band_max"]
    assert m.meta["layout"] == "legacy" and m.noise_channels == 8 and m.upsampling == 16


def test_lambda_model_is_refused(tmp_path):
    inp = keras.Input((None, None, 8))
    x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(inp)
    x = keras.layers.Lambda(lambda t: t * 2.0)(x)
    bad = keras.Model(inp, x)
    path = tmp_path / "lambda.keras"
    bad.save(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(META_MEMBER, json.dumps(META))
    with pytest.raises(FormatError, match="unsafe") as err:
        load_model(path)
    assert str(err.value).startswith(str(path))


@pytest.mark.parametrize("kind", ["fixed", "dense"])
def test_non_convolutional_generator_is_refused(tmp_path, kind):
    if kind == "fixed":
        inp = keras.Input((4, 4, 8))
        x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(inp)
        match = "fixed spatial size"
    else:
        inp = keras.Input((None, None, 8))
        x = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(inp)
        x = keras.layers.Dense(3)(x)
        match = "Dense"
    model = keras.Model(inp, x)
    path = tmp_path / f"{kind}.keras"
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FormatError, match=match):
            load_model(path)
    with pytest.raises(FormatError, match=match):
        save_model(model, tmp_path / "out.keras", meta=META)


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(InputNotFoundError) as err:
        load_model(tmp_path / "nope.keras")
    assert "nope.keras" in str(err.value)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="zip"):
        load_model(tmp_path / "junk.keras")
    (tmp_path / "m.h5").write_bytes(b"x")
    with pytest.raises(FormatError, match=".keras"):
        load_model(tmp_path / "m.h5")
    with zipfile.ZipFile(tmp_path / "badmeta.keras", "w") as zf:
        zf.writestr(META_MEMBER, "{not json")
    with pytest.raises(FormatError, match="invalid JSON"):
        load_model(tmp_path / "badmeta.keras")
    assert issubclass(FormatError, LazyAstroError)


def test_builtin_model_path():
    p = builtin_model_path()
    assert p.name == "hdf_sgan.keras" and p.parent.name == "data"
    if p.exists():
        m = load_model()
        assert m.path == p and m.upsampling == 16 and len(m.bands) == 3
    assert os.fspath(p).endswith(os.path.join("sgan", "data", "hdf_sgan.keras"))
