"""RaSGAN training: a short run gives finite losses and checkpoints; resume continues exactly."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("tensorflow")

from lazyastro.cli.main import main  # noqa: E402
from lazyastro.core.errors import ParameterError  # noqa: E402
from lazyastro.sgan import load_model, preprocess, train  # noqa: E402
from lazyastro.sgan.training import latest_checkpoint, parse_sizes  # noqa: E402

TINY = {"iterations_per_epoch": 2, "batch_size": 4, "sizes": "2:32", "filters": 4, "noise_channels": 4,
        "checkpoint_every": 1, "sample_size": 2, "progress": False, "seed": 11}


@pytest.fixture(scope="module")
def cube():
    rng = np.random.default_rng(0)
    data = rng.gamma(1.0, 1.0, size=(3, 48, 56)).astype("float32")
    return preprocess(data, bands=["u", "g", "r"], units="adu")


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_short_run_checkpoints_and_resume(tmp_path, cube):
    out = tmp_path / "run"
    r1 = train(cube, out, epochs=2, **TINY)
    assert r1.epoch == 2 and r1.iterations == 4
    assert np.isfinite(r1.d_loss) and np.isfinite(r1.g_loss)
    ck = latest_checkpoint(out)
    assert ck == r1.checkpoint and ck.name == "epoch-00002"
    for name in ("generator.keras", "discriminator.keras", "optimizers.npz", "state.json", "sample.png"):
        assert (ck / name).is_file()
    assert (out / "checkpoints" / "epoch-00001" / "state.json").is_file()
    assert (out / "loss_curve.png").is_file() and (out / "real_sample.png").is_file()
    rows = _rows(out / "losses.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["g_loss"])) for r in rows)

    m = load_model(r1.generator_path)
    assert m.bands == ["u", "g", "r"] and m.units == "adu" and m.noise_channels == 4 and m.upsampling == 16
    assert m.meta["training"]["epochs"] == 2 and m.meta["architecture"]["filters"] == 4
    assert m.band_max == cube.attrs["band_max"]
    assert np.asarray(m.generator(np.zeros((1, 3, 3, 4), "float32"))).shape == (1, 48, 48, 3)

    with pytest.raises(ParameterError, match="resume"):
        train(cube, out, epochs=3, **TINY)  # checkpoints there: must say --resume

    r2 = train(cube, out, epochs=3, resume=True, **TINY)
    assert r2.epoch == 3 and r2.iterations == 6 and latest_checkpoint(out).name == "epoch-00003"
    rows = _rows(out / "losses.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 1, 2, 2, 3, 3]
    state = json.loads((latest_checkpoint(out) / "state.json").read_text())
    assert state["epoch"] == 3 and state["iteration"] == 6

    # the same run without interruption: resume restored weights, optimiser moments and RNG state
    ref = train(cube, tmp_path / "ref", epochs=3, **{**TINY, "checkpoint_every": 10})  # final checkpoint only
    ref_rows = _rows(tmp_path / "ref" / "losses.csv")
    for a, b in zip(rows, ref_rows):
        assert float(a["g_loss"]) == pytest.approx(float(b["g_loss"]), rel=1e-3, abs=1e-4)
        assert float(a["d_loss"]) == pytest.approx(float(b["d_loss"]), rel=1e-3, abs=1e-4)
    g_resumed = load_model(r2.generator_path).generator.get_weights()
    g_ref = load_model(ref.generator_path).generator.get_weights()
    for a, b in zip(g_resumed, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_bad_settings(tmp_path, cube):
    with pytest.raises(ParameterError, match="even"):
        train(cube, tmp_path / "a", epochs=1, **{**TINY, "batch_size": 3})
    with pytest.raises(ParameterError, match="16 x the noise size"):
        train(cube, tmp_path / "a", epochs=1, **{**TINY, "sizes": "2:40"})
    with pytest.raises(ParameterError, match="nothing to resume"):
        train(cube, tmp_path / "a", epochs=1, resume=True, **TINY)
    with pytest.raises(ParameterError, match="larger than the training image"):
        train(cube, tmp_path / "a", epochs=1, **{**TINY, "sizes": "4:64"})
    with pytest.raises(ParameterError, match="epochs"):
        train(cube, tmp_path / "a", epochs=0, **TINY)
    with pytest.raises(ParameterError, match="Z:CROP"):
        parse_sizes("4-64")
    assert parse_sizes([(4, 64)]) == ((4, 64),)


def test_cli_preprocess_then_train(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "cube.npy", rng.gamma(1.0, 1.0, size=(3, 40, 40)).astype("float32"))
    store = tmp_path / "cube.zarr"
    assert main(["--no-progress", "sgan", "preprocess", str(tmp_path / "cube.npy"), str(store),
                 "--bands", "a,b,c", "--units", "adu"]) == 0
    assert "bands a [" in capsys.readouterr().out
    args = ["--no-progress", "sgan", "train", str(store), "--out", str(tmp_path / "run"), "--epochs", "1",
            "--iterations-per-epoch", "1", "--batch-size", "2", "--sizes", "2:32", "--filters", "2",
            "--noise-channels", "2", "--sample-size", "2", "--seed", "5"]
    assert main(args) == 0
    assert "1 epochs, 1 iterations" in capsys.readouterr().out
    m = load_model(tmp_path / "run" / "checkpoints" / "epoch-00001" / "generator.keras")
    assert m.bands == ["a", "b", "c"] and m.units == "adu"
    # a preprocessed store with preprocessing options is refused; bad sizes are a one-line error
    assert main(args[:-2] + ["--seed", "6", "--resume", "--rotate", "10"]) == 1
    assert "already preprocessed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args[:3] + [str(store), "--out", str(tmp_path / "x"), "--epochs", "1", "--sizes", "4"])
    assert "Z:CROP" in capsys.readouterr().err


def test_lazy_crops_equal_in_memory_crops():
    import dask.array as da

    from lazyastro.sgan.training import _Crops

    data = np.random.default_rng(2).random((3, 40, 50)).astype("float32")
    mem = _Crops(data, np.random.default_rng(7), in_memory_limit=2**30)
    lazy = _Crops(da.from_array(data, chunks=(1, 16, 16)), np.random.default_rng(7), in_memory_limit=0)
    assert mem.cube is not None and lazy.cube is None
    a, b = mem.batch(6, 16), lazy.batch(6, 16)
    assert a.shape == (6, 16, 16, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # every crop is a (possibly flipped) window of the data
    cube = np.moveaxis(data, 0, -1)
    for crop in a:
        found = any(np.array_equal(f, cube[y:y + 16, x:x + 16])
                    for y in range(25) for x in range(35)
                    for f in (crop, crop[::-1], crop[:, ::-1], crop[::-1, ::-1]))
        assert found
