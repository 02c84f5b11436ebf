"""Bad input is safe and one line: compressed FITS, non-regular files, errors inside dask tasks,
header validation, the shared numeric-option parser, BLANK as astropy reads it."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pickle
import zipfile

import dask.array as da
import h5py
import numpy as np
import pytest
import zarr
from astropy.io import fits

import lazyastro
from lazyastro.core.errors import (
    FormatError,
    InputNotFoundError,
    LazyAstroError,
    ParameterError,
    as_lazyastro_error,
    read_error,
    reading,
)
from lazyastro.core.execution import compute
from lazyastro.core.paths import is_regular_file, require_input
from lazyastro.core.validate import check_choice, check_float, check_int
from lazyastro.io.fits import fits_layout, open_fits, sniff_fits
from lazyastro.io.hdf5 import open_hdf5
from lazyastro.io.zarr import open_zarr

from .conftest import run_cli


def _one_line(err: BaseException, *names) -> str:
    text = str(err)
    assert "\n" not in text, text
    for name in names:
        assert str(name) in text, text
    return text


@pytest.fixture
def image(tmp_path):
    """A compressible float32 image (so the gzip stream is much shorter than the data)."""
    data = (np.arange(200 * 120, dtype=np.float32).reshape(200, 120) % 17) * 0.5
    path = tmp_path / "img.fits"
    fits.writeto(path, data)
    return path, data


def _compress(src, dest, how):
    raw = open(src, "rb").read()
    if how == "gzip":
        dest.write_bytes(gzip.compress(raw))
    elif how == "bzip2":
        dest.write_bytes(bz2.compress(raw))
    elif how == "xz":
        dest.write_bytes(lzma.compress(raw))
    else:
        with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("img.fits", raw)
    return dest


# --------------------------------------------------------------------------- compressed FITS


@pytest.mark.parametrize("name", ["x.fits.gz", "gzip-content.fits"])
def test_gzip_fits_reads_correctly_under_every_scheduler(tmp_path, image, scheduler, name):
    src, data = image
    path = _compress(src, tmp_path / name, "gzip")
    assert os.path.getsize(path) < data.nbytes  # the bug: astropy's offsets in the compressed bytes
    assert sniff_fits(path)
    arr = lazyastro.open(path, chunks={"y": 64})
    assert arr.attrs["format"] == "fits" and arr.shape == data.shape
    (got,) = compute(arr.data, scheduler=scheduler, progress=False)
    np.testing.assert_array_equal(got, data)


def test_gzip_fits_with_an_incompressible_extension_is_not_garbage(tmp_path):
    # Before: the compressed file was long enough for astropy's offsets, so exit 0 with garbage.
    a = (np.arange(256 * 256) % 7).reshape(256, 256).astype("i2")
    noise = np.random.default_rng(5).integers(0, 256, (512, 512)).astype("u1")
    fits.HDUList([fits.PrimaryHDU(a), fits.ImageHDU(noise)]).writeto(tmp_path / "mef.fits")
    path = _compress(tmp_path / "mef.fits", tmp_path / "mef-gz.fits", "gzip")
    assert os.path.getsize(path) > 2880 + a.nbytes
    np.testing.assert_array_equal(lazyastro.open(path).values, a)
    np.testing.assert_array_equal(open_fits(path, hdu=1).values, noise)


@pytest.mark.parametrize("how", ["bzip2", "xz", "zip"])
def test_other_containers_read_correctly(tmp_path, image, how):
    src, data = image
    path = _compress(src, tmp_path / f"x.fits.{how}", how)
    np.testing.assert_array_equal(open_fits(path, chunks={"y": 50}).values, data)


def test_decompressed_copy_is_remade_when_missing(tmp_path, image):
    src, data = image
    path = _compress(src, tmp_path / "x.fits.gz", "gzip")
    arr = open_fits(path, chunks={"y": 64})
    copy = fits_layout(path)["path"]
    assert copy != str(path) and os.path.exists(copy)
    os.unlink(copy)  # a cleaned temp directory, or a worker on another machine
    np.testing.assert_array_equal(arr.values, data)


def test_bad_containers_are_refused(tmp_path, image):
    src, _ = image
    truncated = tmp_path / "t.fits.gz"
    truncated.write_bytes(gzip.compress(open(src, "rb").read())[:200])
    with pytest.raises(FormatError) as exc:
        open_fits(truncated)
    _one_line(exc.value, truncated, "gzip")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a.fits", open(src, "rb").read())
        zf.writestr("b.fits", open(src, "rb").read())
    with pytest.raises(FormatError, match="2 members") as exc:
        open_fits(two)
    _one_line(exc.value, two)


def test_cli_converts_gzip_fits(tmp_path, image):
    src, data = image
    path = _compress(src, tmp_path / "x.fits.gz", "gzip")
    res = run_cli("convert", str(path), str(tmp_path / "out.zarr"))
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(open_zarr(tmp_path / "out.zarr").values, data)


# --------------------------------------------------------------------------- non-regular inputs


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.fits"
    os.mkfifo(path)
    return path


@pytest.mark.timeout(60)
def test_fifo_is_refused_by_every_reader(tmp_path, fifo):
    from lazyastro import skipper
    from lazyastro.frames.formats.framecache import (
        open_fch5_cache,
        open_frame_cache,
        open_npz_cache,
    )
    from lazyastro.frames.formats.hexrd_hdf5 import open_hexrd_hdf5
    from lazyastro.frames.formats.imagefiles import open_fits_files, open_image_files

    readers = [open_fits, open_hdf5, open_npz_cache, open_fch5_cache, open_frame_cache, open_hexrd_hdf5,
               skipper.open, open_image_files, lambda p: open_fits_files([p]), lazyastro.open]
    for reader in readers:
        with pytest.raises(FormatError, match="FIFO") as exc:
            reader(fifo)
        _one_line(exc.value, fifo)
    with pytest.raises(LazyAstroError):
        open_zarr(fifo)
    import lazyastro.frames as lf

    with pytest.raises(LazyAstroError) as exc:
        lf.open(fifo)
    _one_line(exc.value, fifo)


@pytest.mark.timeout(120)
def test_cli_refuses_a_fifo_without_hanging(fifo):
    for args in (["info", str(fifo)], ["frames", "stats", str(fifo), "--out", str(fifo) + ".zarr"]):
        res = run_cli(*args, timeout=60)
        assert res.returncode == 1, res.stderr
        assert res.stderr.count("\n") == 1 and "FIFO" in res.stderr and str(fifo) in res.stderr, res.stderr


def test_require_input_kinds(tmp_path):
    f = tmp_path / "a.fits"
    f.write_bytes(b"x")
    assert require_input(f) == f and require_input(tmp_path, kind="dir") == tmp_path
    with pytest.raises(FormatError, match="character device"):
        require_input("/dev/null")
    assert not is_regular_file("/dev/null") and is_regular_file(f)
    with pytest.raises(FormatError, match="is a directory"):
        require_input(tmp_path)
    with pytest.raises(FormatError, match="not a directory"):
        require_input(f, kind="dir")
    with pytest.raises(InputNotFoundError):
        require_input(tmp_path / "missing.fits")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputNotFoundError, match="broken symbolic link"):
        require_input(tmp_path / "dangling")
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    with pytest.raises(FormatError, match="symbolic link loop"):
        require_input(tmp_path / "loop1")
    with pytest.raises(FormatError, match="is a directory"):
        open_fits(tmp_path)


# --------------------------------------------------------------------------- errors inside dask tasks


def test_lazyastro_errors_pickle_with_their_path():
    err = pickle.loads(pickle.dumps(FormatError("cannot read block [0:4]", "/data/x.fits")))
    assert type(err) is FormatError and err.path == "/data/x.fits"
    assert str(err) == "/data/x.fits: cannot read block [0:4]"


def test_reading_wraps_library_errors_on_one_line():
    with pytest.raises(FormatError) as exc:
        with reading("a.h5", "chunk (0, 1)"):
            raise OSError("Can't read data\n(inflate() failed)")
    assert str(exc.value) == "a.h5: cannot read chunk (0, 1): OSError: Can't read data (inflate() failed)"
    with pytest.raises(InputNotFoundError):
        with reading("a.h5", "chunk"):
            raise FileNotFoundError("gone")
    with pytest.raises(ParameterError):  # lazyastro errors pass unchanged
        with reading("a.h5", "chunk"):
            raise ParameterError("bad", "b.h5")
    with pytest.raises(MemoryError):
        with reading("a.h5", "chunk"):
            raise MemoryError
    assert isinstance(read_error(IndexError("index 70"), "c.npz", "frames 0:4"), FormatError)


def test_compute_unwraps_a_wrapped_lazyastro_error():
    from dask.multiprocessing import remote_exception

    def task(x):
        raise remote_exception(FormatError("cannot read frames 0:2", "c.npz"), "remote traceback\nlines")

    x = da.ones(4, chunks=2).map_blocks(task, meta=np.empty(0))
    with pytest.raises(FormatError) as exc:
        compute(x, scheduler="sync", progress=False)
    assert type(exc.value) is FormatError
    assert as_lazyastro_error(exc.value) is exc.value
    assert str(exc.value) == "c.npz: cannot read frames 0:2"


def _boom(block):
    raise FormatError("cannot read block [0:2]", "/data/x.fits")


def test_task_errors_keep_class_and_path_under_every_scheduler(scheduler):
    x = da.ones(4, chunks=2).map_blocks(_boom, meta=np.empty(0))
    with pytest.raises(FormatError) as exc:
        compute(x, scheduler=scheduler, progress=False)
    assert isinstance(exc.value, FormatError) and exc.value.path == "/data/x.fits"
    assert str(exc.value) == "/data/x.fits: cannot read block [0:2]"


def _corrupt_middle(path, offset, n=64):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * n)


def test_corrupt_hdf5_chunk_names_file_and_block(tmp_path, scheduler):
    path = tmp_path / "c.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("img", data=rng.integers(0, 1000, (8, 64, 64)).astype("u2"),
                              chunks=(1, 64, 64), compression="gzip")
        offset = ds.id.get_chunk_info(3).byte_offset
    _corrupt_middle(path, offset + 10)
    arr = open_hdf5(path, chunks=(1, 64, 64))
    with pytest.raises(FormatError) as exc:
        compute(arr.data, scheduler=scheduler, progress=False)
    _one_line(exc.value, path, "block [3:4, 0:64, 0:64]", "'img'")


def test_corrupt_zarr_chunk_names_store_and_block(tmp_path):
    path = tmp_path / "c.zarr"
    z = zarr.create_array(store=str(path), shape=(4, 32, 32), chunks=(1, 32, 32), dtype="u2")
    z[:] = np.arange(4 * 32 * 32, dtype="u2").reshape(4, 32, 32)
    (path / "c" / "2" / "0" / "0").write_bytes(b"not a chunk")
    with pytest.raises(FormatError) as exc:
        _ = open_zarr(path, chunks=(1, 32, 32)).values
    _one_line(exc.value, path, "block [2:3, 0:32, 0:32]")


def test_fits_truncated_after_open_names_file(tmp_path, image):
    src, data = image
    arr = open_fits(src, chunks={"y": 50})
    with open(src, "r+b") as f:
        f.truncate(2880 + data.nbytes // 2)
    with pytest.raises(FormatError) as exc:
        _ = arr.values
    _one_line(exc.value, src, "block")


# --------------------------------------------------------------------------- header validation


def _raw_fits(path, cards, data=b""):
    text = "".join(f"{c:<80}" for c in cards + ["END"])
    text += " " * (-len(text) % 2880)
    path.write_bytes(text.encode("ascii") + data + b"\0" * (-len(data) % 2880))
    return path


@pytest.mark.parametrize("cards,match", [
    (["NAXIS   =                    2", "NAXIS1  =                    4"], "NAXIS2.* is missing"),
    (["NAXIS   =                    2", "NAXIS1  =                   -4", "NAXIS2  =                    2"],
     "negative|not a readable"),
    (["NAXIS   =                    2", "NAXIS1  =                    4", "NAXIS2  =                    0"],
     "no data"),
    (["NAXIS   =                    2", "NAXIS1  =                    4", "NAXIS2  =                    2",
      "BZERO   = 'abc'"], "BZERO"),
    (["NAXIS   =                    2", "NAXIS1  =                    4", "NAXIS2  =                    2",
      "BSCALE  = 'x'"], "BSCALE"),
])
def test_invalid_fits_headers_fail_before_any_graph(tmp_path, cards, match):
    path = _raw_fits(tmp_path / "bad.fits",
                     ["SIMPLE  =                    T", "BITPIX  =                   16"] + cards, bytes(16))
    with pytest.raises(FormatError, match=match) as exc:
        open_fits(path)
    _one_line(exc.value, path)


def test_zero_length_datasets_are_refused(tmp_path):
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f.create_dataset("img", shape=(0, 5), dtype="f4")
    with pytest.raises(FormatError, match="no data") as exc:
        open_hdf5(tmp_path / "e.h5")
    _one_line(exc.value, tmp_path / "e.h5")
    zarr.create_array(store=str(tmp_path / "e.zarr"), shape=(3, 0), chunks=(1, 1), dtype="u2")
    with pytest.raises(FormatError, match="no data"):
        open_zarr(tmp_path / "e.zarr")


# --------------------------------------------------------------------------- BLANK / BZERO / BSCALE as astropy


@pytest.mark.parametrize("bitpix,bzero,bscale,blank", [
    (16, 0, 1, -999), (8, 0, 1, 7), (32, 0, 1, 7), (64, 0, 1, 7),
    (16, 0, 2, -999), (16, 10, 1, None), (16, 32768, 1, None), (16, 32768, 1, 5),
    (32, 2**31, 1, None), (8, -128, 1, None), (-32, 0, 1, None), (32, 1.5, 0.25, 3),
])
def test_scaled_and_blank_images_read_as_astropy(tmp_path, bitpix, bzero, bscale, blank):
    raw_dtype = {8: "u1", 16: "i2", 32: "i4", 64: "i8", -32: "f4"}[bitpix]
    raw = (np.arange(48) % 11).reshape(6, 8).astype(raw_dtype)
    hdu = fits.PrimaryHDU(raw, do_not_scale_image_data=True)
    hdu.header["BZERO"], hdu.header["BSCALE"] = bzero, bscale
    if blank is not None:
        hdu.header["BLANK"] = blank
    hdu.writeto(tmp_path / "s.fits")
    with fits.open(tmp_path / "s.fits") as hdul:
        ref = np.asarray(hdul[0].data)
    got = open_fits(tmp_path / "s.fits", chunks={"y": 4}).values
    assert got.dtype == ref.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, ref)


# --------------------------------------------------------------------------- one numeric-option parser


def test_check_helpers():
    assert check_int(3.0, "n") == 3 and check_int(np.int64(5), "n", min=0) == 5
    for bad in (-3, 2.5, True, "3", None, float("nan")):
        with pytest.raises(ParameterError, match="^n must"):
            check_int(bad, "n", min=0)
    assert check_float(0.5, "q", min=0, max=1) == 0.5
    for bad in (float("nan"), float("inf"), "x", 1.5):
        with pytest.raises(ParameterError, match="^q must"):
            check_float(bad, "q", min=0, max=1)
    with pytest.raises(ParameterError, match="> 0"):
        check_float(0, "budget", min=0, min_open=True)
    assert check_choice("a", "style", "ab") == "a"
    with pytest.raises(ParameterError, match="one of"):
        check_choice("c", "style", "ab")


def test_api_nframes_is_validated():
    import lazyastro.frames as lf

    s = lf.open(np.zeros((4, 3, 2), "u2"))
    for bad in (-3, 2.5, True, "2"):
        with pytest.raises(ParameterError, match="nframes"):
            lf.as_series(s, nframes=bad)
    assert lf.as_series(s, nframes=2).shape[0] == 2


def test_cli_refuses_bad_numbers_as_typed(tmp_path):
    import lazyastro.frames as lf

    src = tmp_path / "s.zarr"
    lf.write(np.arange(4 * 3 * 2, dtype="u2").reshape(4, 3, 2), src)
    out = tmp_path / "o.zarr"
    for args, option, why in [
        (["frames", "convert", str(src), str(out), "--nframes", "-3"], "--nframes", "must be >= 0, got -3"),
        (["frames", "convert", str(src), str(out), "--nframes", "2.5"], "--nframes", "must be an integer"),
        (["frames", "stats", str(src), "--out", str(out), "--nframes", "x"], "--nframes", "must be an integer"),
        (["skipper", "-d", str(tmp_path), "--batch", "0"], "--batch", "must be >= 1, got 0"),
        (["skipper", "-d", str(tmp_path), "--seed", "-1"], "--seed", "must be >= 0"),
        (["info", str(src), "--cards", "-2"], "--cards", "must be >= 0"),
    ]:
        res = run_cli(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert f"argument {option}: {why}" in res.stderr, res.stderr
        assert not out.exists()
    res = run_cli("frames", "convert", str(src), str(tmp_path / "c.npz"), "--threshold", "nan")
    assert res.returncode == 2 and "argument --threshold: must be a finite number" in res.stderr, res.stderr
