import dask.array as da
import numpy as np
import pytest

import lazyastro.frames as lf
from lazyastro.core.config import set_options
from lazyastro.core.errors import ParameterError
from lazyastro.core.execution import cluster, compute

CHUNKINGS = [(1, 13, 7), (4, 5, 3), (11, 13, 7), (3, 6, 7)]


def _refs(a):
    return {
        "max": a.max(0), "min": a.min(0), "sum": a.sum(0, dtype=np.float64),
        "mean": a.mean(0, dtype=np.float64).astype(np.float32),
        "std": a.std(0, dtype=np.float64).astype(np.float32),
        "median": np.median(a, 0).astype(np.float32),
        "percentile": np.percentile(a, [0, 12.5, 99.5, 100], axis=0).astype(np.float32),
    }


def _lazy(s):
    return {
        "max": lf.max(s), "min": lf.min(s), "sum": lf.sum(s), "mean": lf.mean(s), "std": lf.std(s),
        "median": lf.median(s), "percentile": lf.percentile(s, [0, 12.5, 99.5, 100]),
    }


def _check(a, out):
    refs = _refs(a)
    for name, ref in refs.items():
        got = np.asarray(out[name])
        assert got.dtype == ref.dtype, name
        if name in ("mean", "std"):
            np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, ref, err_msg=name)


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("kind", ["int", "float"])
def test_stats_match_numpy_threads(int_series, float_series, kind, chunks):
    a = int_series if kind == "int" else float_series
    s = lf.open(a, chunks=tuple(min(c, n) for c, n in zip(chunks, a.shape)))
    # a tiny budget forces several row bands for the percentiles
    with set_options(memory_budget=3000):
        lazy = _lazy(s)
        assert len(lazy["median"].data.chunks[0]) > 1
    values = compute(*[v.data for v in lazy.values()], scheduler="threads", progress=False)
    _check(a, dict(zip(lazy, values)))


def test_stats_match_numpy_distributed(dist_client, int_series, float_series):
    for a in (int_series, float_series):
        s = lf.open(a, chunks=(4, 5, 7))
        with set_options(memory_budget=3000):
            lazy = _lazy(s)
        with cluster(address=dist_client.scheduler.address):
            values = compute(*[v.data for v in lazy.values()], progress=False)
        _check(a, dict(zip(lazy, values)))


def test_band_rows_follow_budget():
    a = np.zeros((10, 64, 32), np.uint16)
    with set_options(memory_budget=2**14):
        small = lf.median(a).attrs["band_rows"]
    with set_options(memory_budget=2**30):
        big = lf.median(a).attrs["band_rows"]
    assert small < big == 64
    assert lf.reductions.band_rows(200, 2048, 2048, 2, budget=512 * 2**20, workers=2) == 72


def test_band_reads_do_not_share_source_reads():
    """Each band reads only its own rows, even when computed together with a full reduction."""
    reads = []

    class Spy(lf.series.Backend):
        path, shape, dtype = "", (6, 8, 4), np.dtype("u2")

        def read_region(self, start, stop, rows, cols):
            reads.append((start, stop, rows))
            return np.arange(6 * 8 * 4, dtype="u2").reshape(self.shape)[start:stop, rows, cols]

    spy = Spy()
    spy.nonce = __import__("uuid").uuid4().hex  # fresh task keys: no result of another test is reused
    s = lf.series.from_backend(spy, chunks=(3, 8, 4))
    med = lf.median(s, band_bytes=2 * 6 * 4 * 2)  # two rows (of 6 frames x 4 columns x 2 bytes)
    assert med.attrs["band_rows"] == 2
    compute(med.data, lf.max(s).data, scheduler="sync", progress=False)
    band_reads = [r for r in reads if r[2] != slice(0, 8, None)]
    # straight from the reader: one read of all frames per band
    assert sorted(band_reads) == [(0, 6, slice(r, r + 2)) for r in (0, 2, 4, 6)]
    # (computed here with "sync": a session-wide distributed client would read in its workers)
    (got,) = compute(med.data, scheduler="sync", progress=False)
    np.testing.assert_array_equal(got, np.median(np.arange(6 * 8 * 4).reshape(6, 8, 4), 0))
    # the first frames (nframes) come straight from the reader too
    med5 = lf.median(s, nframes=5, band_bytes=2 * 5 * 4 * 2)
    assert med5.attrs["band_plan"] == "direct"
    (got,) = compute(med5.data, scheduler="sync", progress=False)
    np.testing.assert_array_equal(got, np.median(np.arange(6 * 8 * 4).reshape(6, 8, 4)[:5], 0))
    # a derived series: every frame block is read once, whatever the band count
    reads.clear()
    t = s.isel(frame=slice(1, 6))
    compute(lf.median(t, band_bytes=2 * 5 * 4 * 2).data, lf.max(t).data, scheduler="sync", progress=False)
    assert len(reads) == 2
    # the spill plan reads every block once too, then works from band-shaped tiles
    reads.clear()
    med = lf.median(s, band_bytes=2 * 6 * 4 * 2, plan="spill")
    assert med.attrs["band_plan"] == "spill"
    (got,) = compute(med.data, scheduler="sync", progress=False)
    np.testing.assert_array_equal(got, np.median(np.arange(6 * 8 * 4).reshape(6, 8, 4), 0))
    assert sorted(r[:2] for r in reads) == [(0, 3), (3, 6)]


@pytest.mark.parametrize("plan", ["direct", "rechunk", "spill"])
@pytest.mark.parametrize("chunks", [(1, 13, 7), (4, 5, 3)])
def test_every_band_plan_matches_numpy(tmp_path, int_series, float_series, plan, chunks):
    for a in (int_series, float_series):
        path = tmp_path / f"s-{a.dtype}.zarr"
        if not path.exists():
            lf.write(a, path, chunks=tuple(min(c, n) for c, n in zip(chunks, a.shape)))
        s = lf.open(path)
        for q in (50, [0, 12.5, 99.5, 100]):
            out = lf.percentile(s, q, band_bytes=2 * a.shape[0] * a.shape[2] * a.itemsize, plan=plan)
            assert out.attrs["band_plan"] == plan
            np.testing.assert_array_equal(out.values, np.percentile(a, q, axis=0).astype(np.float32))
        med = lf.nanmedian(lf.dark(s, np.zeros(a.shape[1:], a.dtype)), plan=None if plan == "direct" else plan)
        np.testing.assert_array_equal(med.values, np.nanmedian(a, 0).astype(np.float32))
    assert not list(tmp_path.glob("lazyastro-spill-*"))


def test_spill_plan_frees_its_tiles_and_checks_space(tmp_path, int_series, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    s = lf.open(int_series, chunks=(2, 13, 7))
    with set_options(memory_budget=2000):  # a computed series larger than the budget spills
        med = lf.median(s.data + 0)
    assert med.attrs["band_plan"] == "spill"
    np.testing.assert_array_equal(med.values, np.median(int_series, 0).astype(np.float32))
    assert list(tmp_path.iterdir()) == []
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 0))
    with pytest.raises(ParameterError, match="TMPDIR"):
        lf.median(s.data + 0, band_bytes=200, plan="spill")
    with pytest.raises(ParameterError, match="band plan"):
        lf.median(s, plan="bogus")
    with pytest.raises(ParameterError, match="straight from a reader"):
        lf.median(s.data + 0, plan="direct")


def test_legacy_mean_matches_sequential_float32():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**24, (9, 5, 6)).astype(np.uint32)
    acc = a[0].astype(np.float32)
    for frame in a[1:]:
        acc += frame
    ref = acc / len(a)
    for chunks in ((1, 5, 6), (4, 2, 6), (9, 5, 6)):
        out = lf.mean(lf.open(a, chunks=chunks), legacy=True).values
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(lf.mean(a).values, ref)  # float64 accumulation differs


def test_nan_variants(float_series):
    a = float_series.copy()
    a[2, 3, 4] = np.nan
    a[:, 0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        refs = {"nanmax": np.nanmax(a, 0), "nanmin": np.nanmin(a, 0), "nansum": np.nansum(a, 0, dtype=np.float64),
                "nanmedian": np.nanmedian(a, 0).astype(np.float32)}
    for name, ref in refs.items():
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(getattr(lf, name)(a).values, ref, err_msg=name)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(lf.nanmean(a).values, np.nanmean(a, 0), rtol=1e-6)
        np.testing.assert_allclose(lf.nanstd(a).values, np.nanstd(a, 0), rtol=1e-5)
        np.testing.assert_array_equal(lf.nanpercentile(a, 90).values,
                                      np.nanpercentile(a, 90, 0).astype(np.float32))
    assert np.isnan(lf.max(a).values[3, 4])  # the plain variants propagate NaN like the legacy tool
    assert np.isnan(lf.median(a).values[3, 4])


def test_nframes_and_raw_arrays(int_series):
    d = da.from_array(int_series, chunks=(2, 13, 7))
    np.testing.assert_array_equal(lf.max(d, nframes=3).values, int_series[:3].max(0))
    np.testing.assert_array_equal(lf.median(int_series, nframes=100).values,
                                  np.median(int_series, 0).astype(np.float32))
    assert lf.median(int_series[0]).shape == (13, 7)  # a 2-D array is one frame


@pytest.mark.parametrize("q", [-1, 100.5, np.nan, [10, 101], []])
def test_q_outside_range(q):
    with pytest.raises(ParameterError, match=r"q must"):
        lf.percentile(np.zeros((2, 2, 2)), q)


def test_bad_series_inputs():
    with pytest.raises(ParameterError, match="zero length"):
        lf.max(np.zeros((0, 3, 3)))
    with pytest.raises(ParameterError, match="nframes"):
        lf.max(np.zeros((2, 3, 3)), nframes=-1)
    with pytest.raises(ParameterError, match="2-D or 3-D"):
        lf.max(np.zeros((2, 3, 3, 3)))


def test_stat_by_name_and_compute_stats(int_series):
    out = lf.compute_stats(int_series, ["max", "percentile:99.5", "mean"])
    np.testing.assert_array_equal(out["percentile:99.5"], np.percentile(int_series, 99.5, 0).astype(np.float32))
    for bad in ("percentile", "percentile:abc", "max:3", "mode"):
        with pytest.raises(ParameterError):
            lf.stat_by_name(int_series, bad)


def test_dark_subtracted_series_keeps_the_reader_paths(tmp_path, int_series):
    lf.write(int_series, tmp_path / "s.zarr", chunks=(4, 5, 7))
    dark = np.full(int_series.shape[1:], 2500, "u2")
    d = lf.dark(lf.open(tmp_path / "s.zarr"), dark)
    assert isinstance(lf.series.source_of(d.data), lf.series.MappedBackend)
    ref = np.maximum(int_series.astype(np.int64) - 2500, 0).astype("u2")
    out = compute(lf.max(d).data, lf.mean(d).data, lf.median(d).data, lf.mean(d, legacy=True).data,
                  scheduler="threads", progress=False)
    np.testing.assert_array_equal(out[0], ref.max(0))
    np.testing.assert_allclose(out[1], ref.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(out[2], np.median(ref, 0).astype(np.float32))
    np.testing.assert_allclose(out[3], ref.mean(0), rtol=1e-6)
    assert lf.median(d).attrs["band_plan"] == "direct"
