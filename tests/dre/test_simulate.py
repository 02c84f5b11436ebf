"""lazyastro.dre.simulate: simulated fields and tiles."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lazyastro.core.errors import ParameterError
from lazyastro.dre.simulate import (
    default_grid,
    psf_stamp,
    sersic_stamp,
    simulate_field,
    write_tiles,
)


def test_field_shapes_truth_and_seed():
    img, psf, truth = simulate_field(shape=(300, 320), n_galaxies=3, n_stars=2, seed=5)
    assert img.dtype == np.float32 and img.shape == (300, 320)
    assert psf.shape == (25, 25) and abs(psf.sum() - 1) < 1e-12 and psf.argmax() == 12 * 25 + 12
    assert len(truth) == 3 + 2 + 3 // 4
    for col in ("id", "x", "y", "flux", "n", "q", "theta", "log_r", "r_e", "is_star", "is_neighbour"):
        assert col in truth.colnames
    again, _, t2 = simulate_field(shape=(300, 320), n_galaxies=3, n_stars=2, seed=5)
    np.testing.assert_array_equal(img, again)
    other, _, _ = simulate_field(shape=(300, 320), n_galaxies=3, n_stars=2, seed=6)
    assert not np.array_equal(img, other)


def test_on_grid_values_and_centres():
    grid = default_grid()
    img, psf, truth = simulate_field(shape=(400, 400), n_galaxies=4, n_stars=0, neighbours=False,
                                     noise=0.0, sky=0.0, gain=0.0, seed=2)
    gal = truth[~truth["is_star"]]
    for row in gal:
        assert row["q"] == pytest.approx(grid["q"][row["q_idx"]])
        assert row["theta"] == pytest.approx(grid["theta"][row["theta_idx"]]) and row["theta"] < 180
        assert row["log_r"] == pytest.approx(grid["log_r"][row["log_r_idx"]])
        assert float(row["x"]).is_integer() and float(row["y"]).is_integer()
        y0, x0 = int(row["y"]) - 1, int(row["x"]) - 1
        patch = img[y0 - 2:y0 + 3, x0 - 2:x0 + 3]
        assert np.unravel_index(patch.argmax(), patch.shape) == (2, 2)  # peak at the 0-based truth pixel
    # noiseless: flux is conserved (stamps truncated at 128 px, galaxies far from the edges)
    assert img.sum() == pytest.approx(gal["flux"].sum(), rel=1e-3)


def test_off_grid_and_stars():
    _, _, truth = simulate_field(shape=(400, 400), n_galaxies=4, n_stars=3, on_grid=False, subpixel=True, seed=1)
    gal = truth[~truth["is_star"] & ~truth["is_neighbour"]]
    assert (gal["q_idx"] == -1).all() and not all(float(x).is_integer() for x in gal["x"])
    assert truth["is_star"].sum() == 3


def test_stamps():
    s = sersic_stamp(4.0, 0.4, 45.0)
    assert s.shape == (128, 128) and abs(s.sum() - 1) < 1e-12
    assert np.unravel_index(s.argmax(), s.shape) == (64, 64)
    # theta = 45 deg: major axis along the x = y diagonal (CCW from +x, y = row)
    assert s[64 + 5, 64 + 5] > s[64 + 5, 64 - 5]
    # half-light radius: the circular profile encloses half the flux within r_e
    c = sersic_stamp(6.0, 1.0, 0.0)
    yy, xx = np.mgrid[:128, :128]
    inside = np.hypot(yy - 64, xx - 64) <= 6.0
    assert 0.42 < c[inside].sum() < 0.55
    g = psf_stamp(3.0, profile="gaussian", size=31)
    half = g[15] / g[15, 15]
    assert 0.4 < half[14] < 0.95 and half[13] < 0.5  # FWHM ~ 3 px
    with pytest.raises(ParameterError):
        psf_stamp(3.0, profile="airy")
    with pytest.raises(ParameterError):
        sersic_stamp(-1.0, 0.5, 0.0)


def test_bad_parameters():
    with pytest.raises(ParameterError, match="too small"):
        simulate_field(shape=(100, 100))
    with pytest.raises(ParameterError, match="cannot place"):
        simulate_field(shape=(200, 200), n_galaxies=30, n_stars=0)
    with pytest.raises(ParameterError):
        simulate_field(shape=(300, 300), n_galaxies=-1)


def test_write_tiles(tmp_path):
    out = write_tiles(tmp_path, n_tiles=2, shape=(256, 256), n_galaxies=1, n_stars=1, gain=2.0, exptime=30.0)
    assert [o["name"] for o in out] == ["tile00", "tile01"]
    with fits.open(out[0]["tile"]) as hdul:
        assert hdul[0].data.dtype == np.dtype(">f4") and hdul[0].header["GAIN"] == 2.0
        assert hdul[0].header["EXPTIME"] == 30.0
        a = hdul[0].data.copy()
    with fits.open(out[1]["tile"]) as hdul:
        assert not np.array_equal(a, hdul[0].data)
    truth = Table.read(out[0]["truth"])
    assert len(truth) == 2 and truth.meta["name"] == "tile00"
    psf = fits.getdata(out[0]["psf"])
    assert abs(psf.sum() - 1) < 1e-5
    assert not list(tmp_path.rglob("*.partial"))
