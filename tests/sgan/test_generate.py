"""Fixed-size generation: seeded, physical units, legacy rescale/shuffle, CLI outputs and errors."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits

from lazyastro.core.errors import ParameterError
from lazyastro.sgan.generation import postprocess_image
from lazyastro.sgan.kernels import modal_offset

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

from lazyastro.sgan import generate  # noqa: E402
from lazyastro.sgan.model import build_generator, save_model  # noqa: E402
from lazyastro.sgan.receptive import generator_layers  # noqa: E402

META = {"bands": ["g", "r"], "band_min": [-0.01, -0.02], "band_max": [0.5, 0.7], "units": "e-/s"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    keras.utils.set_random_seed(5)
    g = build_generator(filters=2, depth=2, noise_channels=3, out_channels=2)
    path = tmp_path_factory.mktemp("gen") / "tiny.keras"
    save_model(g, path, meta=META)
    return SimpleNamespace(generator=generator_layers(g), meta=dict(META)), path


def test_seeded_images_in_physical_units(tiny):
    model, _ = tiny
    a = generate(model, z_size=9, n=3, seed=4)
    assert a.dims == ("image", "band", "y", "x") and a.shape == (3, 2, 36, 36)
    va = a.values
    assert np.array_equal(generate(model, z_size=9, n=1, seed=4).values[0], va[0])  # image i: (seed, i) only
    assert np.array_equal(generate(model, z_size=9, n=3, seed=4, tile=10).values, va)  # tiles are exact
    assert not np.array_equal(generate(model, z_size=9, n=1, seed=5).values[0], va[0])
    assert not np.array_equal(va[0], va[1])
    for b, (lo, hi) in enumerate(zip(META["band_min"], META["band_max"])):
        assert lo <= va[:, b].min() and va[:, b].max() <= hi
    assert a.attrs["ZSIZE"] == 9 and a.attrs["SEED"] == 4 and a.attrs["BUNIT"] == "e-/s"


def test_rescale_and_shuffle_kernels():
    rng = np.random.default_rng(0)
    img = (rng.normal(0.3, 0.01, (64, 64)) + (rng.random((64, 64)) > 0.98) * 2).astype("f4")
    r = postprocess_image(img, rescale=True, shuffle=False, seed=1, index=(0, 0))
    counts, edges = np.histogram(img, bins=10000, range=(float(img.min()), float(img.max())))
    assert np.allclose(img - r, modal_offset(counts, edges))
    s1 = postprocess_image(r, rescale=False, shuffle=True, seed=1, index=(0, 0))
    s2 = postprocess_image(r, rescale=False, shuffle=True, seed=1, index=(0, 0))
    assert np.array_equal(s1, s2) and not np.array_equal(s1, r)  # seeded, and it moves pixels
    moved = s1 != r
    assert np.array_equal(np.sort(s1.ravel()), np.sort(r.ravel()))  # a permutation
    assert r[moved].max() <= 0.05 and np.array_equal(s1[r > 0.05], r[r > 0.05])  # only the sky noise moves


def test_rescaled_generation_is_lazy_and_per_image(tiny):
    model, _ = tiny
    a = generate(model, z_size=8, n=2, seed=1, rescale=True, shuffle=True)
    assert a.chunks[2:] == ((32,), (32,)) and a.attrs["RESCALED"] and a.attrs["SHUFFLED"]
    plain = generate(model, z_size=8, n=2, seed=1).values
    v = a.values
    assert np.array_equal(np.sort(v[1, 0].ravel()), np.sort(postprocess_image(plain[1, 0], rescale=True,
                                                                              shuffle=False, seed=1,
                                                                              index=(1, 0)).ravel()))


def test_cli_writes_fits_npy_png_zarr(tmp_path, tiny):
    from lazyastro.cli.main import main

    _, path = tiny
    out = tmp_path / "outs"
    assert main(["--no-progress", "sgan", "generate", "--model", str(path), "-z", "6", "-n", "2", "--seed", "42",
                 "--format", "fits,npy,png,zarr", "--out", str(out)]) == 0
    ref = generate(path, z_size=6, n=2, seed=42).values
    for i in range(2):
        arr = np.load(out / f"{i}.npy", allow_pickle=False)
        assert np.array_equal(arr, ref[i])
        for c, band in enumerate(META["bands"]):
            with fits.open(out / f"{i}-{c}.fits") as hdul:
                h = hdul[0].header
                assert np.array_equal(hdul[0].data, ref[i, c])
                assert (h["BAND"], h["BUNIT"], h["SEED"], h["ZSIZE"]) == (band, "e-/s", 42, 6)
                assert len(h["MODELSHA"]) == 64
            assert (out / f"{i}-{c}.png").read_bytes()[:4] == b"\x89PNG"
    import lazyastro

    assert np.array_equal(lazyastro.open_zarr(out / "images.zarr").values, ref)


def test_cli_bad_inputs_are_one_line_and_write_nothing(tmp_path, tiny, capsys):
    from lazyastro.cli.main import main

    _, path = tiny
    out = tmp_path / "outs"
    for extra in (["-z", "0"], ["-n", "0"], ["--seed", "-1"], ["--model", str(tmp_path / "nope.keras")]):
        args = ["sgan", "generate", "--model", str(path), "-z", "4", "--out", str(out), *extra]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("lazyastro: error:"), err
        assert not out.exists()
    with pytest.raises(ParameterError, match="z_size"):
        generate(tiny[0], z_size=-3, seed=1)
