"""Round trips of every format under every scheduler, and byte-identical outputs."""

import hashlib
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lazyastro
from lazyastro.core.atomic import partial_path

DTYPES = ["float32", "float64", "int16", "int32", "uint8", "uint16"]


def _data(rng, dtype, shape=(5, 37, 23)):
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.normal(100, 20, size=shape).astype(dtype)


def _digest(path: Path) -> str:
    """Hash of a file's bytes, or of every file (relative name + bytes) of a directory store."""
    path = Path(path)
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", ["fits", "zarr", "hdf5"])
def test_roundtrip_every_scheduler(tmp_path, rng, scheduler, fmt):
    a = _data(rng, "uint16")
    x = xr.DataArray(da.from_array(a, chunks=(2, 10, 9)), dims=("frame", "y", "x"), attrs={"OBJECT": "M31"})
    path = tmp_path / f"out.{ {'fits': 'fits', 'zarr': 'zarr', 'hdf5': 'h5'}[fmt] }"
    lazyastro.write(x, path, scheduler=scheduler, progress=False)
    assert not partial_path(path).exists()
    back = lazyastro.open(path)
    assert back.dims == ("frame", "y", "x")
    (values,) = lazyastro.compute(back, scheduler=scheduler, progress=False)
    assert values.dtype == a.dtype
    np.testing.assert_array_equal(values, a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fits_dtypes_match_astropy(tmp_path, rng, dtype):
    a = _data(rng, dtype, (7, 13))
    path = tmp_path / "img.fits"
    lazyastro.to_fits(da.from_array(a, chunks=(3, 5)), path, header={"OBJECT": "NGC 1", "EXPTIME": 30.0},
                      progress=False)
    with fits.open(path) as hdul:
        assert hdul[0].header["OBJECT"] == "NGC 1"
        np.testing.assert_array_equal(hdul[0].data, a)
        assert hdul[0].data.dtype.newbyteorder("=") == np.dtype(dtype)
    back = lazyastro.open_fits(path, chunks=(2, 4))
    assert back.dtype == np.dtype(dtype) and back.attrs["header"]["EXPTIME"] == 30.0
    np.testing.assert_array_equal(back.values, a)


def test_fits_reader_scaling_blank_and_wcs(tmp_path):
    raw = np.arange(24, dtype=">i2").reshape(4, 6)
    raw[0, 0] = -999
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update(BSCALE=0.25, BZERO=100.0, BLANK=-999, CTYPE1="RA---TAN", CTYPE2="DEC--TAN",
                      CRVAL1=150.0, CRVAL2=2.0, CRPIX1=3.0, CRPIX2=2.0, CDELT1=-1e-4, CDELT2=1e-4)
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    ref = fits.getdata(path)
    arr = lazyastro.open_fits(path, chunks=(3, 4))
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr.values, ref)
    assert np.isnan(arr.values[0, 0])
    assert "wcs" in arr.attrs and arr.attrs["wcs"].wcs.ctype[0] == "RA---TAN"


def test_fits_reads_extension_hdu(tmp_path):
    img = np.arange(30, dtype=np.float32).reshape(5, 6)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(img, name="SCI")]).writeto(tmp_path / "mef.fits")
    np.testing.assert_array_equal(lazyastro.open_fits(tmp_path / "mef.fits").values, img)
    np.testing.assert_array_equal(lazyastro.open_fits(tmp_path / "mef.fits", hdu="SCI").values, img)
    with pytest.raises(lazyastro.InputNotFoundError, match="HDU"):
        lazyastro.open_fits(tmp_path / "mef.fits", hdu=5)


def test_fits_header_survives_zarr_and_back(tmp_path):
    img = np.ones((8, 8), np.float32)
    fits.PrimaryHDU(img, header=fits.Header({"OBJECT": "XDF", "FILTER": "F160W"})).writeto(tmp_path / "a.fits")
    lazyastro.to_zarr(lazyastro.open_fits(tmp_path / "a.fits"), tmp_path / "a.zarr", progress=False)
    z = lazyastro.open_zarr(tmp_path / "a.zarr")
    lazyastro.to_fits(z, tmp_path / "b.fits", progress=False)
    assert fits.getheader(tmp_path / "b.fits")["FILTER"] == "F160W"


def test_fits_and_zarr_bytes_identical_under_all_schedulers(tmp_path, rng, dask_cluster_address):
    a = _data(rng, "float32", (6, 45, 31))
    x = da.from_array(a, chunks=(4, 11, 7))
    digests = {"fits": set(), "zarr": set()}
    for sched in ("sync", "threads", "processes", dask_cluster_address):
        tag = sched.replace(":", "_").replace("/", "_")
        f = lazyastro.to_fits(x, tmp_path / f"{tag}.fits", scheduler=sched, progress=False)
        z = lazyastro.to_zarr(x, tmp_path / f"{tag}.zarr", chunks=(2, 16, 16), shards=(4, 32, 32),
                              scheduler=sched, progress=False)
        digests["fits"].add(_digest(Path(f)))
        digests["zarr"].add(_digest(Path(z)))
    assert len(digests["fits"]) == 1 and len(digests["zarr"]) == 1
    # Different dask chunking gives the same FITS bytes too.
    g = lazyastro.to_fits(x.rechunk((1, 45, 31)), tmp_path / "rechunked.fits", progress=False)
    assert _digest(Path(g)) in digests["fits"]


def test_zarr_shards_misaligned_input_loses_nothing(tmp_path, rng):
    a = _data(rng, "int32", (9, 50, 50))
    x = da.from_array(a, chunks=(4, 13, 17))  # straddles every shard
    p = lazyastro.to_zarr(x, tmp_path / "s.zarr", chunks=(1, 10, 10), shards=(3, 20, 20), progress=False)
    np.testing.assert_array_equal(lazyastro.open_zarr(p).values, a)


def test_zarr_shards_must_be_multiples(tmp_path):
    with pytest.raises(lazyastro.ParameterError, match="multiples"):
        lazyastro.to_zarr(da.ones((10, 10)), tmp_path / "x.zarr", chunks=(4, 4), shards=(6, 6))


@pytest.mark.parametrize("codec", ["lz4", "zstd", "none"])
def test_zarr_codecs(tmp_path, codec):
    x = da.arange(1000, dtype="i4", chunks=100).reshape(10, 100)
    p = lazyastro.to_zarr(x, tmp_path / f"{codec}.zarr", codec=codec, progress=False)
    np.testing.assert_array_equal(lazyastro.open(p).values, x.compute())


@pytest.mark.parametrize("compression", ["gzip", "lzf", "blosc-lz4", "blosc-zstd", None])
def test_hdf5_compressions(tmp_path, rng, compression):
    a = _data(rng, "int16", (3, 20, 20))
    p = lazyastro.to_hdf5(a, tmp_path / "c.h5", "grp/data", compression=compression, progress=False)
    np.testing.assert_array_equal(lazyastro.open_hdf5(p, "grp/data").values, a)


def test_hdf5_graph_pickles_and_reads_by_path(tmp_path, rng):
    import pickle

    a = _data(rng, "float64", (4, 9, 9))
    p = lazyastro.to_hdf5(a, tmp_path / "p.h5", "x", progress=False)
    arr = lazyastro.open_hdf5(p, "x", chunks=(1, 9, 9))
    clone = pickle.loads(pickle.dumps(arr))
    np.testing.assert_array_equal(clone.values, a)


def test_open_detects_by_content_not_only_extension(tmp_path):
    img = np.ones((4, 4), np.float32)
    fits.PrimaryHDU(img).writeto(tmp_path / "image.dat")
    assert lazyastro.detect_format(tmp_path / "image.dat") == "fits"
    assert lazyastro.open(tmp_path / "image.dat").shape == (4, 4)


def test_zarr_partial_output_is_not_readable_as_complete(tmp_path):
    with pytest.raises(lazyastro.IncompleteOutputError):
        partial_path(tmp_path / "x.zarr").mkdir()
        lazyastro.open_zarr(tmp_path / "x.zarr")


def test_fits_tile_compressed_reads_by_section(tmp_path, rng):
    a = rng.integers(0, 1000, (3, 50, 40)).astype("int16")
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(a)]).writeto(tmp_path / "c.fits.fz")
    x = lazyastro.open(tmp_path / "c.fits.fz", chunks=(1, 20, 40))
    assert x.attrs["hdu"] == 1 and x.data.npartitions == 9
    (values,) = lazyastro.compute(x, scheduler="processes", progress=False)
    np.testing.assert_array_equal(values, a)


def test_open_zarr_groups_storage_chunks_into_larger_blocks(tmp_path, rng):
    from lazyastro.core.chunking import grow_chunks

    a = rng.integers(0, 100, (4, 64, 40)).astype("int16")
    p = lazyastro.to_zarr(da.from_array(a, chunks=(1, 8, 40)), tmp_path / "g.zarr", progress=False)
    arr = lazyastro.open_zarr(p)
    assert arr.data.chunksize[1] % 8 == 0 and arr.data.chunksize[1] > 8
    np.testing.assert_array_equal(arr.values, a)
    assert grow_chunks((1, 8, 40), (4, 64, 40), "int16", target_bytes=8 * 40 * 2 * 3) == (1, 24, 40)
