"""GAN image generation from a Keras generator and the histograms-of-generated-sets job."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

from lazyastro.cli.main import main
from lazyastro.core.errors import FormatError, InputNotFoundError, OutputExistsError, ParameterError
from lazyastro.gan import generate as G
from lazyastro.gan import imageset as I
from lazyastro.gan import kernels as K

LATENT, SIZE = 8, 16
# Keras' own model.save converts TF tensors through a deprecated __array__ (not lazyastro code)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def keras():
    k = pytest.importorskip("keras")
    k.utils.set_random_seed(0)
    return k


@pytest.fixture(scope="module")
def files(keras, tmp_path_factory):
    """A tiny generator (Dense + Reshape to (16, 16, 1), tanh), a conv one, a Lambda one and a real set."""
    d = tmp_path_factory.mktemp("gen")
    L = keras.layers
    dense = keras.Sequential([keras.Input((LATENT,)), L.Dense(SIZE * SIZE, activation="tanh"),
                              L.Reshape((SIZE, SIZE, 1))])
    dense.save(d / "dense.keras")
    conv = keras.Sequential([keras.Input((4,)), L.Dense(4 * 4 * 4), L.Reshape((4, 4, 4)),
                             L.Conv2DTranspose(2, 3, strides=2, padding="same", activation="tanh")])
    conv.save(d / "conv.keras")
    lam = keras.Sequential([keras.Input((LATENT,)), L.Lambda(lambda x: x * 2.0), L.Dense(SIZE * SIZE),
                            L.Reshape((SIZE, SIZE))])
    lam.save(d / "lambda.keras")
    real = np.random.default_rng(0).lognormal(mean=2.0, size=(6, SIZE, SIZE))
    I.write_imageset(real, d / "real.h5", progress=False)
    I.denormprep(d / "real.h5")
    return d


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_seeded_and_independent_of_batch_size(files):
    real = files / "real.h5"
    a = G.generate_images(files / "dense.keras", 7, seed=3, batch_size=2, like=real).values
    b = G.generate_images(files / "dense.keras", 7, seed=3, batch_size=7, like=real).values
    c = G.generate_images(files / "dense.keras", 7, seed=4, batch_size=2, like=real).values
    again = G.generate_images(files / "dense.keras", 7, seed=3, batch_size=2, like=real).values
    np.testing.assert_array_equal(a, again)
    # the latent noise is identical for any batch size; the model may round float32 differently
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert not np.allclose(a, c)
    first = G.generate_images(files / "dense.keras", 3, seed=3, batch_size=3, like=real).values
    np.testing.assert_allclose(first, a[:3], rtol=1e-5)  # image i depends only on (seed, i)
    np.testing.assert_array_equal(G.latent_noise(3, (LATENT,), start=2, stop=5),
                                  G.latent_noise(3, (LATENT,), start=0, stop=7)[2:5])


def test_denormalisation_applied(files, keras):
    ln = I.open_imageset(files / "real.h5").attrs["lognorminfo"]
    imgs = G.generate_images(files / "dense.keras", 5, seed=1, batch_size=5, lognorminfo=ln)
    assert imgs.dims == ("image", "y", "x") and imgs.attrs["lognorminfo"] == ln and imgs.attrs["seed"] == 1
    model = G.load_generator(files / "dense.keras")
    g = np.asarray(model(G.latent_noise(1, (LATENT,), start=0, stop=5)))[..., 0]
    np.testing.assert_allclose(imgs.values, K.denormalise(g, ln), rtol=1e-12)
    z = K.log_normalise(imgs.values, ln)  # tanh output maps back into [-1, 1]
    assert z.min() >= -1 - 1e-9 and z.max() <= 1 + 1e-9 and z.std() > 0.01
    # a conv generator with 2 output channels: channel 1 is taken when asked
    c0 = G.generate_images(files / "conv.keras", 3, seed=0, lognorminfo=ln).values
    c1 = G.generate_images(files / "conv.keras", 3, seed=0, lognorminfo=ln, channel=1).values
    assert c0.shape == (3, 8, 8) and not np.allclose(c0, c1)
    with pytest.raises(ParameterError, match="channel"):
        G.generate_images(files / "conv.keras", 3, seed=0, lognorminfo=ln, channel=2)


def test_generator_handle_pickles_without_the_model(files):
    """What worker processes get: the file's path and digest; each process loads the model once."""
    gen = G._Generator(str(files / "dense.keras"), 0)
    clone = pickle.loads(pickle.dumps(gen))
    assert clone._model is None and clone.digest == gen.digest
    G._MODELS.clear()  # as in a fresh worker process
    z = G.latent_noise(0, (LATENT,), start=0, stop=3)
    np.testing.assert_array_equal(clone(z), gen(z))
    assert len(G._MODELS) == 1
    in_memory = G._Generator(gen.model(), 0)
    assert in_memory.token != G._Generator(gen.model(), 0).token  # no cross-process resume for a model object


# (processes/distributed run the same pickled handle; not parametrised here: each spawned worker imports TF)
@pytest.mark.parametrize("suffix,scheduler", [(".h5", "threads"), (".h5", "sync"), (".zarr", "threads")])
def test_written_set(files, tmp_path, suffix, scheduler):
    real = files / "real.h5"
    before = _digest(real)
    out = tmp_path / f"gan{suffix}"
    path = G.generate_images(files / "dense.keras", 5, seed=2, batch_size=2, like=real, out=out,
                             scheduler=scheduler, progress=False)
    assert path == str(out) and not (tmp_path / f"gan{suffix}.partial").exists()
    s = I.open_imageset(out)
    lazy = G.generate_images(files / "dense.keras", 5, seed=2, batch_size=2, like=real)
    assert s.shape == (5, SIZE, SIZE) and s.dtype == np.float64
    np.testing.assert_array_equal(s.values, lazy.values)
    assert s.attrs["lognorminfo"] == I.open_imageset(real).attrs["lognorminfo"]
    x = s.values
    np.testing.assert_allclose(s.attrs["musigmainfo"], [x.mean(), x.std()], rtol=1e-10)
    assert _digest(real) == before  # the real set is only read
    if suffix == ".h5":
        with h5py.File(out) as f:
            assert int(f.attrs["seed"]) == 2 and json.loads(f.attrs["latent_shape"]) == [LATENT]
    with pytest.raises(OutputExistsError):
        G.generate_images(files / "dense.keras", 5, seed=2, batch_size=2, like=real, out=out, progress=False)


def test_interrupted_generation_resumes(files, tmp_path, monkeypatch):
    """A run that dies mid-way leaves ``.partial``; the rerun computes only what is missing, same bytes."""
    real = files / "real.h5"
    kw = dict(seed=5, batch_size=1, like=real, progress=False, scheduler="sync")
    n = 40  # more blocks than the engine computes per write batch, so the first run records some
    ref = G.generate_images(files / "dense.keras", n, out=tmp_path / "ref.h5", **kw)
    a = G.generate_images(files / "dense.keras", n, seed=5, batch_size=1, like=real)
    assert a.data.name == G.generate_images(files / "dense.keras", n, seed=5, batch_size=1, like=real).data.name
    assert a.data.name != G.generate_images(files / "dense.keras", n, seed=6, batch_size=1, like=real).data.name
    calls = []
    real_block = G._generate_block

    def counted(*args, block_info=None):
        calls.append(block_info[None]["chunk-location"][0])
        if fail_after and len(calls) > fail_after:
            raise RuntimeError("killed")
        return real_block(*args, block_info=block_info)

    monkeypatch.setattr(G, "_generate_block", counted)
    fail_after = n - 2
    with pytest.raises(RuntimeError, match="killed"):
        G.generate_images(files / "dense.keras", n, out=tmp_path / "out.h5", **kw)
    assert not (tmp_path / "out.h5").exists() and (tmp_path / "out.h5.partial").exists()
    calls.clear()
    fail_after = 0
    G.generate_images(files / "dense.keras", n, out=tmp_path / "out.h5", **kw)
    assert 0 < len(calls) < n  # finished blocks were not generated again
    with h5py.File(ref) as f, h5py.File(tmp_path / "out.h5") as g:
        assert sorted(f) == sorted(g) and dict(f.attrs) == dict(g.attrs)
        for k in f:
            np.testing.assert_array_equal(f[k][()], g[k][()])
    # and the same bytes: every dataset (musigmainfo too) and attribute is laid out when the file is
    # created, so neither the interruption nor the finalize of the failed run moves anything
    assert (tmp_path / "out.h5").read_bytes() == open(ref, "rb").read()


def test_interrupted_histograms_resume_to_the_same_bytes(files, tmp_path, monkeypatch):
    """A histograms job that dies halfway through writing a set resumes to the bytes of an uninterrupted one."""
    kw = dict(n_sets=4, images_per_set=3, range=(-1.0, 4.0), bins=10, seed=3, batch_size=2,
              like=files / "real.h5", progress=False, scheduler="sync")
    ref = G.gan_histograms(files / "dense.keras", tmp_path / "ref.h5", **kw)
    real = G.HistogramSetsTarget.write

    def dying(self, tmp, vi, region, block):
        if region[0].start == 2:  # set 2: its histogram written, its droppedpixels row not, then killed
            with h5py.File(tmp, "r+") as f:
                f["2"][...] = block[0, :10]
            raise RuntimeError("killed")
        real(self, tmp, vi, region, block)

    monkeypatch.setattr(G.HistogramSetsTarget, "write", dying)
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="killed"):
        G.gan_histograms(files / "dense.keras", out, **kw)
    with h5py.File(tmp_path / "out.h5.partial") as f:  # sets not yet written have their space already
        assert all(f[k].id.get_offset() is not None for k in ("3", "droppedpixels"))
    monkeypatch.undo()
    G.gan_histograms(files / "dense.keras", out, **kw)
    assert out.read_bytes() == open(ref, "rb").read()


def test_histograms_job(files, tmp_path):
    ln = I.open_imageset(files / "real.h5").attrs["lognorminfo"]
    out = tmp_path / "hists.h5"
    G.gan_histograms(files / "dense.keras", out, n_sets=3, images_per_set=5, range=(-1.0, 4.0), bins=20,
                     seed=9, batch_size=2, lognorminfo=ln, progress=False)
    model = G._Generator(str(files / "dense.keras"), 0)
    with h5py.File(out) as f:
        assert sorted(f) == ["0", "1", "2", "binedges", "datasize", "droppedpixels", "imagesize"]
        np.testing.assert_array_equal(f["binedges"][()], np.linspace(-1, 4, 21))
        assert f["imagesize"][()].tolist() == [SIZE, SIZE] and f["datasize"][()].tolist() == [3, 5]
        assert f["0"].dtype == np.float64 and f["0"].shape == (20,)
        for s in range(3):  # same batches as the job: exact counts
            logs = np.concatenate([K.denormalise_log10(model(G.latent_noise(9, (LATENT,), start=i, stop=min(5, i + 2),
                                                                          set_index=s)), ln)
                                   for i in range(0, 5, 2)])
            np.testing.assert_array_equal(f[str(s)][()], np.histogram(logs, 20, (-1.0, 4.0))[0])
            dropped = f["droppedpixels"][s]
            assert dropped[-1] == 5 * SIZE * SIZE and f[str(s)][()].sum() + dropped[:4].sum() == dropped[-1]
        assert not np.array_equal(f["0"][()], f["1"][()])  # fresh noise per set
    ds = G.open_gan_histograms(out)
    assert ds.counts.shape == (3, 20) and ds.attrs["images_per_set"] == 5 and ds.dropped.shape == (3, 5)


def test_output_bytes_do_not_depend_on_the_time_of_writing(files, tmp_path, h5py_track_order):
    ln = I.open_imageset(files / "real.h5").attrs["lognorminfo"]
    kw = dict(seed=4, batch_size=2, lognorminfo=ln, scheduler="sync", progress=False)

    def write(tag):
        G.generate_images(files / "dense.keras", 3, out=tmp_path / f"set{tag}.h5", **kw)
        G.gan_histograms(files / "dense.keras", tmp_path / f"hists{tag}.h5", n_sets=2, images_per_set=2, bins=8,
                         **kw)

    write("a")
    time.sleep(1.1)  # HDF5 object times have a resolution of one second
    write("b")
    for name in ("set", "hists"):
        assert _digest(tmp_path / f"{name}a.h5") == _digest(tmp_path / f"{name}b.h5"), name


def test_unsafe_and_bad_models_refused(files, tmp_path):
    ln = [0.0, 1.0]
    with pytest.raises(FormatError, match="Lambda") as exc:
        G.generate_images(files / "lambda.keras", 2, lognorminfo=ln)
    assert str(files / "lambda.keras") in str(exc.value)
    with pytest.raises(FormatError, match="Lambda"):
        G.load_generator(files / "lambda.keras")
    with pytest.raises(InputNotFoundError) as exc:
        G.generate_images(tmp_path / "missing.keras", 2, lognorminfo=ln)
    assert str(tmp_path / "missing.keras") in str(exc.value)
    (tmp_path / "junk.keras").write_text("not a model")
    with pytest.raises(FormatError, match="not a zip"):
        G.load_generator(tmp_path / "junk.keras")
    (tmp_path / "model.h5").write_bytes(b"")
    with pytest.raises(FormatError, match=".keras"):
        G.load_generator(tmp_path / "model.h5")
    with zipfile.ZipFile(tmp_path / "broken.keras", "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "NoSuchLayer", "config": {}}))
    with pytest.raises(FormatError, match="cannot load the Keras model"):
        G.load_generator(tmp_path / "broken.keras")


def test_bad_parameters(files, tmp_path):
    m = files / "dense.keras"
    with pytest.raises(ParameterError, match="exactly one of"):
        G.generate_images(m, 2)
    with pytest.raises(ParameterError, match="exactly one of"):
        G.generate_images(m, 2, lognorminfo=[0, 1], like=files / "real.h5")
    with pytest.raises(ParameterError, match="Lmin < Lmax"):
        G.generate_images(m, 2, lognorminfo=[1, 0])
    with pytest.raises(ParameterError, match="n must be"):
        G.generate_images(m, 0, lognorminfo=[0, 1])
    with pytest.raises(ParameterError, match="batch size"):
        G.generate_images(m, 2, lognorminfo=[0, 1], batch_size=0)
    with pytest.raises(ParameterError, match="seed"):
        G.generate_images(m, 2, lognorminfo=[0, 1], seed=-1)
    I.write_imageset(np.ones((2, 4, 4)), tmp_path / "noconst.h5", progress=False)
    with pytest.raises(FormatError, match="lognorminfo not found"):
        G.generate_images(m, 2, like=tmp_path / "noconst.h5")
    with pytest.raises(ParameterError, match="range"):
        G.gan_histograms(m, tmp_path / "h.h5", n_sets=1, images_per_set=1, lognorminfo=[0, 1], range=(1, 1))
    assert not (tmp_path / "h.h5").exists()


def test_cli(files, tmp_path, capsys):
    m, real = str(files / "dense.keras"), str(files / "real.h5")
    out = tmp_path / "gan.h5"
    assert main(["--no-progress", "gan", "generate", m, str(out), "--n", "5", "--seed", "1", "--batch-size", "2",
                 "--like", real]) == 0
    assert "seed 1" in capsys.readouterr().out
    np.testing.assert_array_equal(I.open_imageset(out).values,
                                  G.generate_images(m, 5, seed=1, batch_size=2, like=real).values)
    assert main(["--no-progress", "gan", "histograms", m, str(tmp_path / "h.h5"), "--sets", "2",
                 "--images-per-set", "3", "--like", real, "--range=-5,10", "--bins", "10"]) == 0
    assert G.open_gan_histograms(tmp_path / "h.h5").counts.shape == (2, 10)
    capsys.readouterr()
    assert main(["gan", "generate", str(files / "lambda.keras"), str(tmp_path / "x.h5"), "--n", "2",
                 "--like", real]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Lambda" in err and not (tmp_path / "x.h5").exists()
    assert main(["gan", "generate", m, str(tmp_path / "x.h5"), "--n", "2"]) == 1
    assert "--like" in capsys.readouterr().err


def test_no_keras_import_and_missing_keras(tmp_path, monkeypatch):
    """lazyastro.gan (generation module included) imports neither Keras nor TensorFlow; without Keras a
    generator run says which extra to install."""
    code = ("import sys, lazyastro.gan, lazyastro.gan.generate, lazyastro.gan.cli; from lazyastro import gan; "
            "gan.generate_images; assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as zf:
        zf.writestr("config.json", "{}")
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(G.KerasMissingError, match=r"lazyastro\[gan\]"):
        G.generate_images(tmp_path / "m.keras", 2, lognorminfo=[0, 1])
