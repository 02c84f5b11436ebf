"""DRE model cubes: pixel integration accuracy, grid/axes conventions, Zarr and legacy FITS layouts, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from lazyastro.core.errors import FormatError, InputNotFoundError, ParameterError
from lazyastro.dre import models as models_mod
from lazyastro.dre.kernels_models import render_stamps, sersic_b, sersic_total_flux
from lazyastro.dre.models import (
    default_grid,
    default_models,
    make_models,
    open_models,
    write_models,
)

# the hardest models for the integration: the smallest radius, thin ellipses on and off the pixel axes
HARD = [  # n, q, theta, R_e
    (4.0, 0.1, 0.0, 0.25), (4.0, 0.1, 15.0, 0.25), (4.0, 0.1, 45.0, 0.5), (4.0, 0.3, 30.0, 0.25),
    (4.0, 1.0, 0.0, 0.25), (4.0, 0.1, 90.0, 1.0), (4.0, 0.5, 60.0, 3.0), (4.0, 0.1, 30.0, 50.0),
    (1.0, 0.2, 10.0, 0.25), (2.5, 0.4, 75.0, 0.6),
]
FINE = dict(order=5, central_order=7, central_cells=3, levels=12, accuracy=4.0, max_cells=128)


def _stamps(rows, boxsize, **rule):
    n, q, t, r = np.array(rows, dtype=float).T
    return render_stamps(n, q, t, r, boxsize, **rule)


def test_b_n_halves_the_light():
    from scipy.special import gammainc

    n = np.array([0.5, 1.0, 4.0, 8.0])
    b = sersic_b(n)
    np.testing.assert_allclose(gammainc(2 * n, b), 0.5, rtol=1e-12)
    assert abs(b[2] - 7.669) < 1e-3


def test_integration_within_1e3_of_a_much_finer_reference():
    """The 1e-3 claim: sum |pixel - reference| over the stamp <= 1e-3 of the flux, down to R_e = 0.25 px."""
    got = _stamps(HARD, 64)
    ref = _stamps(HARD, 64, **FINE)
    err = np.abs(got - ref).sum(axis=(1, 2))
    assert err.max() < 1e-3, dict(zip(map(tuple, HARD), err.round(6)))
    # the reference itself has converged (a finer one still moves it far less than the tolerance)
    finer = _stamps(HARD[:2], 64, **{**FINE, "accuracy": 8.0, "central_cells": 8})
    assert np.abs(finer - ref[:2]).sum(axis=(1, 2)).max() < 1e-4


def test_total_flux_of_compact_models_is_the_analytic_sersic_flux():
    """Independent of the rule: the un-normalised stamps of compact models integrate the whole profile."""
    rows = [(4.0, 0.1, 0.0, 0.25), (4.0, 0.3, 20.0, 0.25), (4.0, 1.0, 0.0, 0.5), (1.0, 0.5, 40.0, 0.25)]
    raw = _stamps(rows, 128, normalise=False)
    for (n, q, _, r), st in zip(rows, raw):
        assert abs(st.sum() / sersic_total_flux(n, q, r) - 1) < 3e-5


def test_central_pixels_against_adaptive_quadrature():
    """Per-pixel check with scipy's adaptive quadrature (the cusp on a corner of each quadrant)."""
    from scipy.integrate import dblquad

    n, q, th, re = 4.0, 0.5, 30.0, 0.5
    b = float(sersic_b(n))
    c, s = np.cos(np.radians(th)), np.sin(np.radians(th))

    def f(dy, dx):
        xp, yp = dx * c + dy * s, (-dx * s + dy * c) / q
        return np.exp(-b * ((np.hypot(xp, yp) / re) ** (1 / n) - 1))

    raw = render_stamps([n], [q], [th], [re], 16, normalise=False)[0]
    total = sersic_total_flux(n, q, re)
    for dy, dx in [(0, 0), (0, 1), (1, 1), (-1, 0), (1, -2)]:
        if (dy, dx) == (0, 0):
            ref = sum(dblquad(f, x0, x1, y0, y1, epsabs=1e-12, epsrel=1e-10)[0]
                      for x0, x1 in ((-0.5, 0), (0, 0.5)) for y0, y1 in ((-0.5, 0), (0, 0.5)))
        else:
            ref = dblquad(f, dx - 0.5, dx + 0.5, dy - 0.5, dy + 0.5, epsabs=1e-12, epsrel=1e-10)[0]
        assert abs(raw[8 + dy, 8 + dx] - ref) / total < 1e-4, (dy, dx)


def test_make_models_grid_axes_and_blocks():
    m = make_models(n=[1.0, 4.0], q=[0.5, 1.0], theta=[0.0, 45.0, 90.0, 180.0], log_r=[0.3, 0.6], boxsize=32)
    assert m.dims == ("n", "q", "theta", "log_r", "y", "x") and m.dtype == np.float32
    assert m.shape == (2, 2, 4, 2, 32, 32)
    assert m.data.numblocks == (2, 2, 1, 1, 1, 1)  # one task per (n, q) slab by default
    assert m.attrs["centre"] == [16, 16] and m.attrs["boxsize"] == 32
    assert m.q.values.tolist() == [0.5, 1.0]
    v = m.values
    np.testing.assert_allclose(v.sum(axis=(-2, -1)), 1.0, rtol=1e-5)
    c = 16
    for st in v.reshape(-1, 32, 32):
        assert np.unravel_index(st.argmax(), st.shape) == (c, c)
    el = v[1, 0]  # n = 4, q = 0.5
    lr = 1  # R_e = 4 px
    assert el[0, lr, c, c + 4] > el[0, lr, c + 4, c]  # theta = 0: major axis along x (columns)
    assert el[2, lr, c + 4, c] > el[2, lr, c, c + 4]  # theta = 90: along y (rows)
    assert el[1, lr, c + 3, c + 3] > el[1, lr, c - 3, c + 3]  # theta = 45: CCW from +x, y = row index up
    np.testing.assert_allclose(el[0], el[3], atol=1e-7)  # 0 and 180 degrees: the same model
    round_ = v[1, 1, 0, lr]
    np.testing.assert_allclose(round_, round_.T, atol=1e-7)  # q = 1: symmetric
    # blocks do not change the pixels
    one = make_models(n=[1.0, 4.0], q=[0.5, 1.0], theta=[0.0, 45.0, 90.0, 180.0], log_r=[0.3, 0.6], boxsize=32,
                      chunks={"n": -1, "q": -1, "theta": 1})
    assert one.data.numblocks == (1, 1, 4, 1, 1, 1)
    assert np.array_equal(one.values, v)


def test_default_grid_matches_the_legacy_cube():
    g = default_grid()
    assert g["n"].tolist() == [4.0]
    np.testing.assert_allclose(g["q"], np.arange(1, 11) / 10)
    assert g["theta"].tolist() == list(range(0, 181, 15))
    np.testing.assert_allclose(g["log_r"][[0, -1]], np.log10([0.25, 50]))
    np.testing.assert_allclose(np.diff(g["log_r"]), 0.11505, atol=1e-5)
    m = make_models()
    assert m.shape == (1, 10, 13, 21, 128, 128)  # 2730 models, nothing computed


@pytest.mark.parametrize("kwargs", [dict(q=[0.0, 0.5]), dict(q=[1.2]), dict(n=[20]), dict(log_r=[np.nan]),
                                    dict(boxsize=4), dict(theta=[]), dict(chunks={"z": 1}), dict(chunks=3),
                                    dict(oversample=0.5), dict(q="abc")])
def test_make_models_bad_parameters(kwargs):
    with pytest.raises(ParameterError):
        make_models(**kwargs)


def _small(**kw):
    grid = dict(n=[4.0], q=[0.4, 0.7, 1.0], theta=[0.0, 60.0], log_r=[-0.3, 0.2, 0.7], boxsize=16)
    grid.update(kw)
    return make_models(**grid)


def test_zarr_and_legacy_round_trips_are_bit_exact(tmp_path):
    from astropy.io import fits

    m = _small()
    v = m.values
    z = write_models(m, tmp_path / "m.zarr", progress=False)
    leg = write_models(m, tmp_path / "m.fits", layout="legacy", progress=False)
    mz, ml = open_models(z), open_models(leg)
    assert np.array_equal(mz.values, v) and np.array_equal(ml.values, v)
    assert mz.dims == ml.dims == m.dims and mz.dtype == ml.dtype == np.float32
    for d in ("n", "q", "theta", "log_r"):
        assert mz[d].values.tolist() == m[d].values.tolist()
        np.testing.assert_allclose(ml[d].values, m[d].values, rtol=1e-12, atol=1e-12)
    # the on-disk mosaic: (NAXRAT, NPOSANG*B, NLOGH*B), stamp (t, r) at rows t*B.., columns r*B..
    with fits.open(leg) as hdul:
        data, h = hdul[0].data, hdul[0].header
        assert data.dtype == np.dtype(">f4") and data.shape == (3, 2 * 16, 3 * 16)
        assert (h["NAXRAT"], h["NPOSANG"], h["NLOGH"], h["BOXSIZE"], h["NINDEX"]) == (3, 2, 3, 16, 1)
        assert h["DPOSANG"] == 60.0 and h["INDEX0"] == 4.0 and abs(h["AXRAT0"] - 0.4) < 1e-15
        assert np.array_equal(data[1, 16:32, 32:48], v[0, 1, 1, 2])
    # legacy -> zarr -> legacy: identical files
    z2 = write_models(ml, tmp_path / "back.zarr", progress=False)
    leg2 = write_models(open_models(z2), tmp_path / "back.fits", layout="legacy", progress=False)
    assert (tmp_path / "m.fits").read_bytes() == (tmp_path / "back.fits").read_bytes()
    assert np.array_equal(open_models(leg2).values, v)


def test_legacy_layout_with_several_indices_and_without_index_keys(tmp_path):
    from astropy.io import fits

    m = _small(n=[1.0, 2.5, 4.0], q=[1.0], theta=[0.0, 90.0], log_r=[0.0])
    leg = write_models(m, tmp_path / "s.fits", layout="legacy", progress=False)
    assert fits.getdata(leg).shape == (3, 1, 2 * 16, 16)
    back = open_models(leg)
    np.testing.assert_allclose(back.n.values, [1.0, 2.5, 4.0])
    assert np.array_equal(back.values, m.values)
    # a legacy cube as the legacy tool ships it: no NINDEX keys -> De Vaucouleurs
    b = 8
    rng = np.random.default_rng(0)
    mosaic = rng.random((2, 3 * b, 4 * b)).astype(np.float32)
    hdr = fits.Header()
    for k, v in dict(NAXRAT=2, DAXRAT=0.5, AXRAT0=0.5, NPOSANG=3, DPOSANG=15.0, POSANG0=0.0, NLOGH=4,
                     DLOGH=0.25, LOGH0=-0.5, BOXSIZE=b).items():
        hdr[k] = v
    fits.PrimaryHDU(mosaic, hdr).writeto(tmp_path / "legacy.fits")
    cube = open_models(tmp_path / "legacy.fits")
    assert cube.shape == (1, 2, 3, 4, b, b) and cube.n.values.tolist() == [4.0]
    assert cube.theta.values.tolist() == [0.0, 15.0, 30.0] and cube.log_r.values.tolist() == [-0.5, -0.25, 0.0, 0.25]
    assert np.array_equal(cube.values[0, 1, 2, 3], mosaic[1, 2 * b:3 * b, 3 * b:4 * b])
    assert np.array_equal(cube.values[0, 0, 1, 0], mosaic[0, b:2 * b, 0:b])


def test_bad_cube_files(tmp_path):
    from astropy.io import fits

    with pytest.raises(InputNotFoundError):
        open_models(tmp_path / "nope.fits")
    hdr = fits.Header()
    for k, v in dict(NAXRAT=2, DAXRAT=0.5, AXRAT0=0.5, NPOSANG=3, DPOSANG=15.0, POSANG0=0.0, BOXSIZE=8).items():
        hdr[k] = v
    fits.PrimaryHDU(np.zeros((2, 24, 32), "f4"), hdr).writeto(tmp_path / "nokey.fits")
    with pytest.raises(FormatError, match=r"nokey\.fits: header key NLOGH missing"):
        open_models(tmp_path / "nokey.fits")
    hdr["NLOGH"], hdr["DLOGH"], hdr["LOGH0"] = 5, 0.1, 0.0
    fits.PrimaryHDU(np.zeros((2, 24, 32), "f4"), hdr).writeto(tmp_path / "shape.fits")
    with pytest.raises(FormatError, match=r"shape\.fits: data shape \(2, 24, 32\) does not match"):
        open_models(tmp_path / "shape.fits")
    import lazyastro

    lazyastro.to_zarr(np.zeros((2, 3), "f4"), tmp_path / "other.zarr", progress=False)
    with pytest.raises(FormatError, match="other.zarr: not a model cube"):
        open_models(tmp_path / "other.zarr")
    m = _small(log_r=[0.0, 0.1, 0.5])
    with pytest.raises(ParameterError, match="evenly spaced log_r"):
        write_models(m, tmp_path / "uneven.fits", layout="legacy")
    write_models(m, tmp_path / "uneven.zarr", progress=False)  # any grid in Zarr
    with pytest.raises(ParameterError):
        write_models(m, tmp_path / "x.h5", layout="hdf5")
    with pytest.raises(ParameterError):
        write_models(m.values, tmp_path / "x.zarr")


def test_open_and_write_models_under_each_scheduler(tmp_path, scheduler):
    """The reading graphs (legacy mosaic reshaped, Zarr) and the writer on every scheduler."""
    m = _small(q=[0.5, 1.0], theta=[0.0, 30.0], log_r=[0.0, 0.3])
    v = m.values
    leg = write_models(m, tmp_path / "m.fits", layout="legacy", progress=False, scheduler="sync")
    out = write_models(open_models(leg), tmp_path / "m.zarr", scheduler=scheduler, progress=False)
    back = write_models(open_models(out), tmp_path / "b.fits", layout="legacy", scheduler=scheduler,
                        progress=False)
    assert np.array_equal(open_models(back).values, v)


def test_default_models_builds_once_into_the_cache(tmp_path, monkeypatch):
    tiny = dict(n=np.array([4.0]), q=np.array([0.5, 1.0]), theta=np.array([0.0]), log_r=np.array([0.0]))
    monkeypatch.setattr(models_mod, "default_grid", lambda: tiny)
    monkeypatch.setenv("LAZYASTRO_CACHE", str(tmp_path / "cache"))
    path = default_models(progress=False)
    assert path.startswith(str(tmp_path / "cache" / "dre")) and path.endswith(".zarr")
    stamp = (tmp_path / "cache" / "dre").stat().st_mtime_ns, sorted(p.name for p in (tmp_path / "cache" / "dre").iterdir())
    assert default_models(progress=False) == path  # found, not rebuilt
    assert stamp[1] == sorted(p.name for p in (tmp_path / "cache" / "dre").iterdir())
    cube = open_models(path)
    assert cube.shape == (1, 2, 1, 1, 128, 128)
    other = default_models(cache_dir=tmp_path / "elsewhere", progress=False)
    assert other.startswith(str(tmp_path / "elsewhere"))


def test_cli_models(tmp_path, capsys):
    from lazyastro.cli.main import main

    out = tmp_path / "c.fits"
    assert main(["--no-progress", "dre", "models", str(out), "--q", "0.5,1", "--theta", "0:90:2",
                 "--log-r=-0.5:0.5:3", "--boxsize", "16", "--layout", "legacy"]) == 0
    assert "12 models" in capsys.readouterr().out
    cube = open_models(out)
    assert cube.shape == (1, 2, 2, 3, 16, 16)
    np.testing.assert_allclose(cube.log_r.values, [-0.5, 0.0, 0.5])
    ref = make_models(q=[0.5, 1], theta=[0.0, 90.0], log_r=[-0.5, 0.0, 0.5], boxsize=16).values
    assert np.array_equal(cube.values, ref)
    assert main(["--no-progress", "dre", "models", str(tmp_path / "x.zarr"), "--q", "0:1:3"]) == 1
    assert "q (axis ratio) must lie in (0, 1]" in capsys.readouterr().err
    assert main(["--no-progress", "dre", "models", str(tmp_path / "x.zarr"), "--theta", "1:2"]) == 1
    assert "--theta: expected START:STOP:COUNT" in capsys.readouterr().err
    assert main(["--no-progress", "dre", "models", str(out), "--q", "1", "--layout", "legacy"]) == 1
    assert "already exists" in capsys.readouterr().err
