"""Lazy wiring of the GAN statistics over (image, y, x)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from lazyastro import gan
from lazyastro.core.errors import ParameterError
from lazyastro.gan import kernels as K


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    arr = rng.lognormal(size=(5, 16, 16))
    return arr, xr.DataArray(da.from_array(arr, chunks=(2, 8, 16)), dims=("image", "y", "x"))


def test_lazy_power_spectrum(images):
    arr, lazy = images
    for mode in ("legacy", "default"):
        ps = gan.power_spectrum(lazy, mode=mode)
        assert ps.dims == ("image", "k") and ps.chunks[0] == (2, 2, 1)
        np.testing.assert_array_equal(ps.values, K.power_spectrum(arr, mode=mode))
    rect = xr.DataArray(da.ones((2, 8, 6)), dims=("image", "y", "x"))
    assert gan.power_spectrum(rect).shape == (2, 4)
    with pytest.raises(ParameterError, match="square"):
        gan.power_spectrum(rect, mode="legacy")


def test_lazy_minkowski(images, scheduler):
    arr, lazy = images
    ts = np.linspace(0, 3, 7)
    mf = gan.minkowski(lazy, ts, convention="legacy")
    assert mf.dims == ("image", "functional", "threshold")
    assert mf.functional.values.tolist() == ["F", "U", "chi"]
    import dask

    with dask.config.set(scheduler=scheduler if "://" not in scheduler else "sync"):
        got = mf.values
    for i in range(5):
        np.testing.assert_array_equal(got[i], K.minkowski(arr[i], ts, convention="legacy"))
    assert gan.minkowski(lazy).shape == (5, 3, 100)


def test_lazy_histogram_per_batch(images):
    arr, lazy = images
    ds = gan.intensity_histogram(lazy)
    assert ds.counts.dims == ("batch", "bin") and ds.counts.shape == (3, 100)
    ref = K.intensity_histogram(arr[:2]).counts
    np.testing.assert_array_equal(ds.counts.values[0], ref)
    assert int(ds.dropped.sel(reason="total").sum()) == arr.size
    np.testing.assert_array_equal(ds.counts.values.sum(0), K.intensity_histogram(arr).counts)


def test_empty_and_bad_sets():
    with pytest.raises(ParameterError, match="empty"):
        gan.power_spectrum(xr.DataArray(da.zeros((0, 4, 4)), dims=("image", "y", "x")))
    with pytest.raises(ParameterError, match="3-D"):
        gan.minkowski(xr.DataArray(da.zeros((4, 4)), dims=("y", "x")), [0.5])
