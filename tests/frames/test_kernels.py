import numpy as np
import pytest

from lazyastro.core.errors import ParameterError
from lazyastro.frames import kernels
from lazyastro.frames.iterators import _chunk_stops


@pytest.mark.parametrize(
    "n, nchunks, expected",
    [(10, 1, [9]), (10, 2, [4, 9]), (10, 3, [3, 6, 9]), (10, 4, [2, 5, 7, 9]), (7, 3, [2, 4, 6]),
     (10, 10, list(range(10)))],
)
def test_chunk_stops_table(n, nchunks, expected):
    assert _chunk_stops(n, nchunks) == expected


def test_chunk_stops_too_many_chunks():
    with pytest.raises(ValueError, match="number of chunks cannot exceed number of items"):
        _chunk_stops(5, 10)
    with pytest.raises(ParameterError):
        _chunk_stops(5, 10)


def test_flip_codes_match_numpy():
    img = np.arange(12).reshape(3, 4)
    expected = {
        "y": img[:, ::-1], "v": img[:, ::-1], "x": img[::-1], "h": img[::-1],
        "vh": img[::-1, ::-1], "hv": img[::-1, ::-1], "r180": np.rot90(img, 2),
        "t": img.T, "T": img.T, "ccw90": np.rot90(img), "r90": np.rot90(img),
        "cw90": np.rot90(img, -1), "r270": np.rot90(img, -1),
    }
    assert set(expected) == set(kernels.FLIP_CODES)
    for code, ref in expected.items():
        np.testing.assert_array_equal(kernels.flip(img, code), ref, err_msg=code)
        np.testing.assert_array_equal(kernels.flip(img[None], code)[0], ref, err_msg=code)
    with pytest.raises(ValueError, match="unknown flip code"):
        kernels.flip(img, "z")


def test_subtract_dark_clips_unsigned_without_wrapping():
    block = np.array([[[1, 5, 65535]]], np.uint16)
    dark = np.array([[2, 2, 1]], np.uint16)
    out = kernels.subtract_dark(block, dark)
    assert out.dtype == np.uint16
    assert out.tolist() == [[[0, 3, 65534]]]


def test_fold_sum_float32_reproduces_legacy_rounding():
    block = np.array([[16777216], [1], [1]], np.uint32)
    out = kernels.fold_sum_float32(None, block)
    assert out.dtype == np.float32 and out[0] == np.float32(16777216)
    # continuing from an accumulator is the same as one long fold
    np.testing.assert_array_equal(kernels.fold_sum_float32(kernels.fold_sum_float32(None, block[:1]), block[1:]), out)


def test_sparsify_strict_threshold_and_densify_roundtrip():
    frame = np.array([[0, 3, 5], [5, 6, 0]], np.uint16)
    rows, cols, vals = kernels.sparsify(frame, 5)
    assert rows.dtype == np.uint16 and vals.tolist() == [6]  # values equal to the threshold are dropped
    rows, cols, vals = kernels.sparsify(frame, 0)
    np.testing.assert_array_equal(kernels.densify(frame.shape, frame.dtype, rows, cols, vals), frame)


def test_cast_checked_refuses_truncation():
    assert kernels.cast_checked(np.array([1.0, 255.0]), "u1").dtype == np.uint8
    with pytest.raises(ValueError, match="truncate"):
        kernels.cast_checked(np.array([1.5]), "u1")
    with pytest.raises(ValueError, match="truncate"):
        kernels.cast_checked(np.array([300], np.uint16), "u1")


def test_band_percentile_bit_identical():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 100, (9, 3, 5)).astype(np.int16)
    out = kernels.band_percentile([5, 50, 97.5], a[:4], a[4:])
    np.testing.assert_array_equal(out, np.percentile(a, [5, 50, 97.5], axis=0).astype(np.float32))
    a_copy = a.copy()
    kernels.band_percentile(50, a)
    np.testing.assert_array_equal(a, a_copy)  # the input is never partitioned in place
