"""Every skipper kernel on CuPy blocks gives what it gives on numpy blocks (skipped without a GPU)."""

import numpy as np
import pytest

cupy = pytest.importorskip("cupy")

from lazyastro.core.backend import has_cupy, to_device  # noqa: E402
from lazyastro.skipper import kernels  # noqa: E402

pytestmark = pytest.mark.skipif(not has_cupy(), reason="CuPy without a usable GPU")


def _host(x):
    return x.get() if hasattr(x, "get") else np.asarray(x)


def _same_counts(a, b):
    assert a.lo == b.lo and a.step == b.step
    assert isinstance(a.counts, cupy.ndarray)
    np.testing.assert_array_equal(_host(a.counts), b.counts)


@pytest.fixture
def blocks():
    rng = np.random.default_rng(0)
    ints = (5000 - 8 * rng.poisson(0.4, (12, 15, 1)) + rng.normal(0, 6, (12, 15, 9))).round().astype(np.int32)
    floats = ints.astype(np.float32) + rng.uniform(-0.4, 0.4, ints.shape).astype(np.float32)
    floats[0, 0, 0] = np.nan
    return ints, floats


def test_codes_counts_and_summaries(blocks):
    ints, floats = blocks
    for host in (ints, floats):
        dev = cupy.asarray(host)
        np.testing.assert_array_equal(_host(kernels.to_codes(dev)), kernels.to_codes(host))
        _same_counts(kernels.value_counts(kernels.to_codes(dev)), kernels.value_counts(kernels.to_codes(host)))
        sd, sh = kernels.block_summary(dev, 3, 6), kernels.block_summary(host, 3, 6)
        _same_counts(sd["all"], sh["all"])
        assert sorted(sd["skips"]) == sorted(sh["skips"]) == [3, 4, 5]
        for k in sh["skips"]:
            _same_counts(sd["skips"][k], sh["skips"][k])
        assert (sd["nonfinite"], sd["rounded"]) == (sh["nonfinite"], sh["rounded"])
        cd = kernels.combine_summaries(sd, kernels.block_summary(dev[:, :, :2], 0, 6), max_bins=16)
        ch = kernels.combine_summaries(sh, kernels.block_summary(host[:, :, :2], 0, 6), max_bins=16)
        _same_counts(cd["all"], ch["all"])
        host_sum = kernels.to_host(cd)
        assert isinstance(host_sum["all"].counts, np.ndarray)


def test_value_count_statistics(blocks):
    ints, _ = blocks
    vh = kernels.value_counts(ints.sum(axis=2).astype(np.int64))
    vd = kernels.value_counts(cupy.asarray(ints).sum(axis=2, dtype=cupy.int64))
    _same_counts(vd, vh)
    _same_counts(vd.coarsen(4), vh.coarsen(4))
    _same_counts((vd + vd).trimmed(8), (vh + vh).trimmed(8))
    for denom, scale in ((1, kernels.MAD_SCALE_NORMAL), (9, kernels.MAD_SCALE_LEGACY)):
        assert kernels.median_mad(vd, denom, scale) == kernels.median_mad(vh, denom, scale)
        med = kernels.median_mad(vh, denom)[0]
        edges = np.arange(med - 20.3, med + 20)
        np.testing.assert_array_equal(kernels.counts_in_bins(vd, edges, denom), kernels.counts_in_bins(vh, edges, denom))
        assert kernels.count_below(vd, 4995.5, denom) == kernels.count_below(vh, 4995.5, denom)
        assert kernels.count_above(vd, 5001.0, denom) == kernels.count_above(vh, 5001.0, denom)
        for legacy in (False, True):
            assert kernels.entropy_1adu(vd, denom, legacy) == pytest.approx(kernels.entropy_1adu(vh, denom, legacy), rel=1e-14)
    w = np.array([3, 1, 4, 1, 5])
    assert kernels.weighted_median(cupy.asarray([5.0, 1, 4, 2, 3]), cupy.asarray(w)) == kernels.weighted_median(
        np.array([5.0, 1, 4, 2, 3]), w)
    assert kernels.entropy(cupy.asarray(vh.counts)) == pytest.approx(kernels.entropy(vh.counts), rel=1e-14)


def test_smoothing_and_extrema():
    y = np.abs(np.sin(np.arange(60) / 4.0)) * 100
    sd, sh = kernels.moving_average(cupy.asarray(y), 4), kernels.moving_average(y, 4)
    np.testing.assert_allclose(_host(sd), sh, rtol=1e-13)
    for got, want in zip(kernels.extrema(cupy.diff(sd), 0.25), kernels.extrema(np.diff(sh), 0.25)):
        np.testing.assert_array_equal(_host(got), want)


def test_variances(blocks):
    ints, _ = blocks
    codes = ints.astype(np.int64)
    s1, s2 = codes.sum(axis=2), (codes * codes).sum(axis=2)
    got = kernels.exact_variance(cupy.asarray(s1), cupy.asarray(s2), 9)
    np.testing.assert_array_equal(_host(got), kernels.exact_variance(s1, s2, 9))
    plan = kernels.cluster_trials(codes.shape, 2, 500, np.random.default_rng(1))
    trials, e_r, _e_c, npix = plan
    got = kernels.cluster_variances(cupy.asarray(codes), 0, 0, trials, e_r, npix)
    np.testing.assert_array_equal(_host(got), kernels.cluster_variances(codes, 0, 0, trials, e_r, npix))


def test_statistics_of_a_cupy_cube(sim_dir):
    from lazyastro import skipper
    from lazyastro.skipper.stats import file_statistics

    d, _ = sim_dir
    cube = skipper.open(d / "Img_02.fits", chunks={"row": 5, "skip": 7})
    gpu = to_device(cube, "gpu")
    assert isinstance(gpu.data._meta, cupy.ndarray)
    (a,), (b,) = (
        skipper.compute_statistics([d / "Img_02.fits"], scheduler="sync", progress=False),
        __import__("dask").compute(file_statistics(gpu), scheduler="sync"),
    )
    for key in ("aveImgS", "dSdskip", "imgNoise", "skNoise", "pixVar", "clustVar", "tailRatio", "darkCurrent"):
        assert a[key] == b[key] or (np.isnan(a[key]) and np.isnan(b[key])), key
