"""lazyastro.dre.chisquare (chi2) and its kernels: legacy parity, NaN handling, the shared cube, errors."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from lazyastro.core.errors import ParameterError
from lazyastro.dre import chi2
from lazyastro.dre.kernels import chi2_block, chi2_dense, chi2_gather

B = 32
GRID = {"n": [2.0, 4.0], "q": [0.4, 0.7, 1.0], "theta": [0.0, 60.0, 120.0],
        "log_r": [-0.3, 0.0, 0.3, 0.6]}


def _models(seed=0):
    """Small elliptical-ish positive model stamps on GRID (not physical, just smooth and distinct)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:B, :B] - B // 2
    out = np.empty((2, 3, 3, 4, B, B), np.float32)
    for i, n in enumerate(GRID["n"]):
        for j, q in enumerate(GRID["q"]):
            for t, th in enumerate(GRID["theta"]):
                c, s = np.cos(np.radians(th)), np.sin(np.radians(th))
                xp, yp = xx * c + yy * s, -xx * s + yy * c
                for r, lr in enumerate(GRID["log_r"]):
                    rad = np.sqrt(xp**2 + (yp / q) ** 2) / (3 * 10**lr)
                    out[i, j, t, r] = np.exp(-(rad ** (1 / n))) + 1e-4 * rng.random((B, B))
    out /= out.sum(axis=(-2, -1), keepdims=True)
    return xr.DataArray(out, dims=("n", "q", "theta", "log_r", "y", "x"),
                        coords={k: np.asarray(v) for k, v in GRID.items()}, name="convolved",
                        attrs={"psf_sum_sq": 0.05})


def _cuts(models, n_obj=7, seed=1, nan_frac=0.0):
    """Objects = scaled model + noise, blob masks of varied size, optional NaN pixels."""
    rng = np.random.default_rng(seed)
    m = models.values.reshape(-1, B, B)
    yy, xx = np.mgrid[:B, :B] - B // 2
    obj = np.empty((n_obj, B, B), np.float32)
    seg = np.empty((n_obj, B, B), bool)
    rms = np.empty((n_obj, B, B), np.float32)
    truth = rng.integers(0, m.shape[0], n_obj)
    for i in range(n_obj):
        flux = 500.0 + 100 * i
        sigma = 0.05 + 0.02 * rng.random((B, B))
        obj[i] = flux * m[truth[i]] + sigma * rng.standard_normal((B, B))
        rms[i] = sigma
        seg[i] = xx**2 + (yy / (0.6 + 0.1 * i)) ** 2 < (4 + 1.5 * i) ** 2
        if nan_frac:
            bad = rng.random((B, B)) < nan_frac
            obj[i][bad & (rng.random((B, B)) < 0.5)] = np.nan
            rms[i][bad & (rng.random((B, B)) < 0.5)] = np.nan
    keys = [f"00_{i + 1:04d}" for i in range(n_obj)]
    ds = xr.Dataset({"obj": (("object", "y", "x"), obj), "seg": (("object", "y", "x"), seg),
                     "rms": (("object", "y", "x"), rms)},
                    coords={"object": keys, "ext_number": ("object", np.zeros(n_obj, int)),
                            "number": ("object", np.arange(1, n_obj + 1))})
    return ds, truth


def legacy_reference(models, cuts, factor=1.0):
    """The legacy per-object algorithm in plain float64 numpy: gather mask pixels, then the passes."""
    cube = np.asarray(models.values, np.float64)
    out = []
    for i in range(cuts.sizes["object"]):
        d = np.asarray(cuts.obj.values[i], np.float64)
        M = np.asarray(cuts.seg.values[i])
        s2 = np.asarray(cuts.rms.values[i], np.float64) ** 2
        iy, ix = np.nonzero(M)
        mk = cube[..., iy, ix]
        fd = np.nansum(d[iy, ix])
        fk = mk.sum(axis=-1)
        s = (fd / fk)[..., None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN rows
            out.append(np.nanmean((d[iy, ix] - s * mk) ** 2 / (factor * s * mk + s2[iy, ix]), axis=-1))
    return np.stack(out)


@pytest.fixture(scope="module")
def models():
    return _models()


def _argmins(c):
    return [np.unravel_index(np.nanargmin(ci), ci.shape) for ci in c]


@pytest.mark.parametrize("nan_frac", [0.0, 0.05])
def test_legacy_parity_with_float64_reference(models, nan_frac):
    cuts, truth = _cuts(models, nan_frac=nan_frac)
    ref = legacy_reference(models, cuts)
    chi = chi2(models, cuts, mode="legacy", objects_per_block=3)
    assert chi.dims == ("object", "n", "q", "theta", "log_r")
    assert chi.dtype == np.float32 and isinstance(chi.data, da.Array)
    assert chi.data.numblocks[0] == 3
    got = chi.values
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert _argmins(got) == _argmins(ref)
    if not nan_frac:  # the generating model is (one of the degenerate q = 1 angles of) the best
        best = got.reshape(len(truth), -1)
        np.testing.assert_allclose(best[np.arange(len(truth)), truth], np.nanmin(best, axis=1), rtol=1e-2)
    np.testing.assert_allclose(chi.flux.values,
                               [np.nansum(o[s]) for o, s in zip(cuts.obj.values, cuts.seg.values)],
                               rtol=1e-6)
    assert list(chi.number.values) == list(range(1, 8)) and chi.object.values[0] == "00_0001"
    assert list(chi.q.values) == GRID["q"]


def test_psf_variance_and_errors(models):
    cuts, _ = _cuts(models, n_obj=3)
    got = chi2(models, cuts, mode="legacy", variance="psf", exposure=2.0).values
    np.testing.assert_allclose(got, legacy_reference(models, cuts, factor=0.05 / 2.0), rtol=1e-5)
    bare = models.copy()
    bare.attrs = {}
    with pytest.raises(ParameterError, match="psf_sum_sq"):
        chi2(bare, cuts, variance="psf")
    with pytest.raises(ParameterError, match="exposure"):
        chi2(models, cuts, variance="psf", exposure=0.0)
    with pytest.raises(ParameterError, match="mode"):
        chi2(models, cuts, mode="fast")
    with pytest.raises(ParameterError, match=r"cuts\.obj: cut size \(16, 16\)"):
        chi2(models, cuts.isel(y=slice(0, 16), x=slice(0, 16)))
    with pytest.raises(ParameterError, match="'rms'"):
        chi2(models, cuts.drop_vars("rms"))
    with pytest.raises(ParameterError, match="dims"):
        chi2(models.isel(n=0), cuts)
    with pytest.raises(ParameterError, match="objects_per_block"):
        chi2(models, cuts, objects_per_block=0)
    with pytest.raises(ParameterError, match="ddof"):
        chi2(models, cuts, mode="legacy", ddof=1)


def test_kernel_forms_agree_on_nan_and_bad_variance(models):
    """Compiled kernel vs the numpy gather and dense forms, both modes, with every awkward case."""
    cuts, _ = _cuts(models, n_obj=6, nan_frac=0.08)
    obj, seg, rms = (np.array(cuts[v].values) for v in ("obj", "seg", "rms"))
    obj[2] = np.nan                       # all-NaN object
    obj[3] *= -1.0                        # negative flux: non-positive variances
    rms[4][seg[4]] = np.where(np.arange(seg[4].sum()) % 5 == 0, 0.0, rms[4][seg[4]])  # zero rms
    m = models.values
    for mode in ("legacy", "default"):
        res = chi2_block(obj, seg, rms, m, mode=mode)
        for other in (chi2_gather(obj, seg, rms, m, mode=mode), chi2_dense(obj, seg, rms, m, mode=mode)):
            assert np.array_equal(np.isnan(res.chi), np.isnan(other))
            np.testing.assert_allclose(res.chi, other, rtol=2e-6)
        assert np.isnan(res.chi[2]).all() and res.npix[2] == 0 and res.flux[2] == 0
        assert res.flux[3] < 0
    default = chi2_block(obj, seg, rms, m, mode="default")
    assert default.n_excluded[3] > 0 and default.n_excluded[0] == 0
    # terms with a non-positive variance are dropped, not averaged in: what is left is >= 0
    c3 = default.chi[3]
    assert (c3[np.isfinite(c3)] >= 0).all()
    legacy = chi2_block(obj, seg, rms, m, mode="legacy")
    assert (legacy.chi[3][np.isfinite(legacy.chi[3])] < 0).any()
    valid = seg & np.isfinite(obj) & np.isfinite(rms)
    np.testing.assert_array_equal(default.npix, valid.reshape(6, -1).sum(1))
    # default ddof: same sums over count - ddof
    d1 = chi2_block(obj, seg, rms, m, mode="default", ddof=1)
    ok = default.npix[0]
    np.testing.assert_allclose(d1.chi[0], default.chi[0] * ok / (ok - 1), rtol=1e-6)


def test_legacy_and_default_differ_only_where_documented(models):
    cuts, _ = _cuts(models, n_obj=2)
    legacy = chi2(models, cuts, mode="legacy").values
    default = chi2(models, cuts).values
    np.testing.assert_allclose(default, legacy, rtol=1e-6)  # clean data: the same numbers
    obj = cuts.obj.values.copy()
    seg = cuts.seg.values
    iy, ix = np.nonzero(seg[0])
    obj[0, iy[:5], ix[:5]] = np.nan
    dirty = cuts.assign(obj=(("object", "y", "x"), obj))
    legacy = chi2(models, dirty, mode="legacy").values
    default = chi2(models, dirty).values
    # legacy: F_k over the whole mask, default: over the valid pixels -> object 0 differs
    assert not np.allclose(legacy[0], default[0], rtol=1e-7)
    np.testing.assert_allclose(legacy[1], default[1], rtol=1e-6)
    assert np.isfinite(legacy).all() and np.isfinite(default).all()


def test_all_nan_object_is_nan_row_not_error(models):
    cuts, _ = _cuts(models, n_obj=3)
    obj = cuts.obj.values.copy()
    obj[1] = np.nan
    chi = chi2(models, cuts.assign(obj=(("object", "y", "x"), obj)))
    values = chi.values
    assert np.isnan(values[1]).all() and np.isfinite(values[[0, 2]]).all()
    assert int(chi.npix.values[1]) == 0


def test_cube_enters_graph_once_and_schedulers_agree(models):
    cuts, _ = _cuts(models, n_obj=7)
    lazy_cuts = cuts.chunk({"object": 2})
    lazy_models = models.chunk({"q": 1})  # a lazy, multi-chunk cube is made one chunk
    chi = chi2(lazy_models, lazy_cuts)
    assert chi.data.numblocks[0] == 4  # follows the cuts' chunks
    graph = dict(chi.data.__dask_graph__())
    cube_keys = [k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("_read_only")]
    assert len(cube_keys) == 1  # one cube block, shared by every object task
    with dask.config.set(scheduler="threads", num_workers=2):
        threaded = chi.values
    with dask.config.set(scheduler="synchronous"):
        sync = chi2(models, cuts, objects_per_block=7).values
    np.testing.assert_array_equal(threaded, sync)
    with dask.config.set(scheduler="synchronous"):
        # coords computed with the data share its tasks
        ds = chi.to_dataset().compute()
    assert ds["flux"].dtype == np.float64 and ds["npix"].dtype == np.int64
