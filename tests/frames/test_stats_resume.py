"""`lazyastro frames stats` writes every statistic in one resumable pass (kill -9, then rerun)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import lazyastro
from lazyastro.core.atomic import partial_path
from lazyastro.core.stream import record_path

# The CLI in a subprocess, with every block write slowed down so it can be killed mid-way.
SLOW_CLI = textwrap.dedent(
    """
    import sys, time
    import lazyastro.io.fits_write as fw
    import lazyastro.io.hdf5_write as hw
    import lazyastro.io.zarr_write as zw

    for cls in (fw.FitsTarget, hw.HDF5Target, zw.ZarrTarget):
        def slow(self, *args, _orig=cls.write):
            time.sleep(0.2)
            return _orig(self, *args)
        cls.write = slow
    from lazyastro.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    d = tmp_path_factory.mktemp("stats-resume")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 4000, size=(12, 96, 64)).astype("u2")
    header = fits.Header()
    header["OBJECT"] = "resume test"
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    path = d / "cube.fits"
    fits.writeto(path, data, header)
    return path, data


@pytest.mark.parametrize("ext", ["fits", "h5", "zarr"])
def test_frames_stats_cli_resumes_after_kill_9(tmp_path, cube, ext):
    src, data = cube
    script = tmp_path / "slow_cli.py"
    script.write_text(SLOW_CLI)
    args = ["--no-progress", "--scheduler", "sync", "--memory-budget", "256KiB", "frames", "stats",
            str(src), "--stat", "max,mean,median,percentile:90"]
    ref, out = tmp_path / f"ref.{ext}", tmp_path / f"out.{ext}"
    # the script imports the same lazyastro as this test (not another installed copy)
    root = str(Path(lazyastro.__file__).resolve().parents[1])
    env = dict(os.environ, LAZYASTRO_PROGRESS="0", PYTHONPATH=root)
    subprocess.run([sys.executable, "-m", "lazyastro", *args, "--out", str(ref)], check=True, env=env,
                   timeout=300)

    proc = subprocess.Popen([sys.executable, str(script), *args, "--out", str(out)], env=env)
    record = record_path(out)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(record.glob("*.done"))) < 3:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(record.glob("*.done")))
    assert 3 <= done < 16 and not out.exists() and partial_path(out).exists()

    res = subprocess.run([sys.executable, str(script), *args, "--out", str(out)], env=env, timeout=300,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.exists() and not partial_path(out).exists() and not record.exists()
    ref_files = sorted(p for p in ref.rglob("*") if p.is_file()) if ref.is_dir() else [ref]
    out_files = sorted(p for p in out.rglob("*") if p.is_file()) if out.is_dir() else [out]
    assert len(ref_files) == len(out_files)
    for a, b in zip(ref_files, out_files):
        assert a.read_bytes() == b.read_bytes(), b
    if ext == "fits":
        with fits.open(out) as hdul:
            assert [h.name for h in hdul] == ["PRIMARY", "MAX", "MEAN", "MEDIAN", "PERCENTILE_90"]
            assert hdul[0].header["OBJECT"] == "resume test" and hdul["MEDIAN"].header["CTYPE1"] == "RA---TAN"
            np.testing.assert_array_equal(hdul["MAX"].data, data.max(axis=0))
            np.testing.assert_array_equal(hdul["MEDIAN"].data, np.median(data, axis=0).astype("f4"))


def test_frames_stats_refuses_an_existing_output_before_computing(tmp_path, cube):
    src, _ = cube
    out = tmp_path / "exists.fits"
    out.write_bytes(b"user data")
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "lazyastro", "frames", "stats", str(src), "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "already exists" in res.stderr and res.stderr.count("\n") == 1
    assert out.read_bytes() == b"user data" and time.time() - t0 < 60


def test_frames_stats_is_the_lazy_dataset_function(cube):
    import xarray as xr

    import lazyastro.frames as lf
    import lazyastro.frames.reductions  # noqa: F401  (the module of the single statistics)

    src, data = cube
    ds = lf.stats(lf.open(src), "max,median,percentile:90")
    assert isinstance(ds, xr.Dataset) and list(ds.data_vars) == ["max", "median", "percentile_90"]
    assert ds.attrs["header"]["OBJECT"] == "resume test" and ds.attrs["nframes"] == 12
    np.testing.assert_array_equal(ds["median"].values, np.median(data, axis=0).astype("f4"))
