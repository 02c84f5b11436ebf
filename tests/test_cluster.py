"""A real `dask scheduler` + two `dask worker` processes on loopback, driven through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

from lazyastro.cli.main import main
from tests.conftest import run_cli

DASK = shutil.which("dask")


@pytest.fixture(scope="module")
def tcp_cluster(tmp_path_factory):
    if DASK is None:
        pytest.skip("the 'dask' command is not installed")
    d = tmp_path_factory.mktemp("cluster")
    sched_file = d / "scheduler.json"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                 "--host", "127.0.0.1", "--memory-limit", "2GiB"], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster-data")
    data = np.random.default_rng(3).integers(0, 60000, size=(10, 64, 48)).astype("u2")
    fits.writeto(d / "cube.fits", data)
    return d / "cube.fits"


def _bytes(path):
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return path.read_bytes()


@pytest.mark.parametrize("out", ["conv.zarr", "conv.h5"])
def test_convert_on_a_tcp_cluster_matches_threads(tcp_cluster, cube, tmp_path, out):
    ref, dst = tmp_path / f"threads-{out}", tmp_path / out
    for sched, path in (("threads", ref), (tcp_cluster, dst)):
        assert main(["--no-progress", "--scheduler", sched, "--memory-budget", "1MiB", "convert", str(cube),
                     str(path)]) == 0
    assert _bytes(ref) == _bytes(dst)


def test_frames_stats_on_a_tcp_cluster_matches_threads(tcp_cluster, cube, tmp_path):
    stats = "max,mean,median,percentile:99"
    ref, dst = tmp_path / "threads.fits", tmp_path / "tcp.fits"
    for sched, out in (("threads", ref), (tcp_cluster, dst)):
        assert main(["--no-progress", "--scheduler", sched, "--memory-budget", "1MiB", "frames", "stats",
                     str(cube), "--stat", stats, "--out", str(out)]) == 0
    assert _bytes(ref) == _bytes(dst)


def test_an_unreachable_scheduler_is_a_user_error(cube, tmp_path):
    res = run_cli("--scheduler", "tcp://127.0.0.1:9", "convert", str(cube), str(tmp_path / "x.zarr"))
    assert res.returncode == 1
    assert "cannot reach a dask scheduler at tcp://127.0.0.1:9" in res.stderr
    assert res.stderr.count("\n") == 1 and not (tmp_path / "x.zarr").exists()


def test_a_script_without_main_guard_gets_a_clear_error(tmp_path):
    script = tmp_path / "noguard.py"
    script.write_text("import dask.array as da, lazyastro\n"
                      "lazyastro.compute(da.ones(10, chunks=5).sum(), scheduler='processes', progress=False)\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "if __name__ == \"__main__\":" in res.stderr.splitlines()[-1]
