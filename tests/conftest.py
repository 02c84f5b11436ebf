"""Shared fixtures: a distributed LocalCluster, scheduler parametrisation, small arrays."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("LAZYASTRO_PROGRESS", "0")  # keep test output readable

SCHEDULERS = ["sync", "threads", "processes", "distributed"]


@pytest.fixture(scope="session")
def dask_cluster_address():
    """Address of a LocalCluster(processes=True, n_workers=2) shared by the whole session."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(params=SCHEDULERS)
def scheduler(request):
    """Each scheduler name; ``distributed`` becomes the tcp:// address of the shared cluster."""
    if request.param == "distributed":
        return request.getfixturevalue("dask_cluster_address")
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m lazyastro ARGS`` in a fresh process."""
    full_env = dict(os.environ, LAZYASTRO_PROGRESS="0", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "lazyastro", *args], capture_output=True, text=True, env=full_env,
        timeout=timeout, check=False,
    )


@pytest.fixture(autouse=True, scope="module")
def _fresh_process_pool():
    """Each test module gets its own pool for scheduler='processes' (no worker state carried over)."""
    yield
    from lazyastro.core import execution

    execution._reset_process_pool()


@pytest.fixture(params=[False, True], ids=["h5py-default", "h5py-track-order"])
def h5py_track_order(request):
    """Runs a test with h5py's global ``track_order`` off (its default) and on (then every
    ``h5py.File(..., "w")`` and ``create_group`` without ``track_order=`` time-stamps its group)."""
    import h5py

    config = h5py.get_config()
    before = config.track_order
    config.track_order = request.param
    try:
        yield request.param
    finally:
        config.track_order = before
