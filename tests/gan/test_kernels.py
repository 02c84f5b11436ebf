"""GAN kernels: the spec's reference cases, closed forms, sweep == per-threshold evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lazyastro.core.errors import ParameterError
from lazyastro.gan import kernels as K

from .reference import minkowski_reference

SQ2 = math.sqrt(2.0)


@pytest.fixture(autouse=True, params=["auto", "vectorised"])
def engine(request, monkeypatch):
    """Every Minkowski test runs on the compiled sweep (Numba) and on the vectorised form."""
    monkeypatch.setattr(K, "MINKOWSKI_ENGINE", request.param)
    return request.param


def mf(img, ts, conv="legacy"):
    return K.minkowski(np.asarray(img, dtype=float), ts, convention=conv)


def _img(shape, where, value=1.0):
    a = np.zeros(shape)
    for w in where:
        a[w] = value
    return a


# (image, thresholds, F, U, chi) from the spec's table
SPEC_CASES = [
    (_img((3, 3), [(1, 1)]), [0, 0.25, 0.5, 0.75, 1.0], [2.0, 1.125, 0.5, 0.125, 0],
     [5.656854249492381, 4.242640687119285, 2.8284271247461903, 1.4142135623730951, 0], [1, 1, 1, 1, 0]),
    (_img((5, 5), [np.s_[1:4, 1:4]]), [0, 0.5], [14.0, 8.5], [13.656854249492381, 10.82842712474619], [1, 1]),
    (_img((7, 7), [np.s_[1:6, 1:6]]) - _img((7, 7), [(3, 3)]), [0.5], [24.0], [21.65685424949238], [0]),
    (_img((9, 9), [np.s_[1:8, 1:8]]) - _img((9, 9), [np.s_[3:6, 3:6]]), [0.5], [40.0],
     [37.656854249492376], [0]),
    (np.array([[1.0, 0], [0, 1]]), [0.25, 0.5], [0.9375, 0.75], [0.7071067811865476, 1.4142135623730951],
     [0.5, 0.5]),
    (np.array([[0.0, 1], [1, 0]]), [0.25, 0.5], [1.0, 1.0], [0.7071067811865476, 1.4142135623730951],
     [0.5, 0.5]),
    (_img((4, 4), [(1, 1), (2, 2)]), [0.5], [1.5], [5.656854249492381], [2]),
    (_img((4, 4), [(1, 2), (2, 1)]), [0.5], [1.75], [5.656854249492381], [2]),
    (np.ones((2, 2)), [0.5], [1.0], [0], [0]),
    (np.ones((4, 4)), [0.5], [9.0], [0], [0]),
    (np.tile([0.0, 1, 2, 3], (3, 1)), [0.5, 1.5, 2.25], [5.0, 3.0, 1.5], [2.0, 2.0, 2.0], [0, 0, 0]),
]


@pytest.mark.parametrize("case", range(len(SPEC_CASES)))
def test_legacy_spec_reference_values(case):
    img, ts, f, u, chi = SPEC_CASES[case]
    got = mf(img, ts)
    np.testing.assert_allclose(got[0], f, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(got[1], u, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(got[2], chi)


def test_legacy_near_one_and_nan_and_tiny():
    got = mf(_img((5, 5), [np.s_[1:4, 1:4]]), [0.999])
    assert abs(got[0, 0] - 4.008002) < 1e-9 and abs(got[1, 0] - 8.005656854249493) < 1e-9
    assert got[2, 0] == 1
    got = mf([[np.nan, 1.0], [0.0, 0.0]], [0.5])
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 0]) and got[2, 0] == 0.25
    assert mf([[3.0]], [0.5]).tolist() == [[0.0], [0.0], [0.0]]
    with pytest.raises(ParameterError, match="NaN"):
        mf([[np.nan, 1.0], [0.0, 0.0]], [0.5], "default")


def test_single_pixel_and_ring_topology():
    # single pixel: chi 1; ring with 1-pixel hole: chi 0 in both conventions
    for conv in ("legacy", "default"):
        assert mf(_img((3, 3), [(1, 1)]), [0.5], conv)[2, 0] == 1
        ring = _img((5, 5), [np.s_[1:4, 1:4]]) - _img((5, 5), [(2, 2)])
        assert mf(ring, [0.5], conv)[2, 0] == 0


def test_default_saddles_consistent():
    # diagonal pixels: separate at t = 0.5 (centre mean 0.5 is not > 0.5), joined at 0.25
    got = mf(_img((4, 4), [(1, 1), (2, 2)]), [0.5, 0.25], "default")
    assert got[2].tolist() == [2.0, 1.0]
    mirror = mf(_img((4, 4), [(1, 2), (2, 1)]), [0.5, 0.25], "default")
    np.testing.assert_allclose(mirror, got, rtol=1e-14)  # mirror images agree (legacy: 1.5 vs 1.75)


@pytest.mark.parametrize("n", [6, 9])
def test_checkerboard_closed_form(n):
    y, x = np.mgrid[:n, :n]
    board = ((x + y) % 2).astype(float)
    cells = (n - 1) ** 2
    got = mf(board, [0.5, 0.25], "default")
    np.testing.assert_allclose(got[:, 0], [0.25 * cells, SQ2 * cells, 0.5 * cells], rtol=1e-13)
    np.testing.assert_allclose(got[:, 1], [(1 - 1 / 16) * cells, SQ2 / 2 * cells, -0.5 * cells], rtol=1e-13)
    leg = mf(board, [0.5], "legacy")[:, 0]
    five = sum(1 for yy in range(n - 1) for xx in range(n - 1) if (xx + yy) % 2 == 1)
    np.testing.assert_allclose(leg, [0.75 * five + 1.0 * (cells - five), SQ2 * cells, 0.5 * cells],
                               rtol=1e-13)


@pytest.mark.parametrize("conv", ["default", "legacy"])
def test_disk_and_ring_closed_forms(conv):
    n = 81
    y, x = np.mgrid[:n, :n] - 40.0
    rho = np.hypot(x + 0.3, y - 0.2)
    disk = 30.0 - rho  # threshold t: disk of radius 30 - t
    got = mf(disk, [10.0, 15.0], conv)
    for j, r in enumerate((20.0, 15.0)):
        assert got[0, j] == pytest.approx(np.pi * r * r, rel=3e-3)
        assert got[1, j] == pytest.approx(2 * np.pi * r, rel=3e-3)
        assert got[2, j] == 1
    ring = 6.0 - np.abs(rho - 25.0)  # t = 0: annulus 19 < rho < 31
    got = mf(ring, [0.0], conv)[:, 0]
    assert got[0] == pytest.approx(np.pi * (31**2 - 19**2), rel=3e-3)
    assert got[1] == pytest.approx(2 * np.pi * (31 + 19), rel=3e-3)
    assert got[2] == 0


@pytest.mark.parametrize("conv", ["default", "legacy"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sweep_equals_per_threshold_reference(conv, seed):
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((9, 11))
    img[2, 3] = img[2, 4]  # ties between corners
    ts = np.concatenate([np.linspace(-2.5, 2.5, 23), img.ravel()[:6], [img.min() - 1, img.max() + 1]])
    rng.shuffle(ts)
    got = mf(img, ts, conv)
    ref = np.array(minkowski_reference(img, ts, conv))
    np.testing.assert_allclose(got[:2], ref[:2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[2], ref[2])


def test_compiled_equals_vectorised_bitwise(monkeypatch):
    rng = np.random.default_rng(6)
    img = np.cumsum(rng.standard_normal((64, 48)), axis=0) * 0.2
    img[5, 5] = np.nan
    ts = np.linspace(-2, 2, 100)
    for conv in ("legacy",):
        monkeypatch.setattr(K, "MINKOWSKI_ENGINE", "auto")
        a = mf(img, ts, conv)
        monkeypatch.setattr(K, "MINKOWSKI_ENGINE", "vectorised")
        b = mf(img, ts, conv)
        np.testing.assert_array_equal(a, b)
    img[5, 5] = 0.0
    monkeypatch.setattr(K, "MINKOWSKI_ENGINE", "auto")
    a = mf(img, ts, "default")
    monkeypatch.setattr(K, "MINKOWSKI_ENGINE", "vectorised")
    np.testing.assert_array_equal(a, mf(img, ts, "default"))


def test_sweep_in_passes_equals_one_pass(monkeypatch):
    rng = np.random.default_rng(5)
    img = rng.standard_normal((40, 30))
    ts = np.linspace(-2, 2, 50)
    whole = mf(img, ts, "default")
    monkeypatch.setattr(K, "_PAIRS_PER_PASS", 97)
    monkeypatch.setattr(K, "MINKOWSKI_ENGINE", "vectorised")
    np.testing.assert_allclose(mf(img, ts, "default"), whole, rtol=1e-13)


def test_legacy_and_default_agree_without_saddles():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:20, :24].astype(float)
    plane = 0.3 * x + 0.7 * y + 0.01 * rng.standard_normal((20, 24))
    ts = np.linspace(0, 20, 37)
    a, b = mf(plane, ts, "legacy"), mf(plane, ts, "default")
    np.testing.assert_allclose(a[:2], b[:2], rtol=1e-14)
    np.testing.assert_array_equal(a[2], b[2])
    # a random field: equal exactly at the thresholds where no cell is a saddle
    img = rng.standard_normal((15, 15))
    ts = np.linspace(-3, 3, 61)
    a, b = mf(img, ts, "legacy"), mf(img, ts, "default")
    c = [img[:-1, :-1], img[:-1, 1:], img[1:, 1:], img[1:, :-1]]
    for j, t in enumerate(ts):
        p = sum((ci > t).astype(int) << k for k, ci in enumerate(c))
        if not np.isin(p, [5, 10]).any():
            np.testing.assert_allclose(a[:2, j], b[:2, j], rtol=1e-13, atol=1e-13)
            assert a[2, j] == b[2, j]


def test_minkowski_dtypes_views_and_blocks():
    rng = np.random.default_rng(4)
    img = rng.standard_normal((12, 14))
    ts = np.linspace(-1, 1, 9)
    ref = mf(img, ts, "default")
    np.testing.assert_array_equal(K.minkowski(img[:, ::-1][:, ::-1], ts), ref)  # non-contiguous view
    assert K.minkowski((img * 10).astype(np.int64), [0.5]).shape == (3, 1)
    assert K.minkowski(img.astype(np.float32), ts).dtype == np.float64
    block = np.stack([img, img[::-1]])
    got = K.minkowski_block(block, ts)
    assert got.shape == (2, 3, 9)
    np.testing.assert_array_equal(got[0], ref)
    with pytest.raises(ParameterError):
        K.minkowski(np.zeros(5), ts)
    with pytest.raises(ParameterError):
        K.minkowski(img, ts, convention="mecke")


# --------------------------------------------------------------------------- power spectra


def test_legacy_psd_reference_values():
    delta = np.zeros((8, 8))
    delta[0, 0] = 1
    assert K.power_spectrum(delta, mode="legacy").tolist() == [1.0, 1.0, 1.0, 1.0]
    got = K.power_spectrum(np.ones((8, 8)), mode="legacy")
    assert got.tolist()[:2] == [1024.0, 599.875901225933]
    assert got[2] == 0 and got[3] == 0
    got = K.power_spectrum(np.ones((7, 7)), mode="legacy")
    assert got.tolist()[:2] == [2401.0, 108.18139696759552] and abs(got[2]) < 1e-29
    assert len(K.power_spectrum(np.ones((128, 128)), mode="legacy")) == 64
    assert len(K.power_spectrum(np.ones((16, 16)), mode="legacy")) == 8
    with pytest.raises(ParameterError, match="square"):
        K.power_spectrum(np.ones((8, 6)), mode="legacy")


def test_psd_batch_equals_single_bitwise():
    rng = np.random.default_rng(1)
    imgs = rng.lognormal(size=(3, 16, 16))
    for mode in ("legacy", "default"):
        batch = K.power_spectrum(imgs, mode=mode)
        for i in range(3):
            np.testing.assert_array_equal(batch[i], K.power_spectrum(imgs[i], mode=mode))


def test_default_psd_normalisation_and_isotropy():
    ones = K.power_spectrum(np.ones((8, 8)))
    assert ones.tolist() == [64.0, 0, 0, 0, 0]  # DC = (sum x)^2 / (H W)
    rng = np.random.default_rng(2)
    noise = rng.normal(scale=2.0, size=(128, 128))
    assert K.power_spectrum(noise)[1:].mean() == pytest.approx(4.0, rel=0.05)
    # rectangular 32 x 64: a wave with 10 cycles along x (64) and one with 5 along y (32) are both k = 5
    yy, xx = np.mgrid[:32, :64]
    for wave in (np.cos(2 * np.pi * 10 * xx / 64), np.cos(2 * np.pi * 5 * yy / 32)):
        p = K.power_spectrum(wave)
        assert len(p) == 17 and int(np.argmax(p)) == 5
    assert K.wavenumbers((32, 64)).tolist() == list(range(17))
    assert K.k_to_ell(np.array([11, 44, 89])).tolist() == [198.0, 792.0, 1602.0]
    p2 = K.power_spectrum_2d(np.ones((4, 4)))
    assert p2[2, 2] == 256 and p2.sum() == 256


# --------------------------------------------------------------------------- histogram and normalisation


def test_histogram_matches_numpy_and_counts_dropped():
    rng = np.random.default_rng(0)
    x = rng.lognormal(mean=2.0, sigma=3.0, size=(4, 32, 32))
    x[0, 0, :3] = [0.0, -1.0, np.nan]
    x[0, 1, 0] = 1e-7   # below 10**-5
    x[0, 1, 1] = 1e11   # above 10**10
    h = K.intensity_histogram(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref, edges = np.histogram(np.log10(x), 100, (-5.0, 10.0))
    np.testing.assert_array_equal(h.counts, ref)
    np.testing.assert_array_equal(h.edges, edges)
    assert (h.nonpositive, h.nan, h.total) == (2, 1, x.size)
    assert h.below >= 1 and h.above >= 1
    assert int(h.counts.sum()) + h.dropped == x.size
    lin = K.intensity_histogram(np.array([0.5, 1.5, 5.0]), bins=2, range=(0, 2), log=False)
    assert lin.counts.tolist() == [1, 1] and lin.above == 1
    with pytest.raises(ParameterError):
        K.intensity_histogram(x, bins=0)


def test_normalisation_round_trip():
    lni = [math.log(0.5), math.log(300.0)]
    x = np.array([0.5, 3.0, 300.0])
    g = K.log_normalise(x, lni)
    assert g[0] == -1.0 and g[-1] == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(K.denormalise(g, lni), x, rtol=1e-13)
    np.testing.assert_allclose(K.denormalise_log10(g, lni), np.log10(x), rtol=1e-13, atol=1e-15)
