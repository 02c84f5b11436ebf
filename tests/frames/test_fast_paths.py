"""Fast paths: direct HDF5/Zarr reads, fold reductions, bounded memory, registry priority."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

import lazyastro.frames as lf
from lazyastro.core.config import set_options
from lazyastro.core.execution import compute
from lazyastro.frames import kernels
from lazyastro.frames.formats.hexrd_hdf5 import HexrdHDF5Backend
from lazyastro.frames.formats.zarr_direct import ZarrDirectBackend, direct_layout

ROOT = Path(__file__).resolve().parents[2]
REGIONS = [
    (slice(0, 11), slice(None), slice(None)),
    (slice(2, 9), slice(3, 12), slice(None)),
    (slice(4, 5), slice(0, 1), slice(2, 6)),
    (slice(1, 10), slice(1, 13, 3), slice(0, 7, 2)),
    (slice(10, 11), slice(12, 13), slice(6, 7)),
    (3, slice(5, 9), slice(None)),
]


def _backend(series):
    nodes = [getattr(v, "value", v) for v in series.data.dask.values()]
    (be,) = [v for v in nodes if isinstance(v, lf.series.Backend)]
    return be


@pytest.mark.parametrize("layout", ["frames", "row-chunks", "contiguous", "gzip"])
def test_hdf5_direct_reads_match_h5py(tmp_path, int_series, layout):
    path = tmp_path / "s.h5"
    if layout == "contiguous":
        with h5py.File(path, "w") as h5:
            h5.create_dataset("imageseries/images", data=int_series)
    else:
        lf.write(int_series, path, format="hexrd-hdf5", gzip=1 if layout == "gzip" else 0,
                 chunk_rows=5 if layout == "row-chunks" else None)
    s = lf.open(path)
    be = _backend(s)
    assert (be.raw is None) == (layout == "gzip")
    slow = lf.open(path, direct=False)
    assert _backend(slow).raw is None
    for key in REGIONS:
        np.testing.assert_array_equal(be[key], int_series[key], err_msg=str(key))
        np.testing.assert_array_equal(s.data[key].compute(), int_series[key], err_msg=str(key))
    # direct reads are private, writable arrays; the file is never changed
    for block in (be[0:3], be[0:3, 2:6]):  # whole frames are memory-mapped, row bands read
        block += 1
    np.testing.assert_array_equal(lf.open(path).values, int_series)
    np.testing.assert_array_equal(lf.max(s).values, int_series.max(0))


def test_hdf5_direct_two_d_dataset(tmp_path):
    img = np.arange(35, dtype="u2").reshape(5, 7)
    with h5py.File(tmp_path / "one.h5", "w") as h5:
        h5.create_dataset("imageseries/images", data=img, chunks=(5, 7))
    s = lf.open(tmp_path / "one.h5")
    assert _backend(s).raw is not None
    np.testing.assert_array_equal(s.values[0], img)


def test_hdf5_pread_fallback_for_unevenly_placed_chunks(tmp_path, int_series):
    path = tmp_path / "s.h5"
    lf.write(int_series, path, format="hexrd-hdf5", gzip=0)
    be = _backend(lf.open(path))
    rc, offsets = be.raw
    swapped = offsets.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # frames stored out of order: not evenly strided
    odd = HexrdHDF5Backend(path, "imageseries", "images", be.shape, be.dtype, False, raw=(rc, swapped))
    ref = int_series.copy()
    ref[[0, 1]] = ref[[1, 0]]
    for key in REGIONS:
        np.testing.assert_array_equal(odd[key], ref[key], err_msg=str(key))


@pytest.mark.parametrize("fmt", [2, 3])
def test_zarr_direct_reads_match_zarr(tmp_path, int_series, fmt):
    path = tmp_path / "s.zarr"
    import numcodecs
    from zarr.codecs import BloscCodec

    comp = numcodecs.Blosc(cname="lz4") if fmt == 2 else BloscCodec(cname="lz4", shuffle="shuffle")
    z = zarr.create_array(str(path), shape=int_series.shape, dtype=int_series.dtype, chunks=(3, 5, 4),
                          zarr_format=fmt, fill_value=7, compressors=comp)
    z[:] = int_series
    z[3:6, 5:10, 4:7] = 7  # all fill value: zarr does not write the chunk
    ref = np.array(z[:])
    s = lf.open(path)
    assert isinstance(_backend(s), ZarrDirectBackend)
    assert s.data.chunks[1][0] == 5 and s.data.chunks[2][0] == 4
    for key in REGIONS:
        np.testing.assert_array_equal(s.data[key].compute(), ref[key], err_msg=str(key))
    slow = lf.open(path, direct=False)
    np.testing.assert_array_equal(lf.median(s).values, lf.median(slow).values)
    np.testing.assert_array_equal(lf.max(s).values, ref.max(0))


def test_zarr_written_by_lazyastro_is_read_directly_and_sharded_is_not(tmp_path, float_series):
    lf.write(float_series, tmp_path / "a.zarr", chunks=(4, 5, 17))
    s = lf.open(tmp_path / "a.zarr")
    assert isinstance(_backend(s), ZarrDirectBackend)
    np.testing.assert_array_equal(s.values, float_series)
    z = zarr.create_array(str(tmp_path / "sh.zarr"), shape=float_series.shape, dtype=float_series.dtype,
                          chunks=(1, 5, 17), shards=(3, 5, 17))
    z[:] = float_series
    assert direct_layout(zarr.open_array(str(tmp_path / "sh.zarr")), tmp_path / "sh.zarr") is None
    np.testing.assert_array_equal(lf.open(tmp_path / "sh.zarr").values, float_series)
    # zarr's default compressor (zstd) is left to zarr too
    z = zarr.create_array(str(tmp_path / "zs.zarr"), shape=float_series.shape, dtype=float_series.dtype,
                          chunks=(3, 5, 17))
    z[:] = float_series
    assert direct_layout(zarr.open_array(str(tmp_path / "zs.zarr")), tmp_path / "zs.zarr") is None
    np.testing.assert_array_equal(lf.median(lf.open(tmp_path / "zs.zarr")).values,
                                  np.median(float_series, 0).astype("f4"))


def test_fold_kernels():
    a = np.array([[[1.0, np.nan]], [[3.0, 2.0]], [[np.nan, 5.0]]])
    np.testing.assert_array_equal(kernels.fold_step("max", None, a), np.max(a, 0))
    np.testing.assert_array_equal(kernels.fold_step("nanmax", kernels.fold_step("nanmax", None, a[:1]), a[1:]),
                                  np.nanmax(a, 0))
    np.testing.assert_array_equal(kernels.fold_step("nanmin", kernels.fold_step("nanmin", None, a[:2]), a[2:]),
                                  np.nanmin(a, 0))
    np.testing.assert_array_equal(kernels.fold_step("nansum", kernels.fold_step("nansum", None, a[:1]), a[1:]),
                                  np.nansum(a, 0))
    parts = [kernels.fold_step("sum", None, a[i : i + 1]) for i in range(3)]
    np.testing.assert_array_equal(kernels.fold_finish("nansum", *parts, divide=3, dtype="f4"),
                                  (np.sum(a, 0) / 3).astype("f4"))
    with pytest.raises(ValueError, match="unknown fold"):
        kernels.fold_step("median", None, a)


@pytest.mark.parametrize("chunks", [(1, 13, 7), (2, 5, 7), (11, 13, 7)])
def test_fold_stats_leave_the_input_alone_and_match_numpy(int_series, chunks):
    a = int_series.copy()
    s = lf.open(a, chunks=chunks)
    out = compute(lf.max(s).data, lf.min(s).data, lf.sum(s).data, lf.mean(s).data, lf.nansum(s).data,
                  scheduler="threads", progress=False)
    np.testing.assert_array_equal(a, int_series)
    np.testing.assert_array_equal(out[0], a.max(0))
    np.testing.assert_array_equal(out[1], a.min(0))
    np.testing.assert_array_equal(out[2], a.sum(0, dtype=np.float64))
    np.testing.assert_allclose(out[3], a.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(out[4], a.sum(0, dtype=np.float64))
    assert out[3].dtype == np.float32 and out[0].dtype == a.dtype


def test_fold_groups_and_band_kernel_with_thin_pieces():
    assert lf.reductions.fold_groups(10, 1, workers=4) == 4
    assert lf.reductions.fold_groups(10, 3, workers=4) == 2
    assert lf.reductions.fold_groups(3, 1, workers=8) == 3
    rng = np.random.default_rng(3)
    a = rng.integers(0, 50, size=(70, 3, 5)).astype("u2")
    pieces = [a[i : i + 1] for i in range(70)]
    np.testing.assert_array_equal(kernels.band_percentile([10, 50, 99], *pieces, dtype=np.float64),
                                  np.percentile(a, [10, 50, 99], axis=0))


_CHILD = textwrap.dedent("""
    import json, sys
    import dask
    import numpy as np
    import lazyastro.frames as lf
    from lazyastro.core.config import set_options
    from lazyastro.core.execution import compute
    from lazyastro.core.memory import current_rss, peak_rss, reset_peak_rss

    path, stat, variant, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with set_options(memory_budget=budget, scheduler="threads", progress=False), \\
            dask.config.set(num_workers=2):
        s = lf.open(path, direct=variant != "h5py")
        if variant == "dark":  # a processed series: stats read the file and subtract in one task
            s = lf.dark(s, np.zeros(s.shape[1:], s.dtype))
        if variant == "generic":  # any other dask array: the generic graphs (tree, spill)
            s = s.copy(data=s.data * 1)
        compute(getattr(lf, stat)(s.isel(y=slice(0, 4))).data)  # warm-up: first-use costs of the code path
        lazy = getattr(lf, stat)(s)  # the budget governs execution; the graph is built first
        base = current_rss()
        reset_peak_rss()
        (out,) = compute(lazy.data)
        print(json.dumps({"peak": peak_rss() - base, "sum": float(np.asarray(out, np.float64).sum())}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/clear_refs")
@pytest.mark.parametrize("stat,variant", [("mean", "direct"), ("mean", "h5py"), ("median", "direct"),
                                          ("median", "gzip"), ("median", "zarr"), ("mean", "dark"),
                                          ("median", "dark"), ("max", "generic"), ("mean", "generic"),
                                          ("median", "generic")])
def test_memory_bounded_on_hdf5(tmp_path, stat, variant):
    """Mean/median of a series 4x the budget stay within the budget (measured in a child).

    ``gzip`` (hexrd's default: one compressed frame per chunk) and ``zarr`` (LZ4 chunks
    taller than a band) take the spill plan; ``dark`` a processed series read through
    its reader; ``generic`` a dask array with no reader: a tree reduction, which holds
    about log2(blocks) partial images (allowed 2x the budget here; the series is 4x), and the spill plan.
    """
    nf, ny, nx = 48, 1024, 1024
    data = (np.arange(nf, dtype="u2")[:, None, None] + np.zeros((1, ny, nx), "u2"))
    if variant == "zarr":
        path = tmp_path / "s.zarr"
        lf.write(data, path, chunks=(16, 512, 512))
    else:
        path = tmp_path / "s.h5"
        lf.write_hexrd_hdf5(data, path, gzip=1 if variant == "gzip" else 0)
    budget = data.nbytes // 4  # 24 MiB
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, str(script), str(path), stat, variant, str(budget)],
                         capture_output=True, text=True, env=env, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    ref = {"mean": data.mean(0).sum(), "median": np.median(data, 0).sum(), "max": data.max(0).sum()}[stat]
    assert got["sum"] == pytest.approx(float(ref))
    if got["peak"] <= 0:
        pytest.skip("peak RSS reset not supported here")
    limit = budget * (2 if (stat, variant) == ("mean", "generic") else 1)
    assert got["peak"] < limit, f"{stat}: peak {got['peak'] / 2**20:.1f} MiB over a {budget / 2**20:.0f} MiB budget"


def test_generic_open_prefers_legacy_layouts(tmp_path, int_series):
    from lazyastro.io.registry import detect_format

    lf.write(int_series, tmp_path / "s.h5", format="hexrd-hdf5")
    with pytest.warns(UserWarning):
        lf.write(int_series, tmp_path / "c.fch5", threshold=0)
    assert detect_format(tmp_path / "s.h5") == "hexrd-hdf5"
    assert detect_format(tmp_path / "c.fch5") == "frame-cache-fch5"
    with set_options(progress=False):
        import lazyastro

        np.testing.assert_array_equal(lazyastro.open(tmp_path / "s.h5").values, int_series)
