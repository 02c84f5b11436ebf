"""The streaming writer engine: kill -9 resume for every format, Datasets, overwrite safety, errors."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

import dask.array as da
import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from astropy.io import fits
from dask.delayed import Delayed

import lazyastro
from lazyastro.core.atomic import partial_path
from lazyastro.core.stream import OutputWriteError, RegionRecord, ResumeMismatchError, record_path

WRITER = textwrap.dedent(
    """
    import os, sys, time
    import dask.array as da
    import numpy as np
    import lazyastro

    def block(block_info=None):
        (f0, f1), (y0, y1), (x0, x1) = block_info[None]["array-location"]
        if os.environ.get("SLOW"):
            time.sleep(0.15)
        if os.environ.get("BLOCK_LOG"):
            with open(os.environ["BLOCK_LOG"], "a") as log:
                log.write(f"{f0},{y0}\\n")
        f, y, x = np.meshgrid(np.arange(f0, f1), np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
        return ((f * 7919 + y * 104729 + x * 31) % 65521).astype("float32")

    if __name__ == "__main__":
        fmt, out = sys.argv[1], sys.argv[2]
        data = da.map_blocks(block, chunks=((1,) * 12, (32,) * 4, (64,)), dtype="float32",
                             meta=np.empty((0, 0, 0), "float32"), name="resume-source")
        if fmt == "fits":
            lazyastro.to_fits(data, out, scheduler="sync", progress=False)
        elif fmt == "hdf5":
            lazyastro.to_hdf5(data, out, "cube", compression="gzip", chunks=(1, 32, 64),
                              scheduler="sync", progress=False)
        else:
            lazyastro.to_zarr(data, out, chunks=(1, 16, 64), shards=(1, 32, 64), scheduler="sync",
                              progress=False)
    """
)


def _files(root):
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]


@pytest.mark.parametrize("fmt,name", [("fits", "out.fits"), ("hdf5", "out.h5"), ("zarr", "out.zarr")])
def test_every_writer_resumes_after_kill_9_to_identical_bytes(tmp_path, fmt, name):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ref, out = tmp_path / f"ref-{name}", tmp_path / name
    subprocess.run([sys.executable, str(script), fmt, str(ref)], check=True, timeout=120)

    proc = subprocess.Popen([sys.executable, str(script), fmt, str(out)], env=dict(os.environ, SLOW="1"))
    record = record_path(out)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(record.glob("*.done"))) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(record.glob("*.done")))
    assert 10 <= done_before < 48, "writer was not interrupted mid-way"
    assert not out.exists(), "an interrupted write must not look complete"

    log = tmp_path / "blocks.log"
    subprocess.run([sys.executable, str(script), fmt, str(out)], env=dict(os.environ, BLOCK_LOG=str(log)),
                   check=True, timeout=120)
    # only the missing blocks were computed
    assert len(log.read_text().split()) == 48 - done_before
    assert out.exists() and not partial_path(out).exists() and not record.exists()
    ref_files, out_files = _files(ref), _files(out)
    assert [p.relative_to(ref) for p in ref_files if ref.is_dir()] == \
        [p.relative_to(out) for p in out_files if out.is_dir()]
    for a, b in zip(ref_files, out_files):
        assert a.read_bytes() == b.read_bytes(), b


def _dataset():
    rng = np.random.default_rng(1)
    a = da.from_array(rng.normal(size=(40, 30)).astype("f4"), chunks=(16, 30))
    b = da.from_array(rng.integers(0, 60000, size=(40, 30)).astype("u2"), chunks=(8, 30))
    return xr.Dataset({"mean": (("y", "x"), a, {"OBJECT": "M31"}), "max": (("y", "x"), b)},
                      attrs={"TELESCOP": "HST"})


def test_dataset_to_fits_is_one_mef(tmp_path, scheduler):
    ds = _dataset()
    path = lazyastro.to_fits(ds, tmp_path / f"s-{scheduler[:5]}.fits", scheduler=scheduler, progress=False)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MEAN", "MAX"]
        assert hdul[0].header["TELESCOP"] == "HST" and hdul[1].header["OBJECT"] == "M31"
        np.testing.assert_array_equal(hdul["MEAN"].data, ds["mean"].values)
        np.testing.assert_array_equal(hdul["MAX"].data, ds["max"].values)
        assert hdul["MAX"].data.dtype == np.uint16
    ref = lazyastro.to_fits(ds, tmp_path / "ref.fits", scheduler="sync", progress=False)
    assert open(path, "rb").read() == open(ref, "rb").read()


def test_dataset_to_zarr_group_and_hdf5(tmp_path, scheduler):
    ds = _dataset()
    z = lazyastro.to_zarr(ds, tmp_path / "s.zarr", scheduler=scheduler, progress=False)
    group = zarr.open_group(z, mode="r")
    assert sorted(dict(group.arrays())) == ["max", "mean"] and group.attrs["TELESCOP"] == "HST"
    np.testing.assert_array_equal(group["max"][...], ds["max"].values)
    assert tuple(group["mean"].metadata.dimension_names) == ("y", "x")
    h = lazyastro.to_hdf5(ds, tmp_path / "s.h5", scheduler=scheduler, progress=False)
    with h5py.File(h, "r") as f:
        np.testing.assert_array_equal(f["mean"][...], ds["mean"].values)
        np.testing.assert_array_equal(f["max"][...], ds["max"].values)


def test_shared_reads_are_computed_once_for_a_dataset(tmp_path):
    calls = []

    def source(block_info=None):
        calls.append(block_info[None]["chunk-location"])
        return np.ones((10, 10), "f4")

    base = da.map_blocks(source, chunks=((10,) * 3, (10,)), dtype="f4", meta=np.empty((0, 0), "f4"))
    ds = xr.Dataset({"a": (("y", "x"), base + 1), "b": (("y", "x"), base * 2)})
    lazyastro.to_fits(ds, tmp_path / "shared.fits", scheduler="sync", progress=False)
    assert len(calls) == 3


def test_overwrite_never_replaces_another_kind_of_output(tmp_path):
    user_dir = tmp_path / "mydata"
    user_dir.mkdir()
    (user_dir / "precious.txt").write_text("keep me")
    for writer in (lazyastro.to_fits, lazyastro.to_hdf5, lazyastro.to_zarr):
        with pytest.raises(lazyastro.OutputExistsError, match="refusing to replace"):
            writer(np.zeros((4, 4), "f4"), user_dir, overwrite=True, progress=False)
    assert (user_dir / "precious.txt").read_text() == "keep me"
    plain = tmp_path / "notes.zarr"
    plain.mkdir()
    with pytest.raises(lazyastro.OutputExistsError):
        lazyastro.to_zarr(np.zeros((4, 4)), plain, overwrite=True, progress=False)
    # the same format is replaced
    z = lazyastro.to_zarr(np.zeros((4, 4)), tmp_path / "a.zarr", progress=False)
    lazyastro.to_zarr(np.ones((4, 4)), z, overwrite=True, progress=False)
    assert lazyastro.open_zarr(z).values.sum() == 16


def test_a_mismatched_unfinished_write_is_refused(tmp_path):
    out = tmp_path / "x.zarr"
    a = da.ones((8, 8), chunks=4)
    lazyastro.to_zarr(a, out, progress=False)
    # fake an interrupted write of *other* data
    os.replace(out, partial_path(out))
    RegionRecord(record_path(out)).start({"other": "job"})
    with pytest.raises(ResumeMismatchError, match="other data or parameters"):
        lazyastro.to_zarr(a * 2, out, progress=False)
    lazyastro.to_zarr(a * 2, out, overwrite=True, progress=False)
    assert lazyastro.open_zarr(out).values.sum() == 128


def test_zarr_resume_removes_zarr_temporary_files(tmp_path):
    out = tmp_path / "t.zarr"
    data = da.arange(64, chunks=16, dtype="i4").reshape(8, 8).rechunk((2, 8))
    lazyastro.to_zarr(data, out, compute=False, progress=False)  # creates the partial store only
    leftover = partial_path(out) / "c" / "0" / "0.0123abcd.partial"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"garbage")
    lazyastro.to_zarr(data, out, progress=False)
    assert not any(p.name.endswith(".partial") for p in out.rglob("*"))
    np.testing.assert_array_equal(lazyastro.open_zarr(out).values, data.compute())


@pytest.mark.parametrize("writer,name", [(lazyastro.to_fits, "l.fits"), (lazyastro.to_zarr, "l.zarr"),
                                         (lazyastro.to_hdf5, "l.h5")])
def test_compute_false_returns_the_lazy_store(tmp_path, writer, name):
    data = da.arange(100, dtype="f4").reshape(10, 10).rechunk(5)
    lazy = writer(data, tmp_path / name, compute=False, progress=False)
    assert isinstance(lazy, Delayed) and not (tmp_path / name).exists()
    assert lazy.compute(scheduler="threads") == str(tmp_path / name)
    np.testing.assert_array_equal(lazyastro.open(tmp_path / name).values, data.compute())


def test_in_memory_input_is_written_without_rechunking_copies(tmp_path):
    arr = np.arange(3 * 50 * 40, dtype="u2").reshape(3, 50, 40)
    a = lazyastro.to_fits(arr, tmp_path / "mem.fits", progress=False)
    b = lazyastro.to_fits(da.from_array(arr, chunks=(1, 7, 40)), tmp_path / "dask.fits", progress=False)
    assert open(a, "rb").read() == open(b, "rb").read()
    np.testing.assert_array_equal(fits.getdata(a), arr)


def test_disk_full_is_one_line_and_says_what_is_kept(tmp_path, monkeypatch):
    import lazyastro.io.fits_write as fw

    def full(fd, data, pos):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fw.os, "pwrite", full)
    data = da.ones((8, 8), chunks=4, dtype="f4")
    with pytest.raises(OutputWriteError, match="no space left.*rerun the same command to resume") as info:
        lazyastro.to_fits(data, tmp_path / "full.fits", scheduler="sync", progress=False)
    assert "\n" not in str(info.value) and str(tmp_path / "full.fits") in str(info.value)
    assert partial_path(tmp_path / "full.fits").exists() and not (tmp_path / "full.fits").exists()
    monkeypatch.undo()
    lazyastro.to_fits(data, tmp_path / "full.fits", scheduler="sync", progress=False)
    np.testing.assert_array_equal(fits.getdata(tmp_path / "full.fits"), np.ones((8, 8)))


def test_hdf5_checks_free_space_before_writing(tmp_path, monkeypatch):
    import shutil as sh

    import lazyastro.io.hdf5_write as hw

    real = sh.disk_usage
    monkeypatch.setattr(hw.shutil, "disk_usage", lambda p: real(p)._replace(free=1024))
    with pytest.raises(OutputWriteError, match="no space left"):
        lazyastro.to_hdf5(da.ones((8, 8), chunks=4), tmp_path / "f.h5", scheduler="sync", progress=False)
    assert not (tmp_path / "f.h5").exists()


def test_compressed_fits_output_is_refused(tmp_path):
    with pytest.raises(lazyastro.ParameterError, match="compressed FITS"):
        lazyastro.to_fits(np.zeros((4, 4), "f4"), tmp_path / "x.fits.fz", progress=False)
    assert not list(tmp_path.iterdir())


def test_hdf5_output_bytes_do_not_depend_on_the_time_of_writing(tmp_path):
    import lazyastro

    data = np.arange(24, dtype="f4").reshape(4, 6)
    lazyastro.to_hdf5(data, tmp_path / "a.h5")
    time.sleep(1.1)  # HDF5 object timestamps have one-second resolution
    lazyastro.to_hdf5(data, tmp_path / "b.h5")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


@pytest.mark.parametrize("compression,chunks", [("none", None), ("gzip", (5, 40))])
def test_hdf5_interrupted_inside_a_block_resumes_to_identical_bytes(tmp_path, monkeypatch, compression, chunks):
    """A Dataset write that dies halfway through a block (HDF5 chunks aligned or not) resumes to the same bytes."""
    import lazyastro.io.hdf5_write as hw

    def block(block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"]
        y, x = np.meshgrid(np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
        return ((y * 7919 + x * 104729) % 65521).astype("f8")

    data = da.map_blocks(block, chunks=((3,) * 12, (40,)), dtype="f8", meta=np.empty((0, 0)), name="h5-src")
    ds = xr.Dataset({"a": (("y", "x"), data, {"unit": "adu"}), "b": (("y", "x"), (data * 2).astype("f4"))})
    kw = dict(compression=compression, chunks=chunks, scheduler="sync", progress=False)
    ref = lazyastro.to_hdf5(ds, tmp_path / "ref.h5", **kw)
    real, calls = hw.HDF5Target.write, []

    def dying(self, tmp, vi, region, blk):
        calls.append(1)
        if len(calls) == 7:  # block 7 of 24: one of its three rows written, then the job dies
            real(self, tmp, vi, (slice(region[0].start, region[0].start + 1), region[1]), blk[:1])
            raise RuntimeError("killed")
        real(self, tmp, vi, region, blk)

    monkeypatch.setattr(hw.HDF5Target, "write", dying)
    out = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="killed"):
        lazyastro.to_hdf5(ds, out, **kw)
    assert partial_path(out).exists()
    monkeypatch.undo()
    lazyastro.to_hdf5(ds, out, **kw)
    assert out.read_bytes() == open(ref, "rb").read()
