"""``lazyastro.frames.hexrd``: the hexrd imageseries drop-in, tested without hexrd.

The same behaviour hexrd's own imageseries tests check (see test_hexrd_compat.py), plus the
points where lazyastro deliberately differs (dark promotion without wrap-around, atomic writers,
fch5 ``nframes`` as a scalar, writing into open h5py objects, combined glob sorting).
"""

from __future__ import annotations

import pickle

import h5py
import hdf5plugin
import numpy as np
import pytest
import yaml

import lazyastro
import lazyastro.frames as lf
from lazyastro.core.errors import LazyAstroError
from lazyastro.frames import hexrd as imageseries
from lazyastro.frames import kernels
from lazyastro.frames.hexrd import omega, process, stats
from lazyastro.frames.hexrd.load.framecache import FrameCacheImageSeriesAdapter
from lazyastro.frames.hexrd.load.hdf5 import HDF5ImageSeriesAdapter

RANDOM = np.random.default_rng(3).integers(0, 20, (3, 5, 7))  # int64, like hexrd's fixture


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("LAZYASTRO_PROGRESS", "0")


def make_ims(data=RANDOM, meta=None):
    return imageseries.open(None, "array", data=data, meta={"testing": np.array([1, 2, 3])} if meta is None else meta)


def max_diff(a, b):
    assert len(a) == len(b) and a.dtype == b.dtype
    return max(float(np.linalg.norm(np.asarray(a[i], float) - np.asarray(b[i], float))) for i in range(len(a)))


class Protocol:
    """A foreign object with hexrd's protocol only (like hexrd's own mock series)."""

    def __init__(self, n=10, shape=(4, 4), dtype=np.float32):
        self.n, self.shape, self.dtype, self.metadata = n, shape, np.dtype(dtype), {}

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        return np.full(self.shape, float(k), self.dtype)


# ----------------------------------------------------------------------------- dark promotion


def test_dark_follows_numpy_promotion_kernel_ops_and_processed():
    frames = np.array([[[3, 1, 65535]]], np.uint16)
    dark_f32 = np.array([[0.5, 2.0, 0.25]], np.float32)
    out = kernels.subtract_dark(frames, dark_f32)
    assert out.dtype == np.float32 and out.tolist() == [[[2.5, 0.0, 65534.75]]]
    lazy = lf.dark(frames, dark_f32)
    assert lazy.dtype == np.float32
    np.testing.assert_array_equal(lazy.values, out)
    # unsigned on unsigned keeps the dtype and never wraps around
    same = lf.dark(frames, np.array([[4, 0, 1]], np.uint16))
    assert same.dtype == np.uint16 and same.values.tolist() == [[[0, 1, 65534]]]
    p = process.ProcessedImageSeries(imageseries.open(None, "array", data=frames), [("dark", dark_f32)])
    assert p.dtype == np.float32 and p[0].tolist() == [[2.5, 0.0, 65534.75]]
    np.testing.assert_array_equal(p.to_xarray().values, out)


# ----------------------------------------------------------------------------- protocol


def test_array_series_properties_and_errors():
    ims = make_ims()
    assert len(ims) == 3 and ims.shape == (5, 7) and ims.dtype == RANDOM.dtype
    f = ims[1]
    f[0, 0] = 999
    assert ims[1][0, 0] == RANDOM[1, 0, 0]  # a fresh copy
    assert len(list(ims)) == 3 and ims[-1].tolist() == RANDOM[-1].tolist()
    assert imageseries.open(None, "array", data=np.ones((4, 5))).shape == (4, 5)
    with pytest.raises(RuntimeError):
        imageseries.open(None, "array", data=np.zeros((2, 2, 2, 2)))
    with pytest.raises(RuntimeError, match="zero length imageseries"):
        imageseries.open(None, "array", data=np.zeros((0, 2, 2)))
    with pytest.raises(KeyError) as err:
        imageseries.open(None, "no-such-format")
    assert isinstance(err.value, LazyAstroError) and "no-such-format" in str(err.value)


def test_function_adapter():
    ims = imageseries.open(None, "function", func=lambda i: np.full((3, 2), i, np.float32), num_frames=4,
                           meta={"px": 0.1})
    assert len(ims) == 4 and ims.shape == (3, 2) and ims.dtype == np.float32 and ims.metadata == {"px": 0.1}
    with pytest.raises(TypeError, match="Only int keys"):
        ims[0:2]
    with pytest.raises(KeyError):
        imageseries.open(None, "function", num_frames=2)
    assert float(stats.sum(ims)[0, 0]) == 6.0


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize("opts", [{}, {"gzip": 0}, {"chunk_rows": 2}, {"chunk_rows": 0},
                                  {"compression": hdf5plugin.Blosc(cname="zstd", clevel=5)}])
def test_hdf5_roundtrip(tmp_path, opts):
    ims = make_ims()
    ims.metadata["np-array"] = np.array([0, 2.0, 1.3])
    ims.metadata["label"] = np.array(["a", "bc"])
    fname = tmp_path / "ims.h5"
    imageseries.write(ims, fname, "hdf5", path="array-data", **opts)
    back = imageseries.open(fname, "hdf5", path="array-data")
    assert max_diff(ims, back) == 0.0
    np.testing.assert_array_equal(back.metadata["testing"], [1, 2, 3])
    np.testing.assert_allclose(back.metadata["np-array"], [0, 2.0, 1.3])
    with h5py.File(fname) as h5:
        ds = h5["array-data/images"]
        assert ds.chunks == (1, 2 if opts.get("chunk_rows") == 2 else 5, 7)
        assert (ds.compression == "gzip") == ("gzip" not in opts and "compression" not in opts)
    imageseries.write(ims, fname, "hdf5", path="array-data")  # replaces, as hexrd does


def test_hdf5_bad_gzip_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        imageseries.write(make_ims(), tmp_path / "x.h5", "hdf5", path="p", gzip=10)
    assert not list(tmp_path.iterdir())


def test_hdf5_adapter_2d_3d_handles_pickle_and_close(tmp_path):
    fname = tmp_path / "a.h5"
    data = np.arange(5 * 4 * 3, dtype=np.int32).reshape(5, 4, 3)
    with h5py.File(fname, "w") as f:
        f.create_group("entry").create_dataset("images", data=data)
        f["entry"].attrs["meta"] = 123
        f.create_group("flat").create_dataset("images", data=data[0])
        f.create_group("bad").create_dataset("images", data=np.zeros((2, 2, 2, 2)))
    a = HDF5ImageSeriesAdapter(fname, path="entry")
    assert len(a) == 5 and a.shape == (4, 3) and a.metadata["meta"] == 123
    assert a[(1, 2, 1)] == data[1, 2, 1]
    np.testing.assert_array_equal(a[1, np.array([0, 3]), np.array([2, 0])], data[1, [0, 3], [2, 0]])
    np.testing.assert_array_equal(a.get_region(1, ((0, 2), (0, 2))), data[1, :2, :2])
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(b[4], data[4])
    flat = HDF5ImageSeriesAdapter(fname, path="flat")
    assert len(flat) == 1 and flat._ndim == 2 and flat.shape == (4, 3)
    with pytest.raises(IndexError):
        flat[1]
    np.testing.assert_array_equal(flat.get_region(0, ((1, 3), (0, 2))), data[0, 1:3, :2])
    with pytest.raises(RuntimeError):
        HDF5ImageSeriesAdapter(fname, path="bad")
    h5 = h5py.File(fname, "r")
    c = HDF5ImageSeriesAdapter(h5, path="entry")
    np.testing.assert_array_equal(c[3], data[3])
    np.testing.assert_array_equal(stats.max(imageseries.ImageSeries(c)), data.max(0))
    d = pickle.loads(pickle.dumps(c))  # reopened by file name
    np.testing.assert_array_equal(d[2], data[2])
    c.close()
    assert not h5.id.valid

    def boom():
        raise RuntimeError("boom")

    a.close = boom
    with pytest.warns(UserWarning, match="could not close"):
        a.__del__()
    del a.close


@pytest.mark.parametrize("style", ["npz", "fch5"])
def test_frame_cache_roundtrip_and_pickle(tmp_path, style):
    ims = make_ims()
    ims.metadata["np-array"] = np.array([0, 2.0, 1.3])
    ims.metadata["omega"] = np.linspace((0, 0), (1, 1), 3)
    fname = tmp_path / f"fc.{style}"
    with pytest.warns(UserWarning, match="3 frame"):  # one warning with a count
        imageseries.write(ims, fname, "frame-cache", style=style, threshold=0.5, cache_file=fname.name)
    back = imageseries.open(fname, "frame-cache", style=style)
    expect = np.where(RANDOM > 0.5, RANDOM, 0)
    np.testing.assert_array_equal(imageseries.open(fname, "frame-cache")[1], expect[1])  # style from content
    assert max_diff(imageseries.open(None, "array", data=expect), back) == 0.0
    np.testing.assert_allclose(back.metadata["np-array"], [0, 2.0, 1.3])
    np.testing.assert_allclose(back.metadata["omega"], ims.metadata["omega"])
    np.testing.assert_array_equal(back.metadata["testing"], [1, 2, 3])
    adapter = FrameCacheImageSeriesAdapter(fname, style=style)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(adapter))[2], expect[2])
    np.testing.assert_array_equal(adapter[0, 0:2], expect[0, :2])
    np.testing.assert_array_equal(adapter.get_region(1, ((1, 3), (2, 5))), expect[1, 1:3, 2:5])
    with pytest.raises(TypeError):
        FrameCacheImageSeriesAdapter(fname, style="bad")


def test_fch5_nframes_is_a_scalar_and_nested_metadata(tmp_path):
    ims = make_ims()
    ims.metadata["key"] = {"int": 1, "array": np.array([1, 2, 3])}
    fname = tmp_path / "fc.fch5"
    imageseries.write(ims, fname, "frame-cache", style="fch5", threshold=100)
    with h5py.File(fname) as h5:
        assert h5["nframes"].shape == () and int(h5["nframes"][()]) == 3  # hexrd takes len() of it
    back = imageseries.open(fname, "frame-cache", style="fch5")
    assert back.metadata["key"]["int"] == 1
    np.testing.assert_array_equal(back.metadata["key"]["array"], [1, 2, 3])


def test_fch5_without_version_is_refused(tmp_path):
    fname = tmp_path / "x.fch5"
    with h5py.File(fname, "w") as h5:
        h5["shape"] = [2, 2]
    with pytest.raises(NotImplementedError, match="HEXRD_FRAMECACHE_VERSION"):
        imageseries.open(fname, "frame-cache", style="fch5")


def test_write_into_open_h5py_file_and_group(tmp_path):
    data = np.zeros((4, 16, 16), dtype=np.uint16)
    data[:, ::4, ::4] = 7
    ims = imageseries.open(None, "array", data=data, meta={"omega": np.linspace((0, 1), (3, 4), 4)})
    path = tmp_path / "state.h5"
    with h5py.File(path, "w") as f:
        imageseries.write(ims, f, "frame-cache", style="fch5", threshold=0, path="images/det")
        imageseries.write(ims, f, "hdf5", path="raw")
        imageseries.write(ims, f.create_group("sub"), "hdf5", path="raw2")
        assert "HEXRD_FRAMECACHE_VERSION" in f["images/det"].attrs
    with h5py.File(path, "r") as f:
        fc = imageseries.open(f, "frame-cache", style="fch5", path="images/det")
        assert len(fc) == 4 and all(np.array_equal(fc[i], data[i]) for i in range(4))
        np.testing.assert_allclose(fc.metadata["omega"], ims.metadata["omega"])
        np.testing.assert_array_equal(stats.max(fc), data.max(0))
        raw = imageseries.open(f, "hdf5", path="sub/raw2", close_when_finished=False)
        np.testing.assert_array_equal(raw[3], data[3])
    # lazyastro's own readers see the same content by file name
    np.testing.assert_array_equal(lf.open_fch5_cache(path, group="images/det").values, data)
    np.testing.assert_array_equal(lf.open_hexrd_hdf5(path, group="raw").values, data)


def test_frame_cache_yml_output_and_paths(tmp_path):
    ims = make_ims()
    ims.metadata["omega"] = np.linspace((0, 0), (1, 1), 3)
    yml = tmp_path / "fc.yml"
    w = imageseries.save.WriteFrameCache(ims, str(yml), threshold=100, cache_file="data.npz")
    assert w.cache == str(tmp_path / "data.npz")
    with pytest.warns(DeprecationWarning, match="deprecated"):
        w.write(output_yaml=True)
    doc = yaml.safe_load(yml.read_text())
    assert doc["data"]["file"] == "data.npz" and doc["data"]["nframes"] == 3
    assert doc["meta"]["omega"].startswith("! load-numpy-array")
    back = imageseries.open(yml, "frame-cache", style="yml")
    assert not back[2].any()  # nothing above 100
    with pytest.raises(TypeError, match="Unknown file style"):
        imageseries.save.WriteFrameCache(ims, "out", threshold=0, style="bad_style")
    with pytest.warns(UserWarning, match="80.00% sparse"):
        w._check_sparsity(0, 20, 100)


def test_writeh5_options():
    ims = imageseries.open(None, "array", data=np.zeros((2, 10, 10), np.float32))
    opts = imageseries.save.WriteH5(ims, "t.h5", path="p", gzip=5, chunk_rows=2, shuffle=False).h5opts
    assert opts == {"compression": "gzip", "compression_opts": 5, "chunks": (1, 2, 10), "shuffle": False}
    blosc = hdf5plugin.Blosc(cname="zstd", clevel=5)
    opts = imageseries.save.WriteH5(ims, "t.h5", path="p", compression=blosc).h5opts
    assert opts["compression"] == dict(blosc)["compression"] and "shuffle" not in opts
    with pytest.raises(KeyError):
        imageseries.write(ims, "t.h5", "no-such-writer")


def _tif(path, frames):
    import tifffile

    tifffile.imwrite(path, frames)


def test_image_files_sort_the_combined_glob_list(tmp_path):
    for name, value in (("b_1.tif", 3), ("a_2.tif", 2), ("a_1.tif", 1), ("c_0.tif", 4)):
        _tif(tmp_path / name, np.full((2, 3), value, np.uint16))
    np.save(tmp_path / "om.npy", np.linspace((0, 1), (3, 4), 4))
    doc = {"image-files": {"directory": str(tmp_path), "files": "c_*.tif b_*.tif a_*.tif"},
           "options": {}, "meta": {"omega": f"! load-numpy-array {tmp_path / 'om.npy'}"}}
    (tmp_path / "s.yml").write_text(yaml.safe_dump(doc))
    expect = [1, 2, 3, 4]  # a_1 a_2 b_1 c_0: one sorted list, not per-glob order
    assert [int(f[0, 0]) for f in lf.open_image_files(tmp_path / "s.yml").values] == expect
    text = yaml.safe_dump(doc)
    ims = imageseries.open(text, "image-files")
    assert [int(f[0, 0]) for f in ims] == expect and ims.shape == (2, 3) and ims.dtype == np.uint16
    np.testing.assert_allclose(ims.metadata["omega"], np.linspace((0, 1), (3, 4), 4))
    doc["meta"] = {"omega": "! load-numpy-array om.npy"}  # in a YAML file: relative to its directory
    (tmp_path / "s.yml").write_text(yaml.safe_dump(doc))
    assert imageseries.open(tmp_path / "s.yml", "image-files").metadata["omega"].shape == (4, 2)
    doc["meta"] = {}
    doc["options"] = {"dtype": "uint8", "empty-frames": 0}
    _tif(tmp_path / "c_0.tif", np.full((2, 3), 300, np.uint16))
    ims = imageseries.open(yaml.safe_dump(doc), "image-files")
    assert ims[0].dtype == np.uint8
    with pytest.raises(RuntimeError, match="truncate"):
        ims[3]


def test_raw_image(tmp_path):
    data = np.arange(3 * 4 * 5, dtype=">u2").reshape(3, 4, 5)
    (tmp_path / "d.bin").write_bytes(b"\0" * 16 + data.tobytes())
    doc = {"filename": "d.bin", "shape": "4 5", "skip": 16,
           "scalar": {"type": "i", "bytes": 2, "signed": False, "endian": "big"}}
    (tmp_path / "r.yml").write_text(yaml.safe_dump(doc))
    ims = imageseries.open(tmp_path / "r.yml", "raw-image")
    assert len(ims) == 3 and ims.dtype == np.dtype(">u2")
    np.testing.assert_array_equal(ims[2], data[2])
    np.testing.assert_array_equal(stats.sum(ims), data.sum(0))
    ims.close()
    (tmp_path / "d.bin").write_bytes(b"\0" * 17 + data.tobytes())
    with pytest.raises(ValueError, match="Total number of bytes"):
        imageseries.open(tmp_path / "r.yml", "raw-image")


def test_yamlmeta(tmp_path):
    from lazyastro.frames.hexrd.load.metadata import yamlmeta

    np.save(tmp_path / "a.npy", np.array([10, 20]))
    res = yamlmeta({"arr": "! load-numpy-array a.npy", "x": "++np.array", "x-array": [1, 2],
                    "drop": "! unknown-command arg", "b": "!", "c": "!load-numpy-array"}, path=tmp_path / "c.yml")
    assert res["arr"].tolist() == [10, 20] and res["x"].tolist() == [1, 2] and "x-array" not in res
    assert "drop" not in res and res["b"] == "!" and res["c"] == "!load-numpy-array"
    np.save(tmp_path / "obj.npy", np.array([{}], dtype=object), allow_pickle=True)
    with pytest.raises(LazyAstroError, match="pickle"):
        yamlmeta({"o": "! load-numpy-array obj.npy"}, path=tmp_path / "c.yml")


# ----------------------------------------------------------------------------- stats


def test_stats_equal_numpy_with_hexrd_dtypes():
    ims = make_ims()
    a = RANDOM
    cases = [(stats.average(ims), np.average(a, 0).astype(np.float32), np.float32),
             (stats.sum(ims), a.sum(0), np.float64), (stats.median(ims), np.median(a, 0), np.float32),
             (stats.max(ims), a.max(0), a.dtype), (stats.min(ims), a.min(0), a.dtype),
             (stats.percentile(ims, 90), np.percentile(a, 90, 0).astype(np.float32), np.float32),
             (stats.percentile(a, 90), np.percentile(a, 90, 0).astype(np.float32), np.float32)]
    for got, ref, dtype in cases:
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    for chunks in (1, 2, 3):
        *_, last = stats.average_iter(ims, chunks)
        np.testing.assert_allclose(last, stats.average(a), atol=1e-6)
        for use_buffer in (True, False):
            *_, med = stats.median_iter(ims, chunks, use_buffer=use_buffer)
            np.testing.assert_array_equal(med, stats.median(ims))


def test_stats_on_a_foreign_protocol_object(monkeypatch):
    ims = Protocol()
    assert stats.max(ims).dtype == np.float32 and np.all(stats.max(ims, nframes=5) == 4)
    assert np.all(stats.average(ims) == 4.5) and np.all(stats.average(ims, nframes=5) == 2.0)
    assert stats.sum(ims).dtype == np.float64 and np.all(stats.sum(ims) == 45)
    assert [float(x[0, 0]) for x in stats.max_iter(ims, 2)] == [4.0, 9.0]
    assert [float(x[0, 0]) for x in stats.sum_iter(ims, 2)] == [10.0, 45.0]
    assert all(float(next(it(ims, 10))[0, 0]) == 0 for it in (stats.max_iter, stats.min_iter,
                                                               stats.average_iter, stats.sum_iter))
    assert np.all(stats.percentile(ims, 100) == 9) and np.all(stats.median(ims) == 4.5)
    first, second = stats.percentile_iter(ims, 50, nchunks=2, use_buffer=False)
    assert np.all(first[:2] == 4.5) and np.all(first[2:] == 0) and np.all(second == 4.5)
    assert stats._chunk_stops(10, 4) == [2, 5, 7, 9]
    with pytest.raises(ValueError):
        stats._chunk_stops(5, 10)
    monkeypatch.setattr(stats, "STATS_BUFFER", 100)
    assert stats._alloc_buffer(ims, 10).shape == (1, 4, 4)
    monkeypatch.setattr(stats, "STATS_BUFFER", 1000)
    assert stats._alloc_buffer(ims, 10).shape == (10, 4, 4)
    buf = np.zeros((1, 4, 4), np.float32)
    assert stats._toarray(ims, 2, rows=(0, 2), buffer=buf).shape == (2, 2, 4)


def test_stats_on_hdf5_series_under_each_scheduler(tmp_path, scheduler):
    data = np.random.default_rng(5).integers(0, 1000, (6, 8, 5)).astype(np.uint16)
    lf.write_hexrd_hdf5(data, tmp_path / "s.h5", group="g")
    ims = imageseries.open(tmp_path / "s.h5", "hdf5", path="g")
    with lazyastro.set_options(scheduler=scheduler):
        np.testing.assert_array_equal(stats.max(ims), data.max(0))
        np.testing.assert_array_equal(stats.median(ims), np.median(data, 0).astype(np.float32))
        np.testing.assert_array_equal(stats.max(Protocol()), np.full((4, 4), 9, np.float32))


# ----------------------------------------------------------------------------- process


@pytest.mark.parametrize("code,ref", [
    ("t", lambda a: np.transpose(a, (0, 2, 1))), ("v", lambda a: a[:, :, ::-1]), ("y", lambda a: a[:, :, ::-1]),
    ("h", lambda a: a[:, ::-1, :]), ("x", lambda a: a[:, ::-1, :]), ("vh", lambda a: a[:, ::-1, ::-1]),
    ("r180", lambda a: a[:, ::-1, ::-1]), ("ccw90", lambda a: np.transpose(a, (0, 2, 1))[:, ::-1, :]),
    ("r90", lambda a: np.transpose(a, (0, 2, 1))[:, ::-1, :]),
    ("cw90", lambda a: np.transpose(a, (0, 2, 1))[:, :, ::-1]), ("none", lambda a: a)])
def test_process_flips_lazy_and_per_frame(code, ref):
    p = process.ProcessedImageSeries(make_ims(), [("flip", code)])
    want = ref(RANDOM)
    assert max_diff(imageseries.open(None, "array", data=want), p) == 0.0
    np.testing.assert_array_equal(p.to_xarray().values, want)


def test_process_ops_framelist_and_api():
    a = RANDOM
    ims = make_ims(meta={"omega": np.linspace((0, 0), (1, 1), 3)})
    dark = np.ones_like(a[0])
    p = process.ProcessedImageSeries(ims, [("dark", dark)], frame_list=[0, 2])
    want = np.where(a >= 1, a - 1, 0)[[0, 2]]
    assert len(p) == 2 and len(p.metadata["omega"]) == 2 and "omega" in ims.metadata
    np.testing.assert_array_equal(np.stack(list(p)), want)
    np.testing.assert_array_equal(p.to_xarray().values, want)
    np.testing.assert_array_equal(stats.max(p), want.max(0))
    assert p.shape == p[0].shape and p.dtype == p[0].dtype
    p.oplist[0] = ("dark", np.full_like(a[0], 100))  # the op list is live
    assert np.all(p[1] == 0)
    # add promotes to float32; gauss_laplace is scipy's; add-row / add-column insert zeros
    f = process.ProcessedImageSeries(imageseries.open(None, "array", data=np.full((1, 1, 1), 10, np.uint8)),
                                     [("add", 5.5)])
    assert f[0][0, 0] == 15.5 and f.dtype == np.float32
    from scipy.ndimage import gaussian_laplace

    g = process.ProcessedImageSeries(ims, [("gauss_laplace", 2.0)])
    np.testing.assert_array_equal(g[1], gaussian_laplace(a[1], 2.0))
    r = process.ProcessedImageSeries(ims, [("add-row", 1), ("add-column", 0)])
    assert r.shape == (6, 8) and np.all(r[0][1] == 0) and np.all(r[0][:, 0] == 0)
    # custom ops and fancy indexing after all ops
    p2 = process.ProcessedImageSeries(ims, [("dark", dark), ("rectangle", ((1, 3), (1, 3)))])
    p2.addop("twice", lambda img, k: img * k)
    p2.oplist.append(("twice", 2))
    assert p2[0, 0, 0] == 2 * max(a[0, 1, 1] - 1, 0)
    np.testing.assert_array_equal(p2.to_xarray().values, 2 * np.where(a >= 1, a - 1, 0)[:, 1:3, 1:3])


def test_process_rectangle_first_uses_get_region():
    class Spy(Protocol):
        called = False

        def get_region(self, i, region):
            self.called = True
            return np.full((2, 2), -999.0, np.float32)

    spy = Spy()
    p = process.ProcessedImageSeries(spy, [("rectangle", ((0, 2), (0, 2)))])
    assert p[0][0, 0] == -999.0 and spy.called and p[(0, slice(0, 1))].shape == (1, 2)
    spy2 = Spy()
    assert process.ProcessedImageSeries(spy2, [("flip", "none"), ("rectangle", ((0, 2), (0, 2)))])[3][0, 0] == 3
    assert not spy2.called


# ----------------------------------------------------------------------------- omega


def _om(*ranges):
    return np.concatenate([np.stack([np.arange(a, b, s), np.arange(a, b, s) + s], 1) for a, b, s in ranges])


def test_omega_series_wedges_and_lookups():
    with pytest.raises(omega.OmegaSeriesError, match="no omega metadata"):
        omega.OmegaImageSeries(make_ims(meta={}))
    with pytest.raises(omega.OmegaSeriesError, match="mismatch"):
        omega.OmegaImageSeries(make_ims(meta={"omega": np.zeros((2, 2))}))
    bad = np.zeros((3, 2))
    bad[0, 1] = -0.5
    with pytest.raises(omega.OmegaSeriesError, match="increasing") as err:
        omega.OmegaImageSeries(make_ims(meta={"omega": bad}))
    assert isinstance(err.value, LazyAstroError) and err.value.value
    data = np.zeros((20, 1, 1))
    om = _om((0, 10, 1), (20, 30, 1))
    oms = omega.OmegaImageSeries(imageseries.open(None, "array", data=data, meta={"omega": om}))
    assert oms.nwedges == 2 and oms.wedge(1)["ostart"] == 20 and oms.wedge(0)["delta"] == 1.0
    np.testing.assert_allclose(oms.omegawedges.omegas, om)
    assert oms.omega_to_frame(5.5) == (5, 0) and oms.omega_to_frame(25.5) == (15, 1)
    assert oms.omega_to_frame(15.0)[0] == -1 and oms.omega_to_frame(365.5)[0] == 5
    assert oms.omegarange_to_frames(5.0, 25.0) == ()
    wrap = omega.OmegaImageSeries(imageseries.open(None, "array", data=data,
                                                   meta={"omega": _om((350, 360, 1), (0, 10, 1))}))
    assert wrap.omegarange_to_frames(352.1, 354.9) == [2, 3, 4]
    assert wrap.omegarange_to_frames(358.1, 1.9) == [8, 9, 10, 11]
    assert wrap.omegarange_to_frames(100, 101) == ()
    step = omega.OmegaImageSeries(imageseries.open(None, "array", data=np.zeros((10, 1, 1)),
                                                   meta={"omega": _om((0, 5, 1), (5, 7.5, 0.5))}))
    assert step.nwedges == 2 and step.wedge(1)["delta"] == 0.5


def test_omega_wedges():
    w = omega.OmegaWedges(20)
    w.addwedge(0.0, 10.0, 10)
    with pytest.raises(omega.OmegaSeriesError, match="does not match"):
        _ = w.omegas
    w.addwedge(20.0, 30.0, 10)
    assert w.nwedges == 2 and w.wframes == 20 and w.omegas[10, 0] == 20.0 and w.omegas[0, 1] == 1.0
    w.delwedge(1)
    assert w.wframes == 10
