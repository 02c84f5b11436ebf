"""Tessellation: exact (tiled == one-shot bit for bit), any size, seeded noise, schedulers, resume, errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits

import lazyastro
from lazyastro.core.errors import InputNotFoundError, ParameterError
from lazyastro.core.stream import record_path
from lazyastro.sgan.noise import noise_field, noise_window

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")

import lazyastro.sgan.tiling as T  # noqa: E402
from lazyastro.sgan import receptive_field, tessellate  # noqa: E402
from lazyastro.sgan.model import build_generator, save_model  # noqa: E402
from lazyastro.sgan.receptive import NotFullyConvolutionalError, generator_layers  # noqa: E402
from lazyastro.sgan.tiling import write_mosaic  # noqa: E402
from tests.killing import kill_after_records  # noqa: E402

META = {"bands": ["g", "r"], "band_min": [-0.01, -0.02], "band_max": [0.5, 0.7], "units": "e-/s"}


@pytest.fixture(scope="module")
def tiny():
    """Two stride-2 blocks (upsampling 4), 2 bands, 3 noise channels: fast, but real geometry."""
    keras.utils.set_random_seed(3)
    g = build_generator(filters=2, depth=2, noise_channels=3, out_channels=2)
    return generator_layers(g), g


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory, tiny):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_model(tiny[1], path, meta=META)
    return path


def test_noise_does_not_depend_on_chunks_or_regions():
    a = noise_field((37, 29), channels=3, seed=5, block=8).compute()
    b = noise_field((37, 29), channels=3, seed=5, block=8, chunks=(10, 7, 3)).compute()
    assert np.array_equal(a, b) and a.dtype == np.float32
    w = noise_window((37, 29), (slice(9, 30), slice(3, 28)), channels=3, seed=5, block=8)
    assert np.array_equal(w, a[9:30, 3:28])
    assert abs(float(a.mean())) < 0.1 and abs(float(a.std()) - 1) < 0.1
    assert not np.array_equal(a, noise_field((37, 29), channels=3, seed=6, block=8).compute())


@pytest.mark.parametrize("size,tile,overlap", [
    (97, 20, None),          # tile does not divide the size, size not a multiple of the upsampling
    ((61, 90), 33, None),    # rectangular, odd tile
    (80, 16, 7),             # larger overlap than needed
    (50, 64, None),          # one tile bigger than the mosaic
])
def test_tiled_equals_one_shot_bit_for_bit(tiny, size, tile, overlap):
    layers, _ = tiny
    one = tessellate(layers, size=size, seed=11, one_shot=True).values
    tiled = tessellate(layers, size=size, seed=11, tile=tile, overlap=overlap)
    assert tiled.shape == one.shape == (2, *((size, size) if isinstance(size, int) else size))
    assert np.array_equal(tiled.values, one)


def test_the_evaluator_matches_the_keras_model(tiny):
    layers, g = tiny
    one = tessellate(g, size=64, seed=2, one_shot=True).values
    z = noise_window((16, 16), (slice(0, 16), slice(0, 16)), channels=3, seed=2)
    ref = np.moveaxis(np.asarray(g(z[None]))[0], -1, 0)
    np.testing.assert_allclose(one, ref, atol=1e-6)


def test_reference_geometry_is_exact_at_every_seam():
    g = build_generator(filters=1, noise_channels=2, out_channels=1)
    rf = receptive_field(g)
    one = tessellate(g, size=(150, 120), seed=4, one_shot=True).values
    assert np.array_equal(tessellate(g, size=(150, 120), seed=4, tile=50).values, one)
    assert np.array_equal(tessellate(g, size=(150, 120), seed=4, tile=72, overlap=rf.overlap).values, one)
    # below the receptive field: refused, or (explicitly non-exact) seams at the tile edges
    with pytest.raises(ParameterError, match="smaller than the generator's receptive field"):
        tessellate(g, size=150, seed=4, overlap=4)
    seamy = tessellate(g, size=(150, 120), seed=4, tile=64, overlap=0, exact=False).values
    diff = np.abs(seamy - one)[:, :, :64 - 30].max(axis=(0, 2))  # rows, away from the column seam
    assert diff.max() > 1e-4
    # the seam at row 64: the trailing band (30 px) above it, the leading band (44 px) below it
    assert diff[:64 - 30].max() == 0
    assert (diff[64 - 30:64 + 44] > 0).mean() > 0.9


def test_physical_units_and_metadata(tiny_file, tiny):
    m = tessellate(tiny_file, size=40, seed=1, tile=16)
    norm = tessellate(tiny[0], size=40, seed=1, tile=16).values
    lo, hi = np.array(META["band_min"], "f4"), np.array(META["band_max"], "f4")
    expect = norm * (hi - lo)[:, None, None] + lo[:, None, None]
    np.testing.assert_allclose(m.values, expect, rtol=1e-6, atol=1e-7)
    assert list(m["band"].values) == ["g", "r"] and m.attrs["BUNIT"] == "e-/s"
    assert len(m.attrs["MODELSHA"]) == 64 and m.attrs["SEED"] == 1
    assert tessellate(tiny_file, size=40, seed=1, bands=["r"]).shape == (1, 40, 40)


def test_zarr_and_fits_under_every_scheduler(tmp_path, tiny, scheduler):
    # the weights travel with the tasks here (no TensorFlow in the workers); files: see the next test
    model = SimpleNamespace(generator=tiny[0], meta=dict(META))
    m = tessellate(model, size=(45, 38), seed=9, tile=16)
    ref = tessellate(model, size=(45, 38), seed=9, one_shot=True).values
    lazyastro.to_zarr(m, tmp_path / "m.zarr", scheduler=scheduler, progress=False)
    back = lazyastro.open_zarr(tmp_path / "m.zarr")
    assert back.dims == ("band", "y", "x") and np.array_equal(back.values, ref)
    paths = write_mosaic(m, tmp_path / "m.fits", fits_layout="per-band", scheduler=scheduler, progress=False)
    for i, p in enumerate(paths):
        with fits.open(p) as hdul:
            assert np.array_equal(hdul[0].data, ref[i]) and hdul[0].header["BAND"] == META["bands"][i]
            assert hdul[0].header["SEED"] == 9 and hdul[0].header["BUNIT"] == "e-/s"
    write_mosaic(m, tmp_path / "cube.fits", scheduler=scheduler, progress=False)
    with fits.open(tmp_path / "cube.fits") as hdul:
        assert np.array_equal(hdul[0].data, ref) and hdul[0].header["BAND2"] == "r"


def test_a_model_file_is_loaded_once_per_process_not_per_tile(tiny_file):
    m = tessellate(tiny_file, size=30, seed=2, tile=10)
    ref = m.values
    handle = pickle.loads(pickle.dumps(T.resolve_model(tiny_file)[0]))
    assert handle._layers is None and handle.path == str(tiny_file.resolve())  # only path + hash travel
    T._PRIMED.clear()  # as in a fresh worker process
    T._load_layers.cache_clear()
    assert np.array_equal(tessellate(tiny_file, size=30, seed=2, tile=10).values, ref)
    T._PRIMED.clear()
    T._load_layers.cache_clear()
    handle.layers()
    handle.layers()
    info = T._load_layers.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_bad_inputs(tmp_path, tiny):
    layers, _ = tiny
    with pytest.raises(ParameterError, match="size"):
        tessellate(layers, size=0, seed=1)
    with pytest.raises(ParameterError, match="seed"):
        tessellate(layers, size=10, seed=-1)
    with pytest.raises(ParameterError, match="tile"):
        tessellate(layers, size=10, seed=1, tile=0)
    with pytest.raises(InputNotFoundError, match="missing.keras"):
        tessellate(tmp_path / "missing.keras", size=10, seed=1)
    inp = keras.Input((None, None, 3))
    dense = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Conv2DTranspose(2, 4, 2, padding="same")(inp)))
    with pytest.raises(NotFullyConvolutionalError, match="Dense"):
        tessellate(dense, size=10, seed=1)


def test_cli_errors_are_one_line_and_leave_nothing(tmp_path, tiny_file, capsys):
    from lazyastro.cli.main import main

    out = tmp_path / "m.zarr"
    for extra in (["--size", "0"], ["--size", "20", "--seed", "-2"], ["--size", "20", "--overlap", "1"],
                  ["--size", "20", "--tile", "0"], ["--size", "20", "--model", str(tmp_path / "nope.keras")]):
        args = ["sgan", "tessellate", "--model", str(tiny_file), "--seed", "1", "--out", str(out), *extra]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and err.startswith("lazyastro: error:"), err
        assert not list(tmp_path.glob("m.zarr*"))
    assert main(["sgan", "tessellate", "--model", str(tiny_file), "--seed", "1", "--size", "20",
                 "--out", str(tmp_path / "m.txt")]) == 1


KILLED = textwrap.dedent(
    """
    import os, sys, time
    import lazyastro.sgan.kernels as K
    from lazyastro.cli.main import main

    run = K.run_layers

    def logged(layers, z, origin=(0, 0), **kw):
        if os.environ.get("SLOW"):
            time.sleep(0.2)
        return run(layers, z, origin=origin, **kw)

    K.run_layers = logged
    sys.exit(main(sys.argv[1:]))
    """
)


def test_cli_resumes_after_kill_9_without_recomputing_tiles(tmp_path, tiny_file, monkeypatch):
    from lazyastro.cli.main import main

    script = tmp_path / "run.py"
    script.write_text(KILLED)
    args = ["--scheduler", "sync", "--no-progress", "sgan", "tessellate", "--model", str(tiny_file),
            "--size", "70", "--seed", "3", "--tile", "10"]
    ref, out = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    proc = subprocess.Popen([sys.executable, str(script), *args, "--out", str(out)], env=dict(os.environ, SLOW="1"))
    assert main([*args, "--out", str(ref)]) == 0  # the reference, meanwhile, in this process
    record = record_path(out)
    done = kill_after_records(proc, record, 10, timeout=240)
    assert 10 <= done < 49 and not out.exists()
    # rerun the same command (here in-process, logging the tiles it generates)
    calls = []
    run = T.K.run_layers

    def logged(layers, z, origin=(0, 0), **kw):
        calls.append(origin)
        return run(layers, z, origin=origin, **kw)

    monkeypatch.setattr(T.K, "run_layers", logged)
    assert main([*args, "--out", str(out)]) == 0
    assert len(calls) == 49 - done  # finished tiles were not regenerated
    files = sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    for f in files:
        assert (ref / f).read_bytes() == (out / f).read_bytes(), f


def test_legacy_mode_constants_axes_and_rescale(tmp_path):
    from lazyastro.sgan.model import LEGACY_META

    keras.utils.set_random_seed(1)
    layers = generator_layers(build_generator(filters=2, depth=2, noise_channels=3, out_channels=3))
    model = SimpleNamespace(generator=layers, meta={**META, "bands": ["a", "b", "c"], "band_min": [0.0] * 3,
                                                    "band_max": [1.0] * 3, "layout": "legacy"})
    sky = tessellate(model, size=(24, 40), seed=2, tile=16)  # a legacy-layout model: transposed back to the sky
    raw = tessellate(model, size=(40, 24), seed=2, tile=16, legacy=True, rescale=False)
    lo, hi = np.array(LEGACY_META["band_min"], "f4"), np.array(LEGACY_META["band_max"], "f4")
    norm = np.swapaxes(sky.values, 1, 2)
    np.testing.assert_allclose(raw.values, norm * (hi - lo)[:, None, None] + lo[:, None, None], rtol=1e-6, atol=1e-8)
    assert sky.attrs["TRANSPOS"] and not raw.attrs["TRANSPOS"] and list(raw["band"].values) == LEGACY_META["bands"]
    res = tessellate(model, size=(40, 24), seed=2, tile=16, legacy=True)  # rescale on by default in legacy mode
    off = np.array(res.attrs["RESCALE"], "f4")
    np.testing.assert_allclose(raw.values - res.values, np.broadcast_to(off[:, None, None], raw.shape), atol=1e-7)
    paths = write_mosaic(res, tmp_path / "legacy.fits", fits_layout="per-band", progress=False)
    with fits.open(paths[1]) as hdul:
        assert hdul[0].data.shape == (40, 24) and hdul[0].header["RESCALE"] == pytest.approx(float(off[1]))


def test_model_files_are_read_without_keras(tiny_file, tiny):
    from lazyastro.sgan.model import builtin_model_path, load_model

    for path, keras_layers in ((tiny_file, tiny[0]), (builtin_model_path(), None)):
        layers = T.read_layers(path)
        keras_layers = keras_layers or generator_layers(load_model(path).generator)
        assert len(layers) == len(keras_layers)
        for a, b in zip(layers, keras_layers):
            assert (a.kind, a.stride, a.activation, a.alpha) == (b.kind, b.stride, b.activation, b.alpha)
            assert np.array_equal(a.kernel, b.kernel) and np.array_equal(a.bias, b.bias)
    code = ("import sys, numpy as np; from lazyastro.sgan import tessellate; "
            f"m = tessellate({str(tiny_file)!r}, size=24, seed=1, tile=8); np.save(sys.argv[1], m.values); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    out = tiny_file.parent / "kf.npy"
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, timeout=120)
    assert np.array_equal(np.load(out), tessellate(tiny_file, size=24, seed=1, tile=8).values)
