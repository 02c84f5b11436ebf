"""GAN image sets: legacy HDF5 layout, Zarr, denormprep, splitters, bad inputs."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest

import lazyastro
from lazyastro.core.errors import FormatError, InputNotFoundError, OutputExistsError, ParameterError
from lazyastro.gan import imageset as I


def legacy_file(path, images, **consts):
    with h5py.File(path, "w") as f:
        for i, im in enumerate(images):
            f.create_dataset(str(i), data=im)
        for k, v in consts.items():
            f.create_dataset(k, data=np.asarray(v, dtype=np.float64))
    return path


@pytest.fixture
def images():
    return np.random.default_rng(0).lognormal(size=(5, 8, 8))


def test_read_legacy_layout_lazily(tmp_path, images):
    p = legacy_file(tmp_path / "set.h5", images, lognorminfo=[-3.0, 3.0], musigmainfo=[1.0, 2.0])
    s = I.open_imageset(p, images_per_chunk=2)
    assert s.dims == ("image", "y", "x") and s.chunks[0] == (2, 2, 1)
    assert s.attrs == {"lognorminfo": [-3.0, 3.0], "musigmainfo": [1.0, 2.0]}
    np.testing.assert_array_equal(s.values, images)
    assert lazyastro.open(p).shape == (5, 8, 8)  # detected by the registry


def test_write_roundtrip_hdf5_and_zarr(tmp_path, images, scheduler):
    src = I.open_imageset(legacy_file(tmp_path / "s.h5", images, lognorminfo=[-3.0, 3.0]), images_per_chunk=2)
    out = I.write_imageset(src, tmp_path / "o.h5", scheduler=scheduler, progress=False)
    with h5py.File(out) as f:
        assert sorted(f) == ["0", "1", "2", "3", "4", "lognorminfo"]
        np.testing.assert_array_equal(f["3"][()], images[3])
    z = I.write_imageset(src, tmp_path / "o.zarr", scheduler=scheduler, progress=False)
    back = I.open_imageset(z)
    np.testing.assert_array_equal(back.values, images)
    assert back.attrs["lognorminfo"] == [-3.0, 3.0]
    with pytest.raises(OutputExistsError):
        I.write_imageset(src, tmp_path / "o.h5", progress=False)
    assert not list(tmp_path.glob("*.partial*"))


def test_bad_image_sets(tmp_path, images):
    with pytest.raises(InputNotFoundError):
        I.open_imageset(tmp_path / "missing.h5")
    gap = legacy_file(tmp_path / "gap.h5", images)
    with h5py.File(gap, "r+") as f:
        del f["2"]
    with pytest.raises(FormatError, match="gap") as exc:
        I.open_imageset(gap)
    assert str(gap) in str(exc.value)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.create_dataset("lognorminfo", data=[0.0, 1.0])
    with pytest.raises(FormatError, match="no image '0'"):
        I.open_imageset(empty)
    mixed = legacy_file(tmp_path / "mixed.h5", [images[0], images[1][:4]])
    with pytest.raises(FormatError, match="shape"):
        I.open_imageset(mixed)
    nolog = I.open_imageset(legacy_file(tmp_path / "nolog.h5", images))
    with pytest.raises(FormatError, match="lognorminfo not found"):
        I.lognorminfo_of(nolog, "nolog.h5")
    with pytest.raises(ParameterError, match="empty"):
        I.write_imageset(np.zeros((0, 4, 4)), tmp_path / "e.h5", progress=False)
    assert not (tmp_path / "e.h5").exists()


def test_denormprep_corrected_legacy_and_refusal(tmp_path):
    imgs = np.random.default_rng(1).uniform(0.1, 0.9, size=(4, 6, 6))  # every max < 1
    p = legacy_file(tmp_path / "real.h5", imgs)
    ln, ms = I.denormprep(p)
    assert ln == [math.log(imgs.min()), pytest.approx(math.log(imgs.max()), abs=0)]
    assert ms[0] == pytest.approx(imgs.mean(), rel=1e-14)
    assert ms[1] == pytest.approx(imgs.std(), rel=1e-10)
    with pytest.raises(OutputExistsError, match="denormprep ran before"):
        I.denormprep(p)
    ln2, ms2 = I.denormprep(p, legacy=True, overwrite=True)
    assert ln2[1] == 1e-100  # legacy defect: Lmax initialised to 1e-100
    assert math.isnan(ms2[1])  # legacy defect: sqrt(E[x^2] - mu) of a negative number
    _, ms3 = I.normalisation_constants(imgs * 10, legacy=True)
    assert ms3[1] == pytest.approx(math.sqrt((imgs**2).mean() * 100 - imgs.mean() * 10), rel=1e-10)
    with h5py.File(p) as f:
        assert f["lognorminfo"][()].tolist() == ln2
    bad = legacy_file(tmp_path / "bad.h5", [imgs[0], -imgs[1]])
    with pytest.raises(FormatError, match="non-positive"):
        I.denormprep(bad)
    nan = imgs.copy()
    nan[1, 2, 2] = np.nan
    with pytest.raises(FormatError, match="NaN"):
        I.denormprep(legacy_file(tmp_path / "nan.h5", nan))
    with h5py.File(bad) as f:
        assert "lognorminfo" not in f  # nothing written on error


def test_splitters_keep_constants(tmp_path, images):
    p = legacy_file(tmp_path / "s.h5", images, lognorminfo=[-3.0, 3.0], musigmainfo=[1.0, 2.0])
    a, b = I.split_at(p, 1, tmp_path / "a.h5", tmp_path / "b.h5", progress=False)
    sa, sb = I.open_imageset(a), I.open_imageset(b)
    np.testing.assert_array_equal(sa.values, images[:2])
    np.testing.assert_array_equal(sb.values, images[2:])
    assert sa.attrs["lognorminfo"] == sb.attrs["lognorminfo"] == [-3.0, 3.0]
    e, o = I.odd_even(p, tmp_path / "e.h5", tmp_path / "o.h5", progress=False)
    np.testing.assert_array_equal(I.open_imageset(e).values, images[::2])
    np.testing.assert_array_equal(I.open_imageset(o).values, images[1::2])
    assert I.open_imageset(o).attrs["musigmainfo"] == [1.0, 2.0]
    a, _ = I.split_at(p, 3, tmp_path / "la.h5", tmp_path / "lb.h5", legacy=True, progress=False)
    assert I.open_imageset(a).attrs == {}
    with h5py.File(a) as f:
        assert f["0"].dtype == np.float64
    with pytest.raises(ParameterError, match="split index"):
        I.split_at(p, 4, tmp_path / "x.h5", tmp_path / "y.h5", progress=False)


def test_interrupted_write_resumes_to_the_same_bytes(tmp_path, monkeypatch):
    """A write that dies halfway through a block resumes to the bytes of an uninterrupted one.

    Every image (and constant) has its file space from the creation of the file, so the writes
    only fill raw bytes at fixed offsets: the layout cannot depend on where a run was interrupted.
    """
    import dask.array as da

    imgs = da.from_array(np.random.default_rng(1).lognormal(size=(12, 8, 8)), chunks=(4, 8, 8),
                         name="fixed-images")  # a fixed name: the rerun is the same job (resumable)
    kw = dict(lognorminfo=[0.0, 1.0], progress=False, scheduler="sync")
    ref = I.write_imageset(imgs, tmp_path / "ref.h5", **kw)
    real = I.ImageSetTarget.write

    def dying(self, tmp, vi, region, block):
        if region[0].start == 4:  # the second block: two of its four images written, then the job dies
            real(self, tmp, vi, (slice(4, 6), *region[1:]), block[:2])
            raise RuntimeError("killed")
        real(self, tmp, vi, region, block)

    monkeypatch.setattr(I.ImageSetTarget, "write", dying)
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="killed"):
        I.write_imageset(imgs, out, **kw)
    with h5py.File(tmp_path / "out.h5.partial") as f:  # images not yet written have their space already
        assert all(f[k].id.get_offset() is not None for k in [*map(str, range(12)), "lognorminfo"])
    monkeypatch.undo()
    I.write_imageset(imgs, out, **kw)
    assert out.read_bytes() == open(ref, "rb").read()
    np.testing.assert_array_equal(I.open_imageset(out).values, imgs.compute())
