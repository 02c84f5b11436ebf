"""Resume after kill -9, and peak memory bounded by the budget, not the data size."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import lazyastro
from lazyastro.core.atomic import partial_path
from lazyastro.synthetic import deep_field_series

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
        f, y, x = np.meshgrid(np.arange(f0, f1), np.arange(y0, y1), np.arange(x0, x1), indexing="ij")
        return ((f * 7919 + y * 104729 + x * 31) % 65521).astype("float32")

    if __name__ == "__main__":
        data = da.map_blocks(block, chunks=((1,) * 12, (32,) * 4, (64,)), dtype="float32",
                             meta=np.empty((0, 0, 0), "float32"), name="resume-source")
        lazyastro.to_zarr(data, sys.argv[1], chunks=(1, 16, 64), shards=(1, 32, 64),
                          scheduler="sync", progress=False)
    """
)


def test_to_zarr_resumes_after_kill_9(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ref, out = tmp_path / "ref.zarr", tmp_path / "out.zarr"
    subprocess.run([sys.executable, str(script), str(ref)], check=True, timeout=120)

    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=dict(os.environ, SLOW="1"))
    record = partial_path(out).with_name(partial_path(out).name + ".done")
    deadline = time.time() + 120
    while time.time() < deadline and len(list(record.glob("*.done"))) < 10:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = {p.name for p in record.glob("*.done")}
    assert 10 <= len(done_before) < 48, "writer was not interrupted mid-way"
    assert not out.exists(), "an interrupted write must not look complete"
    shard_files = {p: p.stat().st_mtime_ns for p in partial_path(out).rglob("c/*/*/*") if p.is_file()}

    subprocess.run([sys.executable, str(script), str(out)], check=True, timeout=120)
    assert out.exists() and not partial_path(out).exists() and not record.exists()
    # Shards finished before the kill were not rewritten.
    kept = [p for p in shard_files if (out / p.relative_to(partial_path(out))).exists()]
    rewritten = [p for p in kept if (out / p.relative_to(partial_path(out))).stat().st_mtime_ns != shard_files[p]]
    assert len(kept) >= 10 and len(rewritten) <= 1
    np.testing.assert_array_equal(lazyastro.open_zarr(out).values, lazyastro.open_zarr(ref).values)
    for f in sorted(p for p in ref.rglob("*") if p.is_file()):
        assert f.read_bytes() == (out / f.relative_to(ref)).read_bytes(), f


PEAK = ("import sys; from lazyastro.core.memory import peak_rss, reset_peak_rss; reset_peak_rss(); "
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
