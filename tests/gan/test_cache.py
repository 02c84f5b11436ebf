"""Statistics cache: legacy layout, only-missing computation, parameter checks, kill -9 resume, aggregates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from lazyastro.core.errors import FormatError, ParameterError
from lazyastro.gan import cache as C
from lazyastro.gan import imageset as I
from lazyastro.gan import kernels as K


def make_set(path, n=7, size=16, seed=0, lognorminfo=(-5.0, 5.0)):
    imgs = np.random.default_rng(seed).lognormal(size=(n, size, size))
    I.write_imageset(imgs, path, lognorminfo=list(lognorminfo), overwrite=True, progress=False)
    return imgs


def contents(path):
    with h5py.File(path) as f:
        out = {}
        f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
        return out, dict(f.attrs)


def test_legacy_layout_and_values(tmp_path, scheduler):
    imgs = make_set(tmp_path / "s.h5")
    cache = C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, scheduler=scheduler,
                                 mode="legacy", progress=False)
    with h5py.File(tmp_path / "c.h5") as f:
        assert sorted(f["spectra"]) == ["0", "1", "2"]
        assert f["spectra/2"].shape == (1, 8) and f["mf2d/0"].shape == (3, 3, 100)
        assert f["logintensityhistograms/1"].dtype == np.int64 and f["logintensityhistograms/1"].shape == (100,)
        np.testing.assert_array_equal(f["spectra/1"][()], K.power_spectrum(imgs[3:6], mode="legacy"))
        np.testing.assert_array_equal(f["logspectra/0"][()],
                                      np.log10(np.maximum(K.power_spectrum(imgs[:3], mode="legacy"), 1)))
        mf = K.minkowski(K.log_normalise(imgs[4], [-5, 5]), np.linspace(-1, 1, 100), convention="legacy")
        np.testing.assert_array_equal(f["mf2d/1"][:, 1, :], mf)
        np.testing.assert_array_equal(f["logintensityhistograms/0"][()], K.intensity_histogram(imgs[:3]).counts)
        assert f.attrs["batch_size"] == 3
    assert cache.minkowski().shape == (3, 7, 100) and cache.log_spectra().shape == (7, 8)
    assert cache.dropped()["total"] == imgs.size
    agg = C.aggregate(cache)
    np.testing.assert_allclose(agg.mf_std.values, cache.minkowski().std(axis=1))  # ddof 0
    assert int(agg.histogram.sum()) + sum(v for k, v in cache.dropped().items() if k != "total") == imgs.size


def test_only_missing_is_computed_and_batch_size_checked(tmp_path, monkeypatch):
    make_set(tmp_path / "s.h5")
    C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, mode="legacy", progress=False)
    ref, _ = contents(tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        del f["mf2d/1"]
        del f["logspectra/2"]  # a partial psd group (crashed the legacy tool)
    seen = []
    real = C.batch_statistics
    monkeypatch.setattr(C, "batch_statistics", lambda b, w, p: seen.append(w) or real(b, w, p))
    C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, scheduler="sync", mode="legacy",
                         progress=False)
    assert sorted(seen) == [("mf2d",), ("psd",)]
    got, _ = contents(tmp_path / "c.h5")
    assert sorted(got) == sorted(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])
    seen.clear()
    C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, scheduler="sync", mode="legacy",
                         progress=False)
    assert seen == []
    C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, statistics="psd",
                         scheduler="sync", mode="legacy", progress=False)
    assert seen == [("psd",)] * 3
    with pytest.raises(C.CacheMismatchError, match="batch_size = 3, this run has 4") as exc:
        C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=4, mode="legacy", progress=False)
    assert str(tmp_path / "c.h5") in str(exc.value)
    with pytest.raises(C.CacheMismatchError, match="mode"):
        C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=3, progress=False)
    # a cache of the legacy tool (no recorded parameters): batch sizes are checked from the shapes
    with h5py.File(tmp_path / "c.h5", "r+") as f:
        for k in list(f.attrs):
            del f.attrs[k]
    with pytest.raises(C.CacheMismatchError, match="another batch size"):
        C.compute_statistics(tmp_path / "s.h5", tmp_path / "c.h5", batch_size=2, mode="legacy", progress=False)


def test_bad_inputs(tmp_path):
    imgs = np.random.default_rng(0).lognormal(size=(3, 8, 8))
    I.write_imageset(imgs, tmp_path / "nolog.h5", progress=False)
    with pytest.raises(FormatError, match="lognorminfo not found"):
        C.compute_statistics(tmp_path / "nolog.h5", tmp_path / "c.h5", progress=False)
    assert not (tmp_path / "c.h5").exists()
    I.write_imageset(np.ones((2, 8, 6)), tmp_path / "rect.h5", lognorminfo=[0, 1], progress=False)
    with pytest.raises(ParameterError, match="square"):
        C.compute_statistics(tmp_path / "rect.h5", tmp_path / "c.h5", mode="legacy", progress=False)
    with pytest.raises(ParameterError, match="unknown statistics"):
        C.compute_statistics(tmp_path / "rect.h5", tmp_path / "c.h5", statistics="psd,peaks", progress=False)
    with pytest.raises(ParameterError, match="batch size"):
        C.compute_statistics(tmp_path / "rect.h5", tmp_path / "c.h5", batch_size=0, progress=False)
    c = C.compute_statistics(tmp_path / "rect.h5", tmp_path / "c.zarr", mode="default", progress=False)
    assert c.log_spectra().shape == (2, 4) and (tmp_path / "c.zarr").is_dir()


def test_ks_on_per_image_values(tmp_path):
    make_set(tmp_path / "a.h5", n=12, seed=1)
    make_set(tmp_path / "b.h5", n=12, seed=2)
    rng = np.random.default_rng(3)
    I.write_imageset(rng.lognormal(mean=1.5, size=(12, 16, 16)), tmp_path / "c.h5", lognorminfo=[-5, 5],
                     progress=False)
    a, b, c = (C.compute_statistics(tmp_path / f"{n}.h5", tmp_path / f"{n}-cache.h5", progress=False)
               for n in "abc")
    same, diff = C.ks_tests(a, b), C.ks_tests(a, c)
    assert same.mf_p.dims == ("functional", "threshold")
    assert float(diff.mf_p.sel(functional="F").min()) < 1e-4
    assert float(np.nanmedian(same.mf_p.sel(functional="F"))) > 0.01
    centres, hs = C.spectrum_histograms(a, [1, 5], range=(0, 6), bins=12)
    assert len(centres) == 12 and [int(h.sum()) for h in hs] == [12, 12]
    with pytest.raises(ParameterError, match="outside"):
        C.spectrum_histograms(a, [9])


SCRIPT = textwrap.dedent("""
    import os, sys, time
    from lazyastro.gan import cache as C
    if os.environ.get("SLOW"):
        real = C.batch_statistics
        def slow(*a):
            time.sleep(0.25)
            return real(*a)
        C.batch_statistics = slow
    if __name__ == "__main__":
        C.compute_statistics(sys.argv[1], sys.argv[2], batch_size=2, scheduler="threads", progress=False)
""")


def test_kill_9_and_rerun_give_identical_contents(tmp_path):
    make_set(tmp_path / "s.h5", n=40, size=16)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    ref, out = tmp_path / "ref.h5", tmp_path / "out.h5"
    subprocess.run([sys.executable, str(script), str(tmp_path / "s.h5"), str(ref)], check=True, timeout=300)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "s.h5"), str(out)],
                            env=dict(os.environ, SLOW="1"))
    record = tmp_path / "out.h5.partial.batches" / "record"
    deadline = time.time() + 200
    while time.time() < deadline and len(list(record.glob("*.done"))) < 12:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(record.glob("*.done")))
    assert 12 <= done < 60, "the run was not interrupted mid-way"
    assert not out.exists()
    subprocess.run([sys.executable, str(script), str(tmp_path / "s.h5"), str(out)], check=True, timeout=300)
    assert not (tmp_path / "out.h5.partial.batches").exists()
    (a, attrs_a), (b, attrs_b) = contents(ref), contents(out)
    assert sorted(a) == sorted(b) and attrs_a == attrs_b
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    # the cache file is written in one go from the finished batches: the same bytes, too
    assert out.read_bytes() == ref.read_bytes()


def test_ks_tests_use_per_image_values_in_both_layouts(tmp_path):
    """ks_tests is scipy's two-sample KS on the per-image F, U, chi and log spectra (not on histogram
    bins), and the Zarr cache keeps those per-image values (not batch aggregates)."""
    from scipy.stats import ks_2samp

    make_set(tmp_path / "a.h5", n=9, seed=1)
    make_set(tmp_path / "b.h5", n=6, seed=4)
    a = C.compute_statistics(tmp_path / "a.h5", tmp_path / "a.zarr", batch_size=4, progress=False)
    b = C.compute_statistics(tmp_path / "b.h5", tmp_path / "b.h5-cache.h5", batch_size=4, progress=False)
    assert a.minkowski().shape == (3, 9, 100) and a.log_spectra().shape[0] == 9
    assert [a.groups["mf2d"][k].shape[1] for k in a.batches] == [4, 4, 1]  # per image, batch by batch
    ks = C.ks_tests(a, b)
    ma, mb = a.minkowski(), b.minkowski()
    for f, t in ((0, 40), (1, 50), (2, 60)):
        want = ks_2samp(ma[f, :, t], mb[f, :, t])
        assert float(ks.mf_D[f, t]) == pytest.approx(want.statistic)
        assert float(ks.mf_p[f, t]) == pytest.approx(want.pvalue)
    want = ks_2samp(a.log_spectra()[:, 3], b.log_spectra()[:, 3])
    assert float(ks.logpsd_p[3]) == pytest.approx(want.pvalue)


def test_set_and_cache_bytes_do_not_depend_on_the_time_of_writing(tmp_path, h5py_track_order):
    imgs = np.random.default_rng(1).lognormal(size=(5, 16, 16))

    def write(d):
        d.mkdir()
        I.write_imageset(imgs, d / "s.h5", lognorminfo=[-5.0, 5.0], progress=False)
        # the cache records its source's path: the same name in both runs
        os.replace(d / "s.h5", tmp_path / "s.h5")
        C.compute_statistics(tmp_path / "s.h5", d / "c.h5", batch_size=2, mode="legacy", progress=False)
        os.replace(tmp_path / "s.h5", d / "s.h5")

    write(tmp_path / "a")
    time.sleep(1.1)  # HDF5 object times have a resolution of one second
    write(tmp_path / "b")
    for name in ("s.h5", "c.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
