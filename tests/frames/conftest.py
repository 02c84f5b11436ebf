"""Shared fixtures for the frames tests: small series and one distributed cluster."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def dist_client():
    """One LocalCluster (2 worker processes) reused by every distributed test."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", memory_limit="1GiB")
    client = distributed.Client(cluster, set_as_default=False)  # never the session-wide default
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def mock_series():
    """Legacy mock: 10 frames of 4x4 float32, frame k filled with k."""
    return np.arange(10, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)


@pytest.fixture
def int_series():
    rng = np.random.default_rng(42)
    return rng.integers(0, 5000, size=(11, 13, 7)).astype(np.uint16)


@pytest.fixture
def float_series():
    rng = np.random.default_rng(7)
    return rng.normal(100.0, 20.0, size=(9, 10, 17)).astype(np.float32)
