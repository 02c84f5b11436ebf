import dask.array as da
import numpy as np
import pytest
from astropy.io import fits

import lazyastro
from lazyastro import skipper
from lazyastro.core.errors import FormatError, InputNotFoundError, ParameterError
from lazyastro.skipper.io import skipper_chunks, sniff_skipper


def _raw(path):
    return fits.getdata(path)


def test_layout_round_trip(sim_dir):
    d, truth = sim_dir
    path = d / "Img_02.fits"
    raw = _raw(path)
    cube = skipper.open(path)
    assert cube.dims == ("row", "col", "skip")
    assert cube.shape == (12, 15, 25) and cube.attrs["nskips"] == 25
    assert cube.dtype == np.uint16  # BZERO = 32768 applied
    ref = np.stack([raw[:, s::25] for s in range(25)], axis=-1)  # raw column k = c * nskips + s
    np.testing.assert_array_equal(cube.values, ref)
    odd = skipper.open(path, chunks={"row": 5, "skip": 4})
    assert odd.data.chunks[2][0] == 4 and odd.data.chunks[0][0] == 5
    np.testing.assert_array_equal(odd.values, ref)
    np.testing.assert_allclose(skipper.average(cube).values, ref.mean(axis=2))
    np.testing.assert_allclose(skipper.average(cube, skip_offset=2).values, ref[:, :, 2:].mean(axis=2))


@pytest.mark.parametrize("dtype", ["int16", "int32", "float32"])
def test_dtypes(tmp_path, dtype):
    truth = skipper.simulate(tmp_path / "a.fits", nrows=4, ncols=5, nskips=3, dtype=dtype, seed=4)
    raw = _raw(truth["path"]).astype(np.float64)
    cube = skipper.open(truth["path"])
    np.testing.assert_array_equal(cube.values.astype(np.float64), raw.reshape(4, 5, 3))


def test_bscale_bzero(tmp_path):
    data = np.arange(2 * 6, dtype=np.int16).reshape(2, 6)
    hdu = fits.PrimaryHDU(data)
    hdu.header["NDCMS"] = 3
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 10.0
    hdu.writeto(tmp_path / "s.fits")
    cube = skipper.open(tmp_path / "s.fits")
    np.testing.assert_allclose(cube.values, (data * 2.0 + 10).reshape(2, 2, 3))


def test_missing_ndcms_means_one_skip(sim_dir):
    d, _ = sim_dir
    cube = skipper.open(d / "Img_03.fits")
    assert cube.sizes["skip"] == 1 and cube.attrs["nskips"] == 1


def test_width_not_divisible(tmp_path):
    hdu = fits.PrimaryHDU(np.zeros((3, 10), np.int16))
    hdu.header["NDCMS"] = 3
    hdu.writeto(tmp_path / "bad.fits")
    with pytest.raises(FormatError, match=r"bad\.fits.*NAXIS1 = 10 .*NDCMS = 3"):
        skipper.open(tmp_path / "bad.fits")


def test_bad_inputs(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope.fits"):
        skipper.open(tmp_path / "nope.fits")
    (tmp_path / "text.fits").write_text("this is not a FITS file\n" * 200)
    with pytest.raises(FormatError, match="text.fits"):
        skipper.open(tmp_path / "text.fits")
    fits.PrimaryHDU(np.zeros((2, 3, 4), np.int16)).writeto(tmp_path / "cube.fits")
    with pytest.raises(FormatError, match="NAXIS = 3"):
        skipper.open(tmp_path / "cube.fits")
    hdu = fits.PrimaryHDU(np.zeros((3, 9), np.int16))
    hdu.header["NDCMS"] = "many"
    hdu.writeto(tmp_path / "key.fits")
    with pytest.raises(FormatError, match="NDCMS"):
        skipper.open(tmp_path / "key.fits")


def test_chunks_follow_memory_budget(sim_dir):
    d, _ = sim_dir
    assert skipper_chunks((50, 60, 4000), target_bytes=2**20) == (50, 60, 43)
    assert skipper_chunks((4000, 4000, 2), target_bytes=2**20) == (32, 4000, 1)
    with lazyastro.set_options(memory_budget="1MiB"):
        cube = skipper.open(d / "Img_01.fits")  # 40 x 50 x 400 int64 codes = 6.4 MB
    assert cube.data.npartitions > 1 and len(cube.data.chunks[2]) > 1
    assert max(cube.data.chunks[2]) < 400


def test_bad_chunks(sim_dir):
    d, _ = sim_dir
    with pytest.raises(ParameterError):
        skipper.open(d / "Img_02.fits", chunks={"frame": 2})
    with pytest.raises(ParameterError):
        skipper.open(d / "Img_02.fits", chunks=(1, 2))


def test_sniffer_and_registry(sim_dir, tmp_path):
    d, _ = sim_dir
    assert sniff_skipper(d / "Img_02.fits")
    fits.PrimaryHDU(np.zeros((3, 9), np.int16)).writeto(tmp_path / "plain.fits")
    assert not sniff_skipper(tmp_path / "plain.fits")
    cube = lazyastro.open(d / "Img_02.fits", format="skipper")
    assert cube.dims == ("row", "col", "skip")


def test_reads_are_lazy(sim_dir):
    d, _ = sim_dir
    cube = skipper.open(d / "Img_01.fits", chunks={"skip": 50})
    assert isinstance(cube.data, da.Array)
    part = cube.isel(skip=slice(0, 50)).data
    # selecting the first skips only depends on the first skip chunk
    assert part.npartitions == 1
