"""DRE convolution of model cubes with a PSF: fftconvolve 'same' semantics, even PSFs, flux, PSF checks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.signal import fftconvolve

from lazyastro.core.errors import ParameterError
from lazyastro.dre.convolution import clean_psf, convolve, convolve_stamps
from lazyastro.dre.models import make_models

B = 24


def _cube(rng, shape=(2, 3, 2, 2)):
    import dask.array as da

    data = rng.random(shape + (B, B)).astype(np.float32)
    coords = {d: np.arange(s, dtype=float) for d, s in zip(("n", "q", "theta", "log_r"), shape)}
    return xr.DataArray(da.from_array(data, chunks=(1, 1, -1, -1, -1, -1)),
                        dims=("n", "q", "theta", "log_r", "y", "x"), coords=coords, name="models")


@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (1, 1), (31, 29)])
def test_matches_fftconvolve_same_for_odd_psfs(rng, shape):
    cube = _cube(rng)
    psf = rng.random(shape)
    out = convolve(cube, psf)
    assert out.dims == cube.dims and out.dtype == np.float32 and out.chunks == cube.chunks
    assert out.q.values.tolist() == cube.q.values.tolist()
    got = out.values
    norm = psf / psf.sum()
    v = cube.values.astype(np.float64)
    for idx in np.ndindex(v.shape[:4]):
        ref = fftconvolve(v[idx], norm, mode="same")
        np.testing.assert_allclose(got[idx], ref, atol=2e-6 * ref.max())
    assert np.array_equal(convolve(cube, psf, legacy=True).values, got)  # odd: legacy is the same
    assert out.attrs["psf_sum_sq"] == pytest.approx(float((norm ** 2).sum()))


@pytest.mark.parametrize("shape", [(4, 4), (6, 5), (8, 2)])
def test_even_psf_keeps_the_centre_and_legacy_shifts_by_one_pixel(rng, shape):
    """A PSF peaked at index P//2: default keeps the model's centroid, legacy moves it +1 px per even axis."""
    py, px = shape
    yy, xx = np.mgrid[:py, :px]
    psf = np.exp(-((yy - py // 2) ** 2 + (xx - px // 2) ** 2) / 1.5)  # symmetric about (P//2, P//2)
    psf[0, :] = 0 if py % 2 == 0 else psf[0, :]  # even axis: the extra row makes it exactly symmetric
    psf[:, 0] = 0 if px % 2 == 0 else psf[:, 0]
    stamp = np.zeros((1, 1, 1, 1, B, B), np.float32)
    stamp[..., 12, 12] = 1.0  # a point at the model centre B//2
    cube = xr.DataArray(stamp, dims=("n", "q", "theta", "log_r", "y", "x"),
                        coords={d: [1.0] for d in ("n", "q", "theta", "log_r")})

    def centroid(img):
        img = img.reshape(B, B).astype(np.float64)
        y, x = np.mgrid[:B, :B]
        return (img * y).sum() / img.sum(), (img * x).sum() / img.sum()

    default = convolve(cube, psf).values
    legacy = convolve(cube, psf, legacy=True).values
    np.testing.assert_allclose(centroid(default), (12, 12), atol=1e-5)
    np.testing.assert_allclose(centroid(legacy), (12 + (py % 2 == 0), 12 + (px % 2 == 0)), atol=1e-5)
    ref = fftconvolve(stamp.reshape(B, B).astype(float), psf / psf.sum(), mode="same")
    np.testing.assert_allclose(legacy.reshape(B, B), ref, atol=1e-6)  # legacy = fftconvolve 'same'
    # on a real model: the default result is the legacy one shifted back by one pixel
    m = make_models(q=[0.6], theta=[30.0], log_r=[0.3], boxsize=B)
    d, lg = convolve(m, psf).values[0, 0, 0, 0], convolve(m, psf, legacy=True).values[0, 0, 0, 0]
    sy, sx = int(py % 2 == 0), int(px % 2 == 0)
    np.testing.assert_allclose(lg[sy:, sx:], d[:B - sy, :B - sx], atol=1e-7)


def test_flux_is_conserved_and_psf_is_cleaned():
    m = make_models(q=[0.3, 1.0], theta=[0.0, 50.0], log_r=[-0.6, -0.3], boxsize=48)  # compact: no light lost
    yy, xx = np.mgrid[:11, :11]
    psf = np.exp(-((yy - 5) ** 2 + (xx - 5) ** 2) / 4.0) * 7.0
    psf[0, 0] = -0.5  # negatives clipped (legacy get_psf clean), then normalised
    out = convolve(m, psf)
    assert np.all(out.values.sum(axis=(-2, -1)) <= 1 + 1e-6)  # only the light spread past the edge is lost
    # stamps with no light within the PSF half-width of the edge keep all of it
    inner = m.values.copy()
    inner[..., :6, :] = inner[..., -6:, :] = inner[..., :, :6] = inner[..., :, -6:] = 0
    inner /= inner.sum(axis=(-2, -1), keepdims=True)
    kept = convolve(m.copy(data=inner), psf).values
    np.testing.assert_allclose(kept.sum(axis=(-2, -1)), 1.0, atol=2e-6)
    clean = clean_psf(psf)
    assert clean.min() == 0 and clean.sum() == pytest.approx(1.0)
    assert out.attrs["psf_sum_sq"] == pytest.approx(float((clean ** 2).sum()))
    np.testing.assert_allclose(out.values, convolve(m, clean).values, rtol=1e-6, atol=1e-12)  # idempotent


@pytest.mark.parametrize("psf, match", [
    (np.ones((3, 3, 3)), "2-D"), (np.ones((0, 3)), "2-D"), (np.full((3, 3), np.nan), "non-finite"),
    (-np.ones((3, 3)), "no positive pixel"), (np.zeros((5, 5)), "no positive pixel"), ("abc", "2-D|numbers"),
])
def test_bad_psf(psf, match):
    m = make_models(q=[1.0], theta=[0.0], log_r=[0.0], boxsize=16)
    with pytest.raises(ParameterError, match=match):
        convolve(m, psf)


def test_bad_models_and_kernel_on_plain_arrays(rng):
    with pytest.raises(ParameterError, match="DataArray"):
        convolve(np.zeros((4, 4)), np.ones((3, 3)))
    st = rng.random((5, B, B))
    psf = clean_psf(rng.random((5, 5)))
    out = convolve_stamps(st, psf)
    assert out.shape == st.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[3], fftconvolve(st[3], psf, mode="same"), atol=1e-5)


def test_cupy_blocks_stay_on_the_gpu():
    cp = pytest.importorskip("cupy")
    from lazyastro.core.backend import has_cupy

    if not has_cupy():
        pytest.skip("no GPU")
    m = make_models(q=[0.5], theta=[0.0], log_r=[0.0], boxsize=32)
    gpu = m.copy(data=m.data.map_blocks(cp.asarray))
    psf = np.ones((4, 4))
    out = convolve(gpu, psf)
    block = out.data.blocks[0, 0].compute()
    assert type(block).__module__.startswith("cupy")
    np.testing.assert_allclose(cp.asnumpy(out.values), convolve(m, psf).values, atol=1e-6)
