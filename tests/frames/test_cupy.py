"""Frames and synthetic kernels, and lazy frames graphs, on CuPy blocks against numpy.

Skipped without CuPy or without a GPU. ``benchmarks/gpu_check.sh`` runs this module (and the
skipper one) on a GPU machine and times the frames statistics on CuPy-backed series.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

cp = pytest.importorskip("cupy")

import lazyastro  # noqa: E402
import lazyastro.frames as lf  # noqa: E402
from lazyastro.core.backend import array_namespace, has_cupy, is_cupy, to_device, to_numpy  # noqa: E402
from lazyastro.frames import kernels  # noqa: E402
from lazyastro.synthetic import deep_field_series  # noqa: E402
from lazyastro.synthetic import kernels as skernels  # noqa: E402

pytestmark = pytest.mark.skipif(not has_cupy(), reason="CuPy is installed but sees no GPU")


def _compare(gpu, cpu, *, exact: bool):
    """``gpu`` (CuPy, possibly nested in lists/tuples) equals ``cpu`` (numpy): type, dtype, values."""
    if isinstance(cpu, list | tuple):
        assert isinstance(gpu, list | tuple) and len(gpu) == len(cpu)
        for g, c in zip(gpu, cpu):
            _compare(g, c, exact=exact)
        return
    assert isinstance(gpu, cp.ndarray), f"expected a CuPy array, got {type(gpu)}"
    assert gpu.dtype == cpu.dtype and gpu.shape == cpu.shape
    host = cp.asnumpy(gpu)
    if exact or cpu.dtype.kind in "uib":
        np.testing.assert_array_equal(host, cpu)
    else:
        np.testing.assert_allclose(host, cpu, rtol=1e-5, atol=1e-6, equal_nan=True)


def _data():
    rng = np.random.default_rng(11)
    u2 = rng.integers(0, 4000, (9, 6, 7)).astype(np.uint16)
    f4 = rng.normal(100, 10, (9, 6, 7)).astype(np.float32)
    f4[3, 2, 2] = np.nan
    f4[:, 0, 0] = np.nan  # an all-NaN pixel
    return u2, f4


# name -> (function of a converter ``a`` (numpy identity or cupy.asarray), results exact?)
def _frames_cases():
    u2, f4 = _data()
    dark_f = np.full(u2.shape[1:], 0.5, np.float32)
    return {
        "densify": (lambda a: kernels.densify((3, 4), "u2", a(np.array([0, 2])), a(np.array([1, 3])),
                                              a(np.array([5, 7], "u2"))), True),
        "sparsify": (lambda a: kernels.sparsify(a(u2[0]), 2000), True),
        "subtract_dark": (lambda a: [kernels.subtract_dark(a(u2), a(u2[4])),
                                     kernels.subtract_dark(a(u2), a(dark_f))], True),
        "flip": (lambda a: [kernels.flip(a(u2), c) for c in kernels.FLIP_CODES], True),
        "fold_sum_float32": (lambda a: kernels.fold_sum_float32(kernels.fold_sum_float32(None, a(u2[:4])),
                                                                a(u2[4:])), True),
        "fold_step": (lambda a: [kernels.fold_step(k, kernels.fold_step(k, None, a(b[:4]), d), a(b[4:]), d)
                                 for k in kernels.FOLDS
                                 for b, d in ((u2, kernels.sum_dtype(u2.dtype, 9)), (f4, None))], False),
        "fold_finish": (lambda a: [kernels.fold_finish("max", a(u2[0].copy()), a(u2[1])),
                                   kernels.fold_finish("nanmin", a(f4[0].copy()), a(f4[1])),
                                   kernels.fold_finish("sum", a(u2[0].astype("f8")), a(u2[1].astype("f8")),
                                                       divide=3, dtype="f4")], False),
        "running_combine": (lambda a: [kernels.running_combine(s, kernels.running_combine(s, None, a(u2[0])),
                                                               a(u2[1])) for s in ("max", "min", "sum")], True),
        "band_percentile": (lambda a: [kernels.band_percentile([5, 50, 99.5], a(u2[:2]), a(u2[2:5]), a(u2[5:])),
                                       kernels.band_percentile(50, a(u2)),
                                       kernels.band_percentile(50, a(u2), method="nearest"),
                                       kernels.band_percentile([1, 50], a(f4), nan=True),
                                       kernels.band_percentile(25, a(f4[:, 1:]), dtype="f8")], False),
        "cast_checked": (lambda a: kernels.cast_checked(a(u2.astype("f8")), "u2"), True),
    }


def _frames_kernels():
    names = [n for n in kernels.__all__ if callable(getattr(kernels, n)) and n not in ("chunk_stops", "sum_dtype")]
    return sorted(names)


def test_every_frames_kernel_has_a_case():
    assert set(_frames_cases()) == set(_frames_kernels())


@pytest.mark.parametrize("name", _frames_kernels())
def test_frames_kernel_on_cupy_matches_numpy(name):
    func, exact = _frames_cases()[name]
    cpu = func(np.asarray)
    gpu = func(cp.asarray)
    _compare(gpu, cpu, exact=exact)


def test_cast_checked_refuses_truncation_on_cupy():
    with pytest.raises(ValueError, match="truncate"):
        kernels.cast_checked(cp.asarray([1.5]), "u1")


def test_synthetic_kernels_on_cupy_match_numpy():
    cat = skernels.source_catalogue(96, 80, seed=5)
    _compare(skernels.render_scene(cp.asarray(cat), 10, 70, 5, 80), skernels.render_scene(cat, 10, 70, 5, 80),
             exact=False)
    kw = {"shape": (4, 96, 80), "seed": 5}
    cpu = skernels.render_frames(cat, [1, 3], 0, 96, 0, 80, **kw)
    gpu = skernels.render_frames(cp.asarray(cat), [1, 3], 0, 96, 0, 80, **kw)
    _compare(gpu, cpu, exact=False)


def test_synthetic_series_with_cupy_blocks():
    s = deep_field_series(3, 96, 80, seed=2, chunks=(1, 40, 80), like=cp.empty(0))
    assert is_cupy(s.data) and array_namespace(s.data) is cp
    ref = deep_field_series(3, 96, 80, seed=2, chunks=(3, 96, 80)).values
    _compare(s.data.compute(), ref, exact=False)


# ---- lazy graphs: a CuPy-backed series stays CuPy end to end ---------------------------------

@pytest.fixture(params=["u2", "f4"])
def pair(request):
    """A numpy-backed series and the same series moved to the GPU (several blocks per axis)."""
    u2, f4 = _data()
    host = np.concatenate([u2, u2[::-1]], axis=0) if request.param == "u2" else np.concatenate([f4, f4 + 1])
    s = lf.as_series(xr.DataArray(da.from_array(host, chunks=(5, 4, 7)), dims=("frame", "y", "x")))
    g = to_device(s, "gpu")
    assert is_cupy(g.data)
    return s, g


STATS = {
    "max": lf.max, "min": lf.min, "sum": lf.sum, "mean": lf.mean, "std": lf.std,
    "median": lf.median, "percentile": lambda s: lf.percentile(s, [5, 50, 99]),
    "nanmax": lf.nanmax, "nanmin": lf.nanmin, "nansum": lf.nansum, "nanmean": lf.nanmean,
    "nanmedian": lf.nanmedian, "legacy_mean": lambda s: lf.mean(s, legacy=True),
}


@pytest.mark.parametrize("stat", sorted(STATS))
def test_frames_statistic_on_cupy_series_matches_numpy(pair, stat):
    s, g = pair
    if stat.startswith("nan") and s.dtype.kind != "f":
        pytest.skip("nan statistics are for float series")
    cpu = STATS[stat](s).values
    lazy = STATS[stat](g)
    assert is_cupy(lazy.data), f"{stat} lost the CuPy meta: {type(lazy.data._meta)}"
    (gpu,) = lazyastro.compute(lazy.data, scheduler="threads", progress=False)
    _compare(gpu, cpu, exact=stat in ("max", "min", "nanmax", "nanmin", "median", "nanmedian"))


@pytest.mark.parametrize("op", [("flip", "r90"), ("flip", "v"), ("rectangle", ((1, 5), (2, 6))), ("dark", None)])
def test_frames_ops_on_cupy_series(pair, op):
    s, g = pair
    name, arg = op
    if name == "dark":
        arg = (to_numpy(s[0].values) * 0.5).astype(s.dtype)
    cpu = lf.process(s, [(name, arg)]).values
    lazy = lf.process(g, [(name, arg)])
    assert is_cupy(lazy.data)
    _compare(lazy.data.compute(), cpu, exact=True)


def test_writers_take_cupy_blocks(pair, tmp_path):
    s, g = pair
    cpu = lf.max(s).values
    lazyastro.to_fits(lf.max(g), tmp_path / "max.fits", progress=False)
    lazyastro.to_zarr(lf.max(g), tmp_path / "max.zarr", progress=False)
    np.testing.assert_array_equal(lazyastro.open(tmp_path / "max.fits").values, cpu)
    np.testing.assert_array_equal(lazyastro.open(tmp_path / "max.zarr").values, cpu)


def test_to_device_round_trip(pair):
    s, g = pair
    back = to_device(g, "cpu")
    assert not is_cupy(back.data)
    np.testing.assert_array_equal(back.values, s.values)
