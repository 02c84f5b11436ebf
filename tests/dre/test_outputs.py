"""DRE outputs: legacy chi HDF5, chi Zarr through the engine, the joined summary, mosaics."""

from __future__ import annotations

import time

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits
from astropy.table import Table

from lazyastro.core.errors import FormatError, InputNotFoundError, ParameterError
from lazyastro.dre import outputs


def _chi(n_obj=5, block=2, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n_obj, 1, 3, 4, 6)
    data = rng.uniform(0.5, 3.0, shape).astype("float32")
    coords = {"n": [4.0], "q": [0.4, 0.7, 1.0], "theta": [0.0, 45.0, 90.0, 135.0],
              "log_r": np.linspace(-0.2, 1.2, 6),
              "object": [outputs.object_key(1, i + 1) for i in range(n_obj)],
              "ext_number": ("object", np.ones(n_obj, int)), "number": ("object", np.arange(1, n_obj + 1))}
    return xr.DataArray(da.from_array(data, chunks=(block, -1, -1, -1, -1)), dims=("object", "n", "q", "theta", "log_r"),
                        coords=coords, name="chi2"), data


@pytest.mark.parametrize("level,filt", [("none", None), ("low", "lzf"), ("medium", "gzip"), ("high", "gzip")])
def test_chi_h5_legacy_layout_and_compression(tmp_path, level, filt):
    _, data = _chi()
    path = tmp_path / "Chi" / "t_chi.h5"
    path.parent.mkdir()
    path.write_bytes(b"old junk")  # replaced, not appended to
    keys = [outputs.object_key(1, i + 1) for i in range(len(data))]
    outputs.write_chi_h5(path, zip(keys, data), compression=level)
    with h5py.File(path, "r") as f:
        assert sorted(f) == keys
        ds = f["01_0003"]
        assert ds.shape == (1, 3, 4, 6) and ds.dtype == np.float32 and ds.compression == filt
        if level == "high":
            assert ds.compression_opts == 9
        np.testing.assert_array_equal(ds[()], data[2])
    assert not (tmp_path / "Chi" / "t_chi.h5.partial").exists()


def test_chi_h5_bytes_do_not_depend_on_the_time_of_writing(tmp_path, h5py_track_order):
    _, data = _chi(n_obj=3)
    keys = [outputs.object_key(1, i + 1) for i in range(len(data))]
    outputs.write_chi_h5(tmp_path / "a_chi.h5", zip(keys, data))
    time.sleep(1.1)  # HDF5 object times have a resolution of one second
    outputs.write_chi_h5(tmp_path / "b_chi.h5", zip(keys, data))
    assert (tmp_path / "a_chi.h5").read_bytes() == (tmp_path / "b_chi.h5").read_bytes()


def test_chi_h5_bad_level_and_failure_leaves_old_file(tmp_path):
    path = tmp_path / "c.h5"
    with pytest.raises(ParameterError, match="compression"):
        outputs.write_chi_h5(path, [], compression="max")
    outputs.write_chi_h5(path, [("00_0001", np.ones((1, 1, 1, 2)))])
    with pytest.raises(ParameterError, match="4 axes"):
        outputs.write_chi_h5(path, [("00_0002", np.ones((2, 2)))])
    assert sorted(outputs.read_chi_h5(path)) == ["00_0001"]
    assert not (tmp_path / "c.h5.partial").exists()


def test_chi_zarr_roundtrip_and_token(tmp_path):
    chi, data = _chi()
    path = tmp_path / "t_chi.zarr"
    outputs.write_chi_zarr(chi, path, token="abc", scheduler="sync", progress=False)
    back = outputs.open_chi(path)
    assert back.dims == ("object", "n", "q", "theta", "log_r")
    np.testing.assert_array_equal(back.values, data)
    assert list(back.object.values) == list(chi.object.values)
    np.testing.assert_allclose(back.log_r.values, chi.log_r.values)
    assert list(back.number.values) == [1, 2, 3, 4, 5]
    assert outputs.chi_zarr_token(path) == "abc"
    with pytest.raises(InputNotFoundError):
        outputs.open_chi(tmp_path / "none.zarr")


def _catalog(path, numbers, ext=None, hdus=1, vignet=True):
    cols = []
    hdul = [fits.PrimaryHDU()]
    for h in range(hdus):
        num = np.asarray(numbers)
        cols = [fits.Column("NUMBER", "J", array=num),
                fits.Column("X_IMAGE", "E", array=num * 10.0 + h),
                fits.Column("FLUX_AUTO", "E", array=num * 100.0)]
        if ext is not None:
            cols.append(fits.Column("EXT_NUMBER", "J", array=np.full(len(num), h + 1)))
        if vignet:
            cols.append(fits.Column("VIGNET", "25E", dim="(5,5)", array=np.zeros((len(num), 5, 5))))
        hdul.append(fits.BinTableHDU.from_columns(cols, name="LDAC_OBJECTS"))
    fits.HDUList(hdul).writeto(path)
    return path


def test_catalog_stacking_and_inner_join(tmp_path):
    cat = outputs.read_catalog(_catalog(tmp_path / "a_cat.fits", [1, 2, 3], ext=True, hdus=2))
    assert len(cat) == 6 and "VIGNET" not in cat.colnames
    ds = xr.Dataset({"EXT_NUMBER": ("object", [2, 1, 1, 9]), "NUMBER": ("object", [3, 1, 2, 1]),
                     "CHI": ("object", [1.0, 2.0, np.nan, 3.0]),
                     "MODEL_IDX": (("object", "axis"), np.arange(16).reshape(4, 4)),
                     "FLAG_ALL_NAN": ("object", [False, False, True, False])})
    summary = outputs.summary_table(ds)
    assert list(summary["ROW"]) == [0, 1, 2] and summary["MODEL_IDX"].shape == (3, 4)
    joined = outputs.join_catalog(summary, cat)
    # (9, 1) is not in the catalogue, (1, 2) failed: two rows, sorted by the keys
    assert [(r["EXT_NUMBER"], r["NUMBER"]) for r in joined] == [(1, 1), (2, 3)]
    assert list(joined["X_IMAGE"]) == [10.0, 31.0]
    out = outputs.write_summary(joined, tmp_path / "Summary" / "a_dre.fits")
    back = Table.read(out)
    assert back.colnames[:3] == ["ROW", "EXT_NUMBER", "NUMBER"] and len(back) == 2


def test_catalog_without_ext_number_gets_zero(tmp_path):
    cat = outputs.read_catalog(_catalog(tmp_path / "b_cat.fits", [4, 5], vignet=False))
    assert list(cat["EXT_NUMBER"]) == [0, 0]
    assert outputs.find_catalog(tmp_path, "b") == tmp_path / "b_cat.fits"
    assert outputs.find_catalog(tmp_path, "zz") is None


def test_catalog_errors(tmp_path):
    with pytest.raises(InputNotFoundError):
        outputs.read_catalog(tmp_path / "none.fits")
    with pytest.raises(FormatError, match="empty"):
        outputs.read_catalog(_catalog(tmp_path / "e_cat.fits", []))
    p = tmp_path / "n_cat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("X_IMAGE", "E", array=[1.0])], name="LDAC_OBJECTS")]).writeto(p)
    with pytest.raises(FormatError, match=r"n_cat.fits: .*NUMBER"):
        outputs.read_catalog(p)
    fits.PrimaryHDU(np.zeros((2, 2))).writeto(tmp_path / "img.fits")
    with pytest.raises(FormatError, match="LDAC_OBJECTS"):
        outputs.read_catalog(tmp_path / "img.fits")


def test_summary_unjoined_warns():
    t = Table({"ROW": [0], "EXT_NUMBER": [0], "NUMBER": [1]})
    with pytest.warns(UserWarning, match="unjoined"):
        assert outputs.summary_with_catalog(t, None, tile="t") is t


def test_mosaic_panels_and_orientations(tmp_path):
    b = 16
    yy, xx = np.mgrid[:b, :b]
    model = np.exp(-((xx - 8) ** 2 / 8.0 + (yy - 8) ** 2 / 2.0))  # elongated along x
    obj = 5.0 * model
    obj[2, 12] = 7.0  # an asymmetric marker
    mask = model > 0.01
    panels = outputs.mosaic_panels(obj, mask, model)
    flux = obj[mask].sum()
    np.testing.assert_allclose(panels[1][mask], flux / mask.sum(), rtol=1e-6)
    np.testing.assert_allclose(panels[2][mask].sum(), flux, rtol=1e-5)
    np.testing.assert_allclose(panels[3], obj - panels[2], atol=1e-5)
    cut = outputs.mosaic_image(panels)
    legacy = outputs.mosaic_image(panels, orientation="legacy")
    assert cut.shape == legacy.shape == (b, 4 * b)
    np.testing.assert_array_equal(cut[:, :b], panels[0])
    np.testing.assert_array_equal(legacy[:, :b], panels[0].T)
    np.testing.assert_array_equal(legacy, panels.reshape(4 * b, b).T)
    with pytest.raises(ParameterError):
        outputs.mosaic_image(panels, orientation="sideways")
    paths = outputs.write_mosaic(tmp_path / "Mosaics", "tile", "00_0001", obj, mask, model)
    assert paths[0].endswith("Mosaics/tile/tile_00_0001_mosaic.fits")
    with fits.open(paths[0]) as hdul:
        assert hdul[0].data is None and hdul[1].data.shape == (b, 4 * b)
    assert open(paths[1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
