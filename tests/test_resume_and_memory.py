"""Peak memory bounded by the budget, not the data size (kill -9 resume: tests/test_stream.py)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import lazyastro
from lazyastro.synthetic import deep_field_series

# ``import lazyastro`` is light, so the libraries a conversion uses are imported before the
# peak is reset: the measured peak is the data's, not the libraries' code.
PEAK = ("import sys; import dask.array, xarray, zarr, h5py, astropy.io.fits, astropy.wcs; "
        "import lazyastro.io.fits, lazyastro.io.zarr, lazyastro.io.hdf5; "
        "from lazyastro.core.memory import peak_rss, reset_peak_rss; reset_peak_rss(); "
        "from lazyastro.cli.main import main; rc = main(sys.argv[1:]); print('PEAK', peak_rss()); sys.exit(rc)")


def _peak(*args):
    res = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, LAZYASTRO_PROGRESS="0"))
    assert res.returncode == 0, res.stderr
    return int(res.stdout.split("PEAK")[-1])


@pytest.fixture(scope="module")
def big_series(tmp_path_factory):
    """A 256 MiB series: 8x the 32 MiB budget used below."""
    d = tmp_path_factory.mktemp("big")
    series = deep_field_series(16, 2048, 2048, seed=3, chunks=(1, 512, 2048))
    lazyastro.to_zarr(series, d / "series.zarr", progress=False)
    lazyastro.to_fits(series, d / "series.fits", progress=False)
    return d


@pytest.mark.parametrize("src,dst", [("series.zarr", "out.fits"), ("series.fits", "out.zarr"),
                                     ("series.fits", "out.h5")])
def test_conversion_peak_memory_bounded_by_budget(big_series, tmp_path, src, dst):
    data_bytes = 16 * 2048 * 2048 * 4
    baseline = _peak("formats")
    peak = _peak("--memory-budget", "32MiB", "convert", str(big_series / src), str(tmp_path / dst))
    assert peak - baseline < data_bytes / 2, f"peak {peak/2**20:.0f} MiB vs baseline {baseline/2**20:.0f} MiB"
    np.testing.assert_array_equal(
        lazyastro.open(tmp_path / dst)[5, 1000:1010].values, lazyastro.open(big_series / src)[5, 1000:1010].values
    )
