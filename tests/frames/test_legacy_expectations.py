"""The legacy public test expectations of the spec, section 2.4."""

import numpy as np
import pytest

import lazyastro.frames as lf
from lazyastro.frames.iterators import _alloc_buffer, _toarray


def _const(img, value, dtype=None):
    assert np.all(img == value), img
    if dtype is not None:
        assert img.dtype == np.dtype(dtype)


def test_mock_max_min(mock_series):
    _const(lf.max(mock_series).values, 9, np.float32)
    _const(lf.max(mock_series, nframes=5).values, 4)
    _const(lf.min(mock_series).values, 0, np.float32)
    assert [a[0, 0] for a in lf.max_iter(mock_series, 2)] == [4, 9]


def test_mock_average_and_sum(mock_series):
    _const(lf.average(mock_series).values, 4.5, np.float32)
    _const(lf.average(mock_series, nframes=5).values, 2.0)
    assert [a[0, 0] for a in lf.average_iter(mock_series, 2)] == [2.0, 4.5]
    s = lf.sum(mock_series).values
    _const(s, 45.0, np.float64)
    _const(lf.sum(mock_series, nframes=5).values, 10)
    assert [a[0, 0] for a in lf.sum_iter(mock_series, 2)] == [10, 45]
    np.testing.assert_array_equal(s, lf.average(mock_series).values * len(mock_series))


@pytest.mark.parametrize("func", ["max_iter", "min_iter", "average_iter", "sum_iter"])
def test_nchunk_equal_n_yields_frame_zero_first(mock_series, func):
    out = list(getattr(lf, func)(mock_series, 10))
    assert len(out) == 10
    _const(out[0], 0)


def test_mock_percentile_median(mock_series):
    _const(lf.percentile(mock_series, 50).values, 4.5, np.float32)
    _const(lf.percentile(mock_series, 100).values, 9)
    _const(lf.median(mock_series).values, 4.5, np.float32)


def test_percentile_iter_zero_rows(mock_series):
    out = list(lf.percentile_iter(mock_series, 50, nchunks=2, use_buffer=False))
    assert len(out) == 2 and out[0].dtype == np.float32
    _const(out[0][:2], 4.5)
    _const(out[0][2:], 0)
    _const(out[1], 4.5)


def test_alloc_buffer_and_toarray(mock_series):
    assert _alloc_buffer(mock_series, 10, buffer_bytes=100).shape == (1, 4, 4)
    assert _alloc_buffer(mock_series, 10, buffer_bytes=1000).shape == (10, 4, 4)
    assert _toarray(mock_series, 10).shape == (10, 4, 4)
    buf = _alloc_buffer(mock_series, 2, buffer_bytes=1000)
    assert _toarray(mock_series, 2, rows=(0, 2), buffer=buf).shape == (2, 2, 4)


def test_buffer_holding_two_of_eleven_frames():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 100, (11, 7, 5)).astype(np.uint16)
    buf = _alloc_buffer(a, 11, buffer_bytes=2 * 7 * 5 * 2)
    assert buf.shape == (2, 7, 5)
    rows = [(0, 3), (3, 5), (5, 7)]
    parts = [_toarray(a, 11, rows=r, buffer=buf) for r in rows]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), a)


def test_array_adapter_3x5x7_all_stats():
    a = (np.arange(105).reshape(3, 5, 7) * 7 % 23).astype(np.int32)
    s = lf.open(None, "array", data=a, meta={"note": "x"})
    assert s.attrs["note"] == "x"
    checks = {
        "max": (a.max(0), a.dtype), "min": (a.min(0), a.dtype), "sum": (a.sum(0, dtype=np.float64), np.float64),
        "average": (a.mean(0).astype(np.float32), np.float32),
        "median": (np.median(a, 0).astype(np.float32), np.float32),
    }
    for name, (ref, dtype) in checks.items():
        out = getattr(lf, name)(s).values
        assert out.dtype == dtype, name
        np.testing.assert_array_equal(out, ref, err_msg=name)
    np.testing.assert_array_equal(lf.percentile(s, 30).values, np.percentile(a, 30, 0).astype(np.float32))
    for nchunk in (1, 2, 3):
        assert np.array_equal(list(lf.max_iter(s, nchunk))[-1], a.max(0))
        assert np.array_equal(list(lf.min_iter(s, nchunk))[-1], a.min(0))
        assert np.array_equal(list(lf.sum_iter(s, nchunk))[-1], a.sum(0, dtype=np.float64))
        assert np.allclose(list(lf.average_iter(s, nchunk))[-1], a.mean(0))
        for use_buffer in (True, False):
            last = list(lf.median_iter(s, nchunk, use_buffer=use_buffer))[-1]
            np.testing.assert_array_equal(last, lf.median(s).values)


def test_uint16_ramp_iterators():
    ramp = np.arange(10, dtype=np.uint16)[:, None, None] * np.ones((1, 3, 2), np.uint16)
    assert [a[0, 0] for a in lf.average_iter(ramp, 3)] == [1.5, 3.0, 4.5]
    assert [a[0, 0] for a in lf.average_iter(ramp, 3, legacy=True)] == [1.5, 3.0, 4.5]
    maxes = list(lf.max_iter(ramp, 3))
    assert [a[0, 0] for a in maxes] == [3, 6, 9] and maxes[0].dtype == np.uint16
    sums = list(lf.sum_iter(ramp, 4))
    assert [a[0, 0] for a in sums] == [3, 15, 28, 45] and sums[0].dtype == np.float64


def test_percentile_iter_fills_rows_in_chunks():
    a = np.arange(4 * 7 * 3, dtype=np.float32).reshape(4, 7, 3) + 1
    filled = [int((img != 0).all(axis=1).sum()) for img in lf.percentile_iter(a, 50, 3)]
    assert filled == [3, 5, 7]


def test_float32_accumulation_loses_precision_only_in_legacy_mode():
    a = np.array([16777216, 1, 1, 0], np.uint32).reshape(4, 1, 1)
    a = np.concatenate([a, np.zeros((0, 1, 1), np.uint32)])
    legacy = lf.mean(a, legacy=True).values
    assert legacy.dtype == np.float32 and legacy[0, 0] == np.float32(16777216 / 4)
    assert lf.mean(a).values[0, 0] == np.float32(16777218 / 4)
    big = np.array([16777216, 1], np.uint32).reshape(2, 1, 1)
    assert lf.sum(big).values[0, 0] == 16777217.0


def test_uint8_does_not_overflow():
    a = np.full((4, 2, 2), 250, np.uint8)
    assert lf.sum(a).values[0, 0] == 1000.0
    assert lf.average(a).values[0, 0] == 250.0
    assert lf.mean(a, legacy=True).values[0, 0] == 250.0
