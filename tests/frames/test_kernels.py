import ast
import inspect

import numpy as np
import pytest

from lazyastro import synthetic
from lazyastro.core.errors import ParameterError
from lazyastro.frames import kernels
from lazyastro.frames.iterators import _chunk_stops
from lazyastro.synthetic import kernels as skernels


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


# ---- array-namespace dispatch, checked on the CPU --------------------------------------------
# The kernels must take their array module from their input (so CuPy blocks work on a GPU). On
# a machine without CuPy this is checked two ways: (1) no kernel calls a numpy function on the
# data path (only dtype helpers, or an explicit host copy ``np.f(to_numpy(x))``); (2) with the
# namespace replaced by a recording proxy of numpy (which is not ``numpy`` itself, so the
# non-numpy branches run too), every kernel computes through it and gives the numpy result.



HOST_ONLY = {"chunk_stops", "sum_dtype"}  # take ints / dtypes, not blocks
NP_ALLOWED = {"dtype", "iinfo", "finfo", "result_type", "errstate", "can_cast", "promote_types"}


def _block_kernels(module):
    return [getattr(module, n) for n in module.__all__
            if inspect.isfunction(getattr(module, n)) and n not in HOST_ONLY]


def _numpy_calls(func):
    """``np.f(...)`` / ``np.f.g(...)`` calls in ``func`` other than dtype helpers and host copies."""
    tree = ast.parse(inspect.getsource(func))
    bad = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f, chain = node.func, []
        while isinstance(f, ast.Attribute):
            chain.append(f.attr)
            f = f.value
        if not (isinstance(f, ast.Name) and f.id == "np" and chain):
            continue
        name = chain[-1]
        host_copy = any(isinstance(a, ast.Call) and getattr(a.func, "id", "") == "to_numpy" for a in node.args)
        if name not in NP_ALLOWED and not host_copy:
            bad.append(f"np.{'.'.join(reversed(chain))} (line {node.lineno})")
    return bad


@pytest.mark.parametrize("func", _block_kernels(kernels), ids=lambda f: f.__name__)
def test_frames_kernels_call_no_numpy_function_on_the_data_path(func):
    assert _numpy_calls(func) == []


def test_synthetic_kernels_draw_on_the_host_only_explicitly():
    # the noise and the catalogue are drawn on the host by design (same numbers on any device);
    # the image itself is built in the catalogue's namespace
    src = inspect.getsource(skernels.render_scene)
    assert "xp = array_namespace(catalogue)" in src and "xp.zeros" in src and "xp.exp" in src
    assert "xp.asarray(host)" in inspect.getsource(skernels.render_frames)


class _RecordingNumpy:
    """Stands for an array module: forwards to numpy and records what the kernel used."""

    def __init__(self):
        self.used = set()
        self.__name__ = "recording_numpy"

    def __getattr__(self, name):
        self.used.add(name)
        return getattr(np, name)


@pytest.fixture
def recording_namespace(monkeypatch):
    """Patch ``array_namespace`` in the kernel modules; returns the proxy and the argument log."""
    proxy, seen = _RecordingNumpy(), []

    def fake(*arrays):
        seen.append(arrays)
        return proxy

    monkeypatch.setattr(kernels, "array_namespace", fake)
    monkeypatch.setattr(skernels, "array_namespace", fake)
    return proxy, seen


def _kernel_cases():
    rng = np.random.default_rng(3)
    u2 = rng.integers(0, 1000, (6, 4, 5)).astype(np.uint16)
    f4 = rng.normal(0, 1, (6, 4, 5)).astype(np.float32)
    f4[2, 1, 1] = np.nan
    cases = {
        "densify": lambda: kernels.densify((3, 4), "u2", np.array([0, 2]), np.array([1, 3]), np.array([5, 7], "u2")),
        "sparsify": lambda: kernels.sparsify(u2[0], 500),
        "subtract_dark": lambda: kernels.subtract_dark(u2, u2[0]),
        "flip": lambda: [kernels.flip(u2, c) for c in kernels.FLIP_CODES],
        "fold_sum_float32": lambda: kernels.fold_sum_float32(kernels.fold_sum_float32(None, u2[:2]), u2[2:]),
        "fold_step": lambda: [kernels.fold_step(k, kernels.fold_step(k, None, b[:3], d), b[3:], d)
                              for k in kernels.FOLDS for b, d in ((u2, "u4"), (f4, None))],
        "fold_finish": lambda: [kernels.fold_finish("max", u2[0].copy(), u2[1]),
                                kernels.fold_finish("sum", u2[0].astype("f8"), u2[1].astype("f8"), divide=2,
                                                    dtype="f4")],
        "running_combine": lambda: [kernels.running_combine(s, kernels.running_combine(s, None, u2[0]), u2[1])
                                    for s in ("max", "min", "sum")],
        "band_percentile": lambda: [kernels.band_percentile([10, 50], u2[:2], u2[2:]),
                                    kernels.band_percentile(50, f4, nan=True, method="nearest")],
        "cast_checked": lambda: kernels.cast_checked(u2.astype("f8"), "u2"),
    }
    assert set(cases) == {f.__name__ for f in _block_kernels(kernels)}, "a new kernel needs a case here"
    return cases


def _same(a, b):
    if isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert type(a) is type(b) and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(_kernel_cases()))
def test_frames_kernels_compute_through_the_input_namespace(name, monkeypatch):
    case = _kernel_cases()[name]
    expected = case()
    proxy, seen = _RecordingNumpy(), []

    def fake(*arrays):
        seen.append(arrays)
        return proxy

    monkeypatch.setattr(kernels, "array_namespace", fake)
    got = case()
    assert seen and any(isinstance(a, np.ndarray) for args in seen for a in args), "array_namespace not called on the input"
    assert proxy.used, f"{name} ignored the namespace it was given"
    _same(got, expected)


def test_synthetic_kernels_compute_through_the_input_namespace(recording_namespace):
    proxy, seen = recording_namespace
    cat = skernels.source_catalogue(64, 48, seed=3)
    got = skernels.render_frames(cat, [0, 2], 8, 40, 0, 48, shape=(3, 64, 48), seed=3)
    assert any(args[0] is cat for args in seen)
    assert {"zeros", "exp", "asarray"} <= proxy.used
    ref = synthetic.deep_field_series(3, 64, 48, seed=3, chunks=(3, 64, 48)).values
    np.testing.assert_array_equal(got, ref[[0, 2], 8:40])


def test_backend_namespace_of_dask_and_xarray_inputs():
    import dask.array as da
    import xarray as xr

    from lazyastro.core.backend import array_namespace, is_cupy, meta_like

    x = da.zeros((4, 6), chunks=2, dtype="u2")
    assert array_namespace(x) is np and array_namespace(xr.DataArray(x)) is np
    assert array_namespace(None, 3, [1]) is np and not is_cupy(x)
    m = meta_like(x, ndim=3, dtype="f4")
    assert type(m) is np.ndarray and m.shape == (0, 0, 0) and m.dtype == np.float32
    assert meta_like(x).shape == (0, 0) and meta_like(x).dtype == np.uint16
