"""Direct readers of io (Zarr chunk files, HDF5 by byte offset) and the shared file-handle cache."""

from __future__ import annotations

import os
import pickle

import h5py
import hdf5plugin
import numcodecs
import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec, ZstdCodec

import lazyastro
from lazyastro.core import filecache
from lazyastro.core.errors import FormatError, LazyAstroError, ParameterError
from lazyastro.core.execution import compute
from lazyastro.io.hdf5 import DirectHDF5Reader, open_hdf5, storage_layout
from lazyastro.io.zarr import DirectZarrReader, direct_layout, open_zarr

REGIONS_3D = [
    (slice(0, 7), slice(0, 33), slice(0, 21)),
    (slice(2, 5), slice(3, 30), slice(4, 9)),
    (slice(6, 7), slice(32, 33), slice(20, 21)),
    (slice(1, 2), slice(0, 33), slice(0, 21)),
    (slice(0, 7), slice(5, 6), slice(0, 3)),
]


@pytest.fixture
def cube():
    return np.random.default_rng(3).integers(0, 60000, size=(7, 33, 21)).astype("<u2")


def _reader(data):
    """The one reader object behind a lazily opened array."""
    found = [v for v in data.dask.values() if isinstance(getattr(v, "value", v), DirectZarrReader | DirectHDF5Reader)]
    return getattr(found[0], "value", found[0]) if found else None


# --------------------------------------------------------------------------- file cache


def test_file_cache_closes_the_least_recently_used_file(tmp_path):
    old = filecache.maxsize()
    filecache.close_all()
    try:
        filecache.set_maxsize(2)
        files = []
        for i in range(3):
            with h5py.File(tmp_path / f"{i}.h5", "w") as f:
                f["a"] = np.arange(4) + i
            files.append(str(tmp_path / f"{i}.h5"))
        handles = [filecache.CachedFile(p, "h5").get() for p in files]
        assert filecache.open_count() == 2
        assert not handles[0].id.valid and handles[1].id.valid and handles[2].id.valid
        # the same file again: the cached handle, not a new one
        assert filecache.CachedFile(files[2], "h5").get() is handles[2]
        np.testing.assert_array_equal(filecache.CachedFile(files[0], "h5").get()["a"][()], np.arange(4))
        assert not handles[1].id.valid  # least recently used now
    finally:
        filecache.set_maxsize(old)
        filecache.close_all()
    assert filecache.open_count() == 0


def test_a_file_in_use_is_closed_only_when_released(tmp_path):
    old = filecache.maxsize()
    filecache.close_all()
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"aaaa")
    b.write_bytes(b"bbbb")
    try:
        filecache.set_maxsize(1)
        with filecache.cached_fd(a) as fa:
            with filecache.cached_fd(b) as fb:
                assert os.pread(fb, 2, 0) == b"bb"
                assert os.pread(fa, 2, 0) == b"aa"  # evicted but pinned: still open
            assert filecache.open_count() == 2
        assert filecache.open_count() == 1
    finally:
        filecache.set_maxsize(old)
        filecache.close_all()


def test_a_rewritten_file_gets_a_fresh_handle(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"first")
    with filecache.cached_fd(path) as fd:
        assert os.pread(fd, 5, 0) == b"first"
    tmp = tmp_path / "x.tmp"
    tmp.write_bytes(b"second!")
    os.replace(tmp, path)  # a new inode and size
    with filecache.cached_fd(path) as fd:
        assert os.pread(fd, 7, 0) == b"second!"
    assert filecache.CachedFile(path) == pickle.loads(pickle.dumps(filecache.CachedFile(path)))
    with pytest.raises(ValueError, match="at least one"):
        filecache.set_maxsize(0)
    with pytest.raises(ValueError, match="unknown kind"):
        filecache.CachedFile(path, "zip")


def test_fits_reads_see_a_replaced_file(tmp_path):
    path = tmp_path / "img.fits"
    lazyastro.to_fits(np.zeros((8, 8), "f4"), path, progress=False)
    assert float(lazyastro.open_fits(path).sum()) == 0
    lazyastro.to_fits(np.ones((8, 8), "f4"), path, overwrite=True, progress=False)
    assert float(lazyastro.open_fits(path).sum()) == 64


def test_read_box_dense_sparse_and_exact(tmp_path):
    a = np.arange(4 * 50 * 300, dtype="<f4").reshape(4, 50, 300)
    path = tmp_path / "box.bin"
    path.write_bytes(bytes(100) + a.tobytes())
    boxes = [(slice(0, 4), slice(0, 50), slice(0, 300)), (slice(1, 2), slice(3, 40), slice(0, 300)),
             (slice(0, 4), slice(0, 50), slice(7, 9)), (slice(2, 4), slice(10, 11), slice(5, 290))]
    with filecache.cached_fd(path) as fd:
        for box in boxes:
            out = np.empty(tuple(s.stop - s.start for s in box), a.dtype)
            filecache.read_box(fd, 100, a.shape, box, out)
            np.testing.assert_array_equal(out, a[box], err_msg=str(box))
        # into a non-contiguous destination
        big = np.zeros((4, 50, 600), a.dtype)
        filecache.read_box(fd, 100, a.shape, boxes[0], big[:, :, ::2])
        np.testing.assert_array_equal(big[:, :, ::2], a)
        with pytest.raises(EOFError):
            filecache.read_box(fd, 200, a.shape, boxes[0], np.empty(a.shape, a.dtype))


# --------------------------------------------------------------------------- zarr


@pytest.mark.parametrize("fmt", [2, 3])
@pytest.mark.parametrize("codec", ["blosc", "none"])
def test_zarr_direct_matches_zarr(tmp_path, cube, fmt, codec):
    path = tmp_path / "c.zarr"
    if codec == "none":
        comp = None
    else:
        comp = numcodecs.Blosc(cname="lz4", shuffle=1) if fmt == 2 else BloscCodec(cname="lz4", shuffle="shuffle")
    z = zarr.create_array(str(path), shape=cube.shape, dtype=cube.dtype, chunks=(3, 8, 5), zarr_format=fmt,
                          fill_value=9, compressors=comp)
    z[:] = cube
    z[3:6, 8:16, 5:10] = 9  # the fill value everywhere: zarr writes no chunk file
    ref = np.array(z[:])
    fast = open_zarr(path, chunks=(2, 11, 7))
    assert isinstance(_reader(fast.data), DirectZarrReader)
    slow = open_zarr(path, chunks=(2, 11, 7), direct=False)
    assert _reader(slow.data) is None
    np.testing.assert_array_equal(fast.values, ref)
    np.testing.assert_array_equal(slow.values, ref)
    reader = _reader(fast.data)
    for key in REGIONS_3D:
        np.testing.assert_array_equal(reader[key], ref[key], err_msg=str(key))
    assert fast.dims == slow.dims


@pytest.mark.parametrize("shape,chunks", [((50,), (7,)), ((13, 9), (4, 4)), ((3, 4, 5, 6), (2, 3, 2, 4))])
def test_zarr_direct_any_dimension(tmp_path, shape, chunks):
    a = np.random.default_rng(1).normal(size=shape).astype("f8")
    lazyastro.to_zarr(a, tmp_path / "n.zarr", chunks=chunks, progress=False)
    arr = open_zarr(tmp_path / "n.zarr")
    assert isinstance(_reader(arr.data), DirectZarrReader)
    np.testing.assert_array_equal(arr.values, a)


def test_zarr_layouts_left_to_zarr(tmp_path, cube):
    def make(name, **kw):
        z = zarr.create_array(str(tmp_path / name), shape=cube.shape, dtype=cube.dtype, chunks=(1, 11, 21), **kw)
        z[:] = cube
        return z

    left = {
        "sharded.zarr": {"shards": (7, 11, 21)},
        "zstd.zarr": {"compressors": ZstdCodec()},
        "crc.zarr": {"compressors": (BloscCodec(cname="lz4"), Crc32cCodec())},
        "transposed.zarr": {"filters": TransposeCodec(order=(0, 2, 1))},
        "bigendian.zarr": {"serializer": BytesCodec(endian="big"), "compressors": None},
    }
    for name, kw in left.items():
        z = make(name, **kw)
        assert direct_layout(z, tmp_path / name) is None, name
        arr = open_zarr(tmp_path / name)
        assert _reader(arr.data) is None, name
        np.testing.assert_array_equal(arr.values, cube, err_msg=name)


def test_zarr_direct_bad_chunk_is_a_format_error(tmp_path, cube):
    path = tmp_path / "bad.zarr"
    lazyastro.to_zarr(cube, path, chunks=(1, 33, 21), progress=False)
    arr = open_zarr(path)
    (path / "c" / "3" / "0" / "0").write_bytes(b"\x02\x01\x21\x02" + (10**6).to_bytes(4, "little") + bytes(8))
    with pytest.raises(FormatError, match="bad.zarr") as err:
        compute(arr.data.sum(), scheduler="sync", progress=False)
    assert "chunk (3, 0, 0)" in str(err.value)
    with pytest.raises(ParameterError, match="direct"):
        open_zarr(path, direct="always")


def test_zarr_direct_under_every_scheduler(tmp_path, cube, scheduler):
    lazyastro.to_zarr(cube, tmp_path / "s.zarr", chunks=(2, 8, 21), progress=False)
    arr = open_zarr(tmp_path / "s.zarr", chunks=(3, 16, 21))
    (total,) = compute(arr.data.astype("f8").sum(), scheduler=scheduler, progress=False)
    assert total == cube.astype("f8").sum()


# --------------------------------------------------------------------------- hdf5


HDF5_LAYOUTS = {
    "contiguous": ({}, "contiguous", None),
    "chunked": ({"chunks": (2, 8, 21)}, "chunked", None),
    "edge-chunks": ({"chunks": (3, 5, 4)}, "chunked", None),
    "blosc": ({"chunks": (2, 8, 5), **hdf5plugin.Blosc(cname="lz4", shuffle=hdf5plugin.Blosc.SHUFFLE)},
              "chunked", "blosc"),
    "gzip": ({"chunks": (2, 8, 5), "compression": "gzip"}, None, None),
}


@pytest.mark.parametrize("layout", list(HDF5_LAYOUTS))
def test_hdf5_direct_matches_h5py(tmp_path, cube, layout):
    kw, kind, codec = HDF5_LAYOUTS[layout]
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("cube", data=cube, **kw)
        lay = storage_layout(f["cube"])
    assert (lay or {}).get("kind") == kind
    if lay:
        assert lay.get("codec") == codec
    fast = open_hdf5(path, "cube", chunks=(2, 11, 7))
    slow = open_hdf5(path, "cube", chunks=(2, 11, 7), direct=False)
    assert (_reader(fast.data) is not None) == (kind is not None)
    assert _reader(slow.data) is None
    np.testing.assert_array_equal(fast.values, cube)
    np.testing.assert_array_equal(slow.values, cube)
    if lay:
        reader = _reader(fast.data)
        for key in REGIONS_3D:
            np.testing.assert_array_equal(reader[key], cube[key], err_msg=str(key))


def test_hdf5_layouts_left_to_h5py(tmp_path, cube):
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", data=cube.astype(">u2"))  # big-endian
        f.create_dataset("sparse", shape=cube.shape, dtype="u2", chunks=(1, 33, 21))  # no chunk allocated
        f["sparse"][2] = cube[2]
        f.create_dataset("empty", shape=(4, 4), dtype="f4")  # contiguous, never written
    with h5py.File(path) as f:
        for name in ("big", "sparse", "empty"):
            assert storage_layout(f[name]) is None, name
    expect = {"big": cube, "sparse": np.where(np.arange(7)[:, None, None] == 2, cube, 0), "empty": np.zeros((4, 4))}
    for name, ref in expect.items():
        arr = open_hdf5(path, name)
        assert _reader(arr.data) is None
        np.testing.assert_array_equal(arr.values, ref, err_msg=name)


def test_written_hdf5_is_read_directly_under_every_scheduler(tmp_path, cube, scheduler):
    lazyastro.to_hdf5(cube, tmp_path / "w.h5", "data", compression="blosc-lz4", chunks=(1, 16, 21),
                      progress=False)
    arr = open_hdf5(tmp_path / "w.h5", "data", chunks=(3, 33, 21))
    assert isinstance(_reader(arr.data), DirectHDF5Reader)
    pickle.loads(pickle.dumps(_reader(arr.data)))
    (total,) = compute(arr.data.astype("f8").sum(), scheduler=scheduler, progress=False)
    assert total == cube.astype("f8").sum()


def test_hdf5_direct_truncated_file_names_it(tmp_path, cube):
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("cube", data=cube)
    arr = open_hdf5(path, "cube")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 500)
    with pytest.raises(LazyAstroError, match="t.h5"):
        compute(arr.data.sum(), scheduler="sync", progress=False)


def test_hexrd_and_frame_readers_share_the_cache(tmp_path, cube):
    import lazyastro.frames as lf

    filecache.close_all()
    lf.write(cube, tmp_path / "s.h5", format="hexrd-hdf5", gzip=0)
    s = lf.open(tmp_path / "s.h5")
    np.testing.assert_array_equal(s.values, cube)
    assert filecache.open_count() >= 1
    lf.write(cube, tmp_path / "g.h5", format="hexrd-hdf5", gzip=1)
    np.testing.assert_array_equal(lf.open(tmp_path / "g.h5").values, cube)  # through h5py, cached
    filecache.close_all()
    assert filecache.open_count() == 0
