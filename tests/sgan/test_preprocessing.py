"""Spatial GAN preprocessing: exact lazy percentile, clip, min-max, inputs, metadata."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from lazyastro.core.errors import FormatError, InputNotFoundError, ParameterError
from lazyastro.sgan import preprocess
from lazyastro.sgan.preprocessing import band_percentile, model_meta


@pytest.mark.parametrize("kind", ["normal3", "integers", "nan"])
@pytest.mark.parametrize("q", [99.99, 0.0, 37.3])
def test_band_percentile_is_exact_through_the_histogram_passes(kind, q):
    rng = np.random.default_rng(3)
    if kind == "normal3":
        x = rng.normal(size=(120, 150)) ** 3
    elif kind == "integers":
        x = rng.integers(0, 256, (120, 150)).astype("float32")
    else:
        x = rng.normal(size=(120, 150))
        x[:4] = np.nan
    lazy = da.from_array(x, chunks=(60, 75))
    # select_limit small: several histogram passes narrow the bin before the exact ranking
    got = band_percentile(lazy, q, select_limit=100, bins=16)
    assert got == np.nanpercentile(x.astype("float64"), q)
    for q2 in (50.0, 100.0, 62.5):  # in-memory path (one exact pass)
        assert band_percentile(x, q2) == np.nanpercentile(x.astype("float64"), q2)


def test_band_percentile_errors():
    with pytest.raises(ParameterError, match="percentile"):
        band_percentile(np.zeros(4), 101)
    with pytest.raises(FormatError, match="finite"):
        band_percentile(np.full(4, np.nan), 50)


def test_preprocess_array_clip_and_minmax():
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(2, 60, 70)).astype("float32")
    cube[1] *= 10
    out = preprocess(cube, bands=["a", "b"], units="e-/s", clip_percentile=99.0)
    assert out.dims == ("band", "y", "x") and out.shape == (2, 60, 70) and out.dtype == np.float32
    assert isinstance(out.data, da.Array)
    vals = out.values
    for c in range(2):
        p = np.percentile(cube[c].astype("float64"), 99.0)
        lo = float(cube[c].min())
        assert out.attrs["band_max"][c] == p and out.attrs["band_min"][c] == lo
        ref = ((np.minimum(cube[c].astype("float64"), p) - lo) / (p - lo)).astype("float32")
        np.testing.assert_allclose(vals[c], ref, atol=1e-6)
        assert vals[c].min() == 0 and vals[c].max() == pytest.approx(1.0)
    assert out.attrs["bands"] == ["a", "b"] and out.attrs["units"] == "e-/s"
    settings = json.loads(out.attrs["preprocessing"])
    assert settings["clip_percentile"] == 99.0 and settings["normalise"] == "minmax"
    assert list(out["band"].values) == ["a", "b"]


def test_preprocess_rgb_image_and_select():
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3)).astype("uint8")
    out = preprocess(img)
    assert out.shape == (3, 40, 50) and out.attrs["bands"] == ["R", "G", "B"]
    np.testing.assert_allclose(out.values[1] * (out.attrs["band_max"][1] - out.attrs["band_min"][1])
                               + out.attrs["band_min"][1],
                               np.minimum(img[..., 1], out.attrs["band_max"][1]), atol=1e-3)
    sel = preprocess(img, select=[2], clip_percentile=None)
    assert sel.attrs["bands"] == ["B"] and sel.attrs["band_max"] == [float(img[..., 2].max())]


def test_preprocess_png_file(tmp_path):
    from PIL import Image

    img = np.random.default_rng(2).integers(0, 256, (30, 20, 3)).astype("uint8")
    Image.fromarray(img).save(tmp_path / "im.png")
    out = preprocess(tmp_path / "im.png", clip_percentile=None)
    assert out.shape == (3, 30, 20) and out.attrs["bands"] == ["R", "G", "B"]
    np.testing.assert_allclose(out.values[0], (img[..., 0] - img[..., 0].min()) / np.ptp(img[..., 0]), atol=1e-6)


def test_preprocess_fits_files_in_sorted_order(tmp_path):
    fits = pytest.importorskip("astropy.io.fits")
    rng = np.random.default_rng(4)
    bands = {"f606w": rng.normal(size=(24, 32)), "f435w": rng.normal(size=(24, 32)) + 5}
    paths = []
    for name, data in bands.items():
        p = tmp_path / f"{name}.fits"
        fits.PrimaryHDU(data.astype("float32")).writeto(p)
        paths.append(p)
    out = preprocess(paths, clip_percentile=None)  # given f606w first; sorted puts f435w first
    assert out.attrs["bands"] == ["f435w", "f606w"]
    assert out.attrs["band_min"][0] == pytest.approx(float(bands["f435w"].astype("float32").min()))


def test_preprocess_rotation_and_crop_like_scipy():
    x = np.random.default_rng(5).normal(size=(1, 30, 40)).astype("float32")
    out = preprocess(x, rotate=30.0, crop=((5, 35), (6, 40)), clip_percentile=None)
    rot = ndimage.rotate(x[0].astype("float64"), 30.0, order=3, reshape=True, mode="constant", cval=0.0)
    ref = rot.astype("float32")[5:35, 6:40]
    assert out.shape == (1, 30, 34)
    np.testing.assert_allclose(out.values[0], (ref - ref.min()) / (ref.max() - ref.min()), atol=1e-5)
    assert json.loads(out.attrs["preprocessing"])["crop"] == [[5, 35], [6, 40]]


def test_preprocess_skimage_source():
    pytest.importorskip("skimage")
    out = preprocess("skimage:hubble_deep_field", units="8-bit JPEG counts")
    assert out.shape == (3, 872, 1000) and out.attrs["bands"] == ["R", "G", "B"]
    assert out.attrs["units"] == "8-bit JPEG counts"
    with pytest.raises(ParameterError, match="skimage"):
        preprocess("skimage:no_such_image")


def test_preprocess_errors(tmp_path):
    with pytest.raises(FormatError, match="constant"):
        preprocess(np.ones((1, 5, 5)))
    with pytest.raises(ParameterError, match="crop"):
        preprocess(np.random.default_rng(0).normal(size=(1, 5, 5)), crop=((0, 9), (0, 5)))
    with pytest.raises(ParameterError, match="clip_percentile"):
        preprocess(np.random.default_rng(0).normal(size=(1, 5, 5)), clip_percentile=0)
    with pytest.raises(InputNotFoundError):
        preprocess(tmp_path / "missing.fits")
    with pytest.raises(ParameterError, match="band names"):
        preprocess(np.random.default_rng(0).normal(size=(2, 5, 5)), bands=["a"])


def test_model_meta_from_attrs():
    out = preprocess(np.arange(200.0).reshape(2, 10, 10), clip_percentile=None, units="adu")
    m = model_meta(out, training={"epochs": 3})
    assert m["band_min"] == [0.0, 100.0] and m["band_max"] == [99.0, 199.0]
    assert m["units"] == "adu" and m["preprocessing"]["normalise"] == "minmax" and m["training"] == {"epochs": 3}
    bare = out.copy()
    bare.attrs = {}
    with pytest.raises(FormatError, match="bands"):
        model_meta(bare)
