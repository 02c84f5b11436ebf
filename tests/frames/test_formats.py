import zipfile

import h5py
import numpy as np
import pytest
import yaml

import lazyastro.frames as lf
from lazyastro.core.errors import (
    FormatError,
    InputNotFoundError,
    OutputExistsError,
    ParameterError,
    UnsupportedDtypeError,
)
from lazyastro.core.execution import cluster, compute


@pytest.fixture
def sparse_series():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 100, (5, 9, 6)).astype(np.uint16)
    a[a < 95] = 0
    omega = np.stack([np.arange(5.0), np.arange(5.0) + 1], axis=1)
    return a, omega


def _with_omega(a, omega):
    return lf.open(a, meta={"omega": omega, "panel": "ff1"})


@pytest.mark.parametrize("style, fmt", [("npz", "frame-cache-npz"), ("fch5", "frame-cache-fch5")])
def test_frame_cache_roundtrip(tmp_path, sparse_series, style, fmt):
    a, omega = sparse_series
    path = tmp_path / f"cache.{style}"
    lf.write_frame_cache(_with_omega(a, omega), path, threshold=0, style=style)
    assert lf.detect_series_format(path) == fmt
    s = lf.open(path)
    assert s.dims == ("frame", "y", "x") and s.dtype == np.uint16
    np.testing.assert_array_equal(s.values, a)
    np.testing.assert_array_equal(s.omega_start.values, omega[:, 0])
    assert s.attrs["panel"] == "ff1"
    np.testing.assert_array_equal(s.isel(frame=slice(1, 4)).values, a[1:4])  # frame slicing


def test_frame_cache_threshold_is_strict(tmp_path, sparse_series):
    a, _ = sparse_series
    lf.write_frame_cache(a, tmp_path / "c.npz", threshold=97)
    np.testing.assert_array_equal(lf.open(tmp_path / "c.npz").values, np.where(a > 97, a, 0))


def test_frame_cache_writer_checks(tmp_path, sparse_series):
    a, _ = sparse_series
    with pytest.raises(ParameterError, match="threshold"):
        lf.write_frame_cache(a, tmp_path / "c.npz")
    with pytest.raises(UnsupportedDtypeError, match="65535"):
        lf.write_frame_cache(np.zeros((1, 2, 70000), np.uint8), tmp_path / "big.npz", threshold=0)
    with pytest.warns(UserWarning, match="above the threshold"):
        lf.write_frame_cache(np.ones((1, 4, 4), np.uint16), tmp_path / "dense.fch5", threshold=0, style="fch5")
    lf.write_frame_cache(a, tmp_path / "c.npz", threshold=0)
    with pytest.raises(OutputExistsError):
        lf.write_frame_cache(a, tmp_path / "c.npz", threshold=0)
    assert not list(tmp_path.glob("*.partial"))


def test_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, shape=np.array([2, 2]), nframes=np.array(1), dtype=np.array(b"uint16"),
             **{"0_row": np.array([0], np.uint16), "0_col": np.array([0], np.uint16),
                "0_data": np.array([1], np.uint16)},
             extra=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FormatError, match="pickled Python objects") as err:
        lf.open(path)
    assert "extra" in str(err.value) and str(path) in str(err.value)


def test_npz_missing_field(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, shape=np.array([2, 2]), nframes=np.array(1), dtype=np.array(b"uint16"))
    with pytest.raises(FormatError, match="0_row"):
        lf.open_npz_cache(path)


def test_fch5_version_checked(tmp_path, sparse_series):
    a, _ = sparse_series
    path = tmp_path / "c.fch5"
    lf.write_frame_cache(a, path, threshold=0, style="fch5")
    with h5py.File(path, "r+") as h5:
        assert h5["indices"].dtype == np.uint16 and h5["frame_ids"].dtype == np.uint64
        h5.attrs["HEXRD_FRAMECACHE_VERSION"] = 2
    with pytest.raises(FormatError, match="HEXRD_FRAMECACHE_VERSION"):
        lf.open(path)


def test_fch5_frames_in_any_order(tmp_path):
    """Frames located through frame_ids, not by position (legacy writers use completion order)."""
    path = tmp_path / "shuffled.fch5"
    frames = [np.array([[0, 5], [0, 0]], np.uint16), np.array([[7, 0], [0, 9]], np.uint16)]
    with h5py.File(path, "w") as h5:
        h5.attrs["HEXRD_FRAMECACHE_VERSION"] = 1
        h5["shape"], h5["nframes"], h5["dtype"] = np.array([2, 2]), np.array([2]), np.bytes_(b"uint16")
        h5["data"] = np.array([[7], [9], [5]], np.uint16)
        h5["indices"] = np.array([[0, 0], [1, 1], [0, 1]], np.uint16)
        h5["frame_ids"] = np.array([2, 3, 0, 2], np.uint64)
        h5.create_group("metadata")["exposure"] = np.array([0.5])
    s = lf.open(path)
    np.testing.assert_array_equal(s.values, np.stack(frames))
    assert s.attrs["exposure"] == 0.5


def test_yml_frame_cache(tmp_path, sparse_series):
    a, omega = sparse_series
    lf.write_frame_cache(a, tmp_path / "c.npz", threshold=0)
    np.save(tmp_path / "c-omega.npy", omega)
    doc = {"data": {"file": "c.npz", "dtype": "uint16", "nframes": 5, "shape": [9, 6]},
           "meta": {"omega": "! load-numpy-array c-omega.npy"}}
    (tmp_path / "c.yml").write_text(yaml.safe_dump(doc))
    s = lf.open(tmp_path / "c.yml")
    np.testing.assert_array_equal(s.values, a)
    np.testing.assert_array_equal(s.omega_end.values, omega[:, 1])


def test_hexrd_hdf5_roundtrip_and_options(tmp_path, sparse_series):
    import hdf5plugin

    a, omega = sparse_series
    path = tmp_path / "s.h5"
    lf.write_hexrd_hdf5(_with_omega(a, omega), path, group="imageseries", chunk_rows=4)
    with h5py.File(path) as h5:
        ds = h5["imageseries/images"]
        assert ds.chunks == (1, 4, 6) and ds.compression == "gzip" and ds.shuffle
    assert lf.detect_series_format(path) == "hexrd-hdf5"
    s = lf.open(path)
    np.testing.assert_array_equal(s.values, a)
    np.testing.assert_array_equal(s.omega.values, omega.mean(axis=1))
    lf.write_hexrd_hdf5(a, tmp_path / "plain.h5", gzip=0)
    with h5py.File(tmp_path / "plain.h5") as h5:
        assert h5["imageseries/images"].compression is None
    lf.write_hexrd_hdf5(a, tmp_path / "blosc.h5", compression=hdf5plugin.Blosc())
    np.testing.assert_array_equal(lf.open(tmp_path / "blosc.h5", format="hdf5").values, a)
    with pytest.raises(ParameterError, match="gzip"):
        lf.write_hexrd_hdf5(a, tmp_path / "x.h5", gzip=10)
    with pytest.raises(FormatError, match="no group"):
        lf.open_hexrd_hdf5(path, group="nope")


def test_hexrd_hdf5_2d_dataset(tmp_path):
    with h5py.File(tmp_path / "one.h5", "w") as h5:
        h5.create_group("g")["images"] = np.arange(6, dtype="i4").reshape(2, 3)
        h5["g"].attrs["note"] = b"bytes"
    s = lf.open(tmp_path / "one.h5")
    assert s.shape == (1, 2, 3) and s.attrs["note"] == "bytes"


def test_zarr_and_fits_cube_roundtrip(tmp_path, sparse_series):
    a, omega = sparse_series
    lf.write(_with_omega(a, omega), tmp_path / "s.zarr", progress=False)
    z = lf.open(tmp_path / "s.zarr")
    np.testing.assert_array_equal(z.values, a)
    np.testing.assert_array_equal(z.omega_start.values, omega[:, 0])
    lf.write(a, tmp_path / "cube.fits", progress=False)
    f = lf.open(tmp_path / "cube.fits")
    assert f.dims == ("frame", "y", "x") and f.dtype == np.uint16
    np.testing.assert_array_equal(f.values, a)


def _write_fits_frames(directory, a):
    from astropy.io import fits

    directory.mkdir()
    for i, frame in enumerate(a):
        fits.PrimaryHDU(frame).writeto(directory / f"f{i:03d}.fits")


def test_fits_files(tmp_path, sparse_series):
    a, _ = sparse_series
    _write_fits_frames(tmp_path / "frames", a.astype(np.int16))
    for src in (tmp_path / "frames", str(tmp_path / "frames" / "f*.fits"),
                sorted((tmp_path / "frames").iterdir())):
        s = lf.open(src)
        np.testing.assert_array_equal(s.values, a)
    with pytest.raises(InputNotFoundError):
        lf.open(str(tmp_path / "nothing" / "*.fits"))


def test_image_files_yaml(tmp_path):
    import tifffile
    from PIL import Image

    d = tmp_path / "img"
    d.mkdir()
    a = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    tifffile.imwrite(d / "a_0.tif", a, photometric="minisblack")  # 3 pages
    tifffile.imwrite(d / "a_1.tif", a[:2] + 300, photometric="minisblack")
    Image.fromarray(a[0].astype(np.uint8)).save(d / "z.png")
    np.save(tmp_path / "om.npy", np.zeros((3, 2)))
    cfg = {"image-files": {"directory": "img", "files": "a_*.tif"},
           "options": {"empty-frames": 1, "max-file-frames": 0, "max-total-frames": 0},
           "meta": {"omega": "! load-numpy-array om.npy", "note": "ok"}}
    (tmp_path / "s.yml").write_text(yaml.safe_dump(cfg))
    s = lf.open(tmp_path / "s.yml")
    assert lf.detect_series_format(tmp_path / "s.yml") == "image-files"
    np.testing.assert_array_equal(s.values, np.concatenate([a[1:], a[1:2] + 300]))
    assert s.attrs["note"] == "ok" and "omega" in s.coords
    cfg["options"] = {"max-total-frames": 2, "dtype": "uint8"}
    cfg.pop("meta")
    (tmp_path / "t.yml").write_text(yaml.safe_dump(cfg))
    t = lf.open(tmp_path / "t.yml")
    assert t.dtype == np.uint8 and t.shape == (2, 4, 5)
    np.testing.assert_array_equal(t.values, a[:2])
    cfg["options"] = {"dtype": "uint8"}
    (tmp_path / "u.yml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FormatError, match="truncate"):
        lf.open(tmp_path / "u.yml").compute()  # values > 255 in a_1.tif
    cfg["image-files"]["files"] = "*.tif *.png"
    cfg["options"] = {}
    (tmp_path / "v.yml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FormatError, match="frame shape") as err:
        Image.fromarray(np.zeros((3, 3), np.uint8)).save(d / "z.png")
        lf.open(tmp_path / "v.yml")
    assert "z.png" in str(err.value)


@pytest.mark.parametrize("bad, match", [
    ({"image-files": {"directory": ".", "files": "*.tif", "oops": 1}}, r"unknown key\(s\) \['oops'\]"),
    ({"image-files": {"directory": ".", "files": "*.tif"}, "options": {"empty_frames": 1}}, "empty_frames"),
    ({"image-files": {"directory": ".", "files": "*.tif"}, "extra": 1}, "extra"),
    ({"image-files": {"directory": "."}}, "image-files.files"),
    ({"image-files": {"directory": ".", "files": "*.none"}}, "no image files"),
])
def test_image_files_bad_yaml(tmp_path, bad, match):
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(bad))
    with pytest.raises(FormatError, match=match) as err:
        lf.open_image_files(tmp_path / "bad.yml")
    assert "bad.yml" in str(err.value)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(InputNotFoundError):
        lf.open(tmp_path / "nope.h5")
    with pytest.raises(ParameterError, match="unknown series format"):
        lf.open(tmp_path, format="nope")
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        lf.open(tmp_path / "x.npz", format="frame-cache")
    bad = tmp_path / "bad.zip.npz"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("shape.npy", b"junk")
    with pytest.raises(FormatError):
        lf.open(bad, format="frame-cache")


def test_registry_integration(tmp_path, sparse_series):
    import lazyastro

    a, _ = sparse_series
    lazyastro.write(a, tmp_path / "r.fch5", format="frame-cache-fch5", threshold=0)
    np.testing.assert_array_equal(lazyastro.open(tmp_path / "r.fch5", format="frame-cache-fch5").values, a)
    assert "hexrd-hdf5" in lazyastro.formats()


@pytest.mark.parametrize("fmt", ["npz", "fch5", "h5"])
def test_readers_under_processes_and_distributed(tmp_path, sparse_series, dist_client, fmt):
    a, _ = sparse_series
    path = tmp_path / f"s.{fmt}"
    lf.write(a, path, threshold=0) if fmt != "h5" else lf.write(a, path)
    s = lf.open(path, chunks=(2, 9, 6))
    med = lf.median(s)
    with cluster(address=dist_client.scheduler.address):
        (got,) = compute(med.data, progress=False)
    np.testing.assert_array_equal(got, np.median(a, 0).astype(np.float32))
    if fmt == "h5":
        (got,) = compute(lf.max(s).data, scheduler="processes", progress=False)
        np.testing.assert_array_equal(got, a.max(0))


def test_hdf5_outputs_bytes_do_not_depend_on_the_time_of_writing(tmp_path, sparse_series, h5py_track_order):
    import time

    a, omega = sparse_series
    s = lf.open(a, meta={"omega": omega, "panel": "ff1", "detector": {"gain": 2.0}})

    def write(tag):
        lf.write_hexrd_hdf5(s, tmp_path / f"s{tag}.h5")
        lf.write_frame_cache(s, tmp_path / f"c{tag}.fch5", threshold=0, style="fch5")

    write("a")
    time.sleep(1.1)  # HDF5 object times have a resolution of one second
    write("b")
    with h5py.File(tmp_path / "ca.fch5") as h5:
        assert h5["metadata/detector/gain"][()] == 2.0  # a nested group was written
    for name, ext in (("s", "h5"), ("c", "fch5")):
        assert (tmp_path / f"{name}a.{ext}").read_bytes() == (tmp_path / f"{name}b.{ext}").read_bytes(), name
