"""lazyastro.dre.bestfit (parameters): the legacy columns, the parabola edge rules, NaN modes and flags."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from lazyastro.core.errors import ParameterError
from lazyastro.dre import parameters
from lazyastro.dre.bestfit import _parab, parabola

LOGR = np.linspace(-0.6, 1.7, 11)
GRID = {"n": [4.0], "q": [0.2, 0.6, 1.0], "theta": [0.0, 60.0, 120.0, 180.0], "log_r": LOGR}
SHAPE = (1, 3, 4, 11)


def _chi(cubes, keys=None, **coords):
    cubes = np.asarray(cubes, np.float64)
    keys = keys or [f"01_{i + 1:04d}" for i in range(cubes.shape[0])]
    c = {**{k: np.asarray(v) for k, v in GRID.items()}, "object": keys}
    c.update({k: ("object", np.asarray(v)) for k, v in coords.items()})
    return xr.DataArray(cubes, dims=("object", "n", "q", "theta", "log_r"), coords=c)


def _cube_with_min(q, t, r, *, a=2.0, vertex=None, base=50.0):
    """exp of a parabola in log_r (so ln C is exactly quadratic) at (q, t); larger elsewhere."""
    c = np.full(SHAPE, base)
    x0 = LOGR[r] if vertex is None else vertex
    c[0, q, t] = np.exp(1.0 + a * (LOGR - x0) ** 2)
    return c


def test_parabola_exact():
    a, b, c = parabola([0.0, 0.5, 1.5], [3.0 + 0 * 2 + 0, 3.0 + 0.5 * 2 + 4 * 0.25, 3 + 1.5 * 2 + 4 * 2.25])
    assert (a, b, c) == pytest.approx((4.0, 2.0, 3.0))


def test_parabola_interior_vertex_inside_window():
    vertex = LOGR[4] + 0.3 * (LOGR[1] - LOGR[0])
    p = parameters(_chi([_cube_with_min(1, 2, 4, a=3.0, vertex=vertex)]))
    assert p.MODEL_IDX.values.tolist() == [[0, 1, 2, 4]]
    assert float(p.LOGR[0]) == pytest.approx(LOGR[4])
    assert float(p.LOGR_PARAB[0]) == pytest.approx(vertex, rel=1e-9)
    assert float(p.LOGR_STD[0]) == pytest.approx(1 / np.sqrt(2 * 3.0), rel=1e-9)
    assert (float(p.AX_RATIO[0]), float(p.ANGLE[0]), float(p.INDEX[0])) == (0.6, 120.0, 4.0)
    assert not bool(p.FLAG_EDGE[0]) and not bool(p.FLAG_ALL_NAN[0])


def test_parabola_edge_rules_each_branch():
    step = LOGR[1] - LOGR[0]
    # argmin at r = 0: window clamped to radii 0..2; vertex left of the window but inside the
    # full range cannot happen at the first radius, so a vertex below log_r[0] -> (NaN, NaN)
    x, s = _parab(np.exp(1 + 2 * (LOGR - (LOGR[0] - 0.4 * step)) ** 2), LOGR, 0, log=True)
    assert np.isnan(x) and np.isnan(s)
    # argmin at r = 0 with the vertex inside the window [log_r 0, log_r 2] -> (x*, std)
    x, s = _parab(np.exp(1 + 2 * (LOGR - (LOGR[0] + 0.2 * step)) ** 2), LOGR, 0, log=True)
    assert x == pytest.approx(LOGR[0] + 0.2 * step) and s == pytest.approx(0.5)
    # last radius: vertex beyond log_r[-1] -> (NaN, NaN)
    x, s = _parab(np.exp(1 + 2 * (LOGR - (LOGR[-1] + 0.3 * step)) ** 2), LOGR, 10, log=True)
    assert np.isnan(x) and np.isnan(s)
    # vertex inside the range but outside the clamped window -> (log_r[r_min], NaN) with r_min
    # the given index (0 here), not the clamped centre (1). (With r_min the true argmin of the
    # profile the window's vertex cannot leave the window inside the range; the rule is
    # tested on the function.)
    prof = np.exp(1 + 2 * (LOGR - LOGR[5]) ** 2)
    x, s = _parab(prof, LOGR, 0, log=True)
    assert x == LOGR[0] and np.isnan(s)
    x, s = _parab(prof, LOGR, 10, log=True)  # clamped centre 9, vertex left of the window
    assert x == LOGR[10] and np.isnan(s)
    # concave (a < 0) -> (NaN, NaN)
    prof = np.exp(5 - (LOGR - LOGR[5]) ** 2)
    x, s = _parab(prof, LOGR, 5, log=True)
    assert np.isnan(x) and np.isnan(s)
    # straight line (a = 0): no vertex -> (NaN, NaN)
    x, s = _parab(np.exp(1 + LOGR), LOGR, 4, log=True)
    assert np.isnan(x) and np.isnan(s)
    # fewer than 3 radii: no parabola
    assert np.isnan(_parab(np.array([1.0, 2.0]), LOGR[:2], 0, log=True)[0])
    # the fork fits chi^2 itself: a parabola in chi^2 is recovered exactly
    x, s = _parab(1 + 2 * (LOGR - LOGR[3] - 0.1 * step) ** 2, LOGR, 3, log=False)
    assert x == pytest.approx(LOGR[3] + 0.1 * step) and s == pytest.approx(0.5)


def test_hand_built_cube_columns_against_formulas():
    rng = np.random.default_rng(3)
    c = 2.0 + rng.random(SHAPE)
    c[0, 2, 1, 7] = 1.0
    p = parameters(_chi([c]), mode="legacy")
    assert p.MODEL_IDX.values.tolist() == [[0, 2, 1, 7]]
    assert float(p.CHI[0]) == 1.0 and float(p.LOGR[0]) == LOGR[7]
    assert float(p.CHI_STD[0]) == pytest.approx(np.std(c))
    R = 10 ** LOGR
    w = 1 / c
    logr_chi = np.log10((R * w).sum() / w.sum())
    assert float(p.LOGR_CHI[0]) == pytest.approx(logr_chi)
    assert float(p.LOGR_VAR[0]) == pytest.approx(np.log10(((R - R[7]) ** 2 * w).sum() / w.sum()))
    assert float(p.LOGR_CHI_VAR[0]) == pytest.approx(
        np.log10(((R - 10**logr_chi) ** 2 * w).sum() / w.sum()))
    expect = _parab(c[0, 2, 1], LOGR, 7, log=True)
    np.testing.assert_allclose([float(p.LOGR_PARAB[0]), float(p.LOGR_STD[0])], expect)
    assert bool(p.FLAG_EDGE[0])  # q = 1.0 is the last q
    assert int(p.NUMBER[0]) == 1 and int(p.EXT_NUMBER[0]) == 1
    default = parameters(_chi([c]))
    for name in ("CHI", "CHI_STD", "LOGR_CHI", "LOGR_VAR", "LOGR_PARAB"):  # clean cube: same
        np.testing.assert_allclose(default[name].values, p[name].values, equal_nan=True)


def test_legacy_vs_default_on_nan_and_all_nan_flag():
    c = _cube_with_min(1, 1, 5)
    c[0, 0, 0, 0] = np.nan
    allnan = np.full(SHAPE, np.nan)
    chi = _chi([c, allnan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarnings leak out
        legacy = parameters(chi, mode="legacy")
        default = parameters(chi)
    assert np.isnan(legacy.CHI_STD[0]) and np.isnan(legacy.LOGR_CHI[0]) and np.isnan(legacy.LOGR_VAR[0])
    assert np.isfinite(default.CHI_STD[0]) and np.isfinite(default.LOGR_CHI[0])
    assert float(default.CHI_STD[0]) == pytest.approx(np.nanstd(c))
    for p in (legacy, default):
        assert p.MODEL_IDX.values[0].tolist() == [0, 1, 1, 5]
        assert float(p.CHI[0]) == pytest.approx(np.e)
        assert float(p.LOGR_PARAB[0]) == pytest.approx(LOGR[5])
        assert p.FLAG_ALL_NAN.values.tolist() == [False, True]
        assert p.MODEL_IDX.values[1].tolist() == [-1, -1, -1, -1]
        assert np.isnan(p.CHI[1]) and np.isnan(p.LOGR[1]) and not bool(p.FLAG_EDGE[1])


def test_edge_flag_axes_and_theta_periodicity():
    inner = parameters(_chi([_cube_with_min(1, 1, 5)]))
    assert not bool(inner.FLAG_EDGE[0])
    for q, t, r, edge in [(0, 1, 5, True), (2, 1, 5, True), (1, 1, 0, True), (1, 1, 10, True),
                          (1, 0, 5, False), (1, 3, 5, False)]:  # theta 0..180 is periodic
        p = parameters(_chi([_cube_with_min(q, t, r)]))
        assert bool(p.FLAG_EDGE[0]) is edge, (q, t, r)
    # a theta grid not covering 180 degrees has edges
    half = _chi([_cube_with_min(1, 0, 5)]).isel(theta=slice(0, 2))  # theta 0, 60
    assert bool(parameters(half).FLAG_EDGE[0])


def test_numbers_flux_flag_lazy_and_errors():
    cubes = [_cube_with_min(1, 1, 5), _cube_with_min(0, 2, 3)]
    p = parameters(_chi(cubes, keys=["03_0042", "12_0007"]))
    assert p.EXT_NUMBER.values.tolist() == [3, 12] and p.NUMBER.values.tolist() == [42, 7]
    assert p.FLAG_NEG_FLUX.values.tolist() == [False, False]
    chi = _chi(cubes, keys=["a", "b"], number=[5, 6], ext_number=[0, 0], flux=[10.0, -1.0])
    eager = parameters(chi)
    assert eager.NUMBER.values.tolist() == [5, 6]
    assert eager.FLAG_NEG_FLUX.values.tolist() == [False, True]
    lazy_chi = chi.copy(data=da.from_array(chi.values, chunks=(1, 1, 3, 2, 11)))
    lazy = parameters(lazy_chi)
    assert isinstance(lazy.CHI.data, da.Array)
    xr.testing.assert_identical(lazy.compute(), eager)
    with pytest.raises(ParameterError, match="EE_NNNN"):
        parameters(_chi(cubes, keys=["a", "b"]))
    with pytest.raises(ParameterError, match="dims"):
        parameters(chi.isel(n=0))
    with pytest.raises(ParameterError, match="mode"):
        parameters(chi, mode="x")


def test_chi2_to_parameters_end_to_end_flags_negative_flux():
    from lazyastro.dre import chi2

    B = 16
    rng = np.random.default_rng(0)
    models = xr.DataArray(rng.random((1, 2, 1, 3, B, B), dtype=np.float32) + 0.1,
                          dims=("n", "q", "theta", "log_r", "y", "x"),
                          coords={"n": [4.0], "q": [0.5, 1.0], "theta": [0.0], "log_r": [0.0, 0.5, 1.0]})
    obj = np.stack([5 * models.values[0, 0, 0, 1], -5 * models.values[0, 1, 0, 0],
                    np.full((B, B), np.nan, np.float32)])
    cuts = xr.Dataset({"obj": (("object", "y", "x"), obj),
                       "seg": (("object", "y", "x"), np.ones((3, B, B), bool)),
                       "rms": (("object", "y", "x"), np.full((3, B, B), 0.1, np.float32))},
                      coords={"object": ["00_0001", "00_0002", "00_0003"]})
    for mode in ("legacy", "default"):
        p = parameters(chi2(models, cuts, mode=mode), mode=mode).compute()
        assert p.FLAG_NEG_FLUX.values.tolist() == [False, True, False]
        assert p.MODEL_IDX.values[0].tolist() == [0, 0, 0, 1]
        assert p.NUMBER.values.tolist() == [1, 2, 3]
        # legacy keeps the negative terms of a negative-flux object; the default drops terms
        # with a non-positive variance, here all of them, so that cube is all NaN too
        assert p.FLAG_ALL_NAN.values.tolist() == [False, mode == "default", True]
