import h5py
import numpy as np
import pytest
from astropy.io import fits

import lazyastro.frames as lf
from lazyastro.cli.main import main
from lazyastro.core.errors import ParameterError


@pytest.fixture
def series():
    rng = np.random.default_rng(11)
    return rng.integers(0, 300, (6, 5, 4)).astype(np.uint16)


def test_ops_dark_flip_rectangle_frame_list(series):
    omega = np.stack([np.arange(6.0), np.arange(6.0) + 1], 1)
    s = lf.open(series, meta={"omega": omega}, chunks=(4, 3, 4))
    dark = np.full((5, 4), 100, np.uint16)
    out = lf.process(s, [("dark", dark), ("flip", "r90"), ("rectangle", ((0, 3), (1, 4)))], frames=[5, 0, 2])
    ref = np.clip(series[[5, 0, 2]].astype(int) - 100, 0, None).astype(np.uint16)
    ref = np.rot90(ref, 1, axes=(1, 2))[:, 0:3, 1:4]
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out.values, ref)
    np.testing.assert_array_equal(out.omega_start.values, [5.0, 0.0, 2.0])
    np.testing.assert_array_equal(lf.median(out).values, np.median(ref, 0).astype(np.float32))
    for code in ("y", "x", "vh", "t", "cw90"):
        np.testing.assert_array_equal(lf.flip(s, code).values[1], lf.kernels.flip(series[1], code))


def test_ops_bad_arguments(series):
    with pytest.raises(ParameterError, match="dark image shape"):
        lf.dark(series, np.zeros((2, 2)))
    with pytest.raises(ParameterError, match="unknown flip code"):
        lf.flip(series, "q")
    with pytest.raises(ParameterError, match="rectangle"):
        lf.rectangle(series, ((0, 9), (0, 2)))
    with pytest.raises(ParameterError, match="outside"):
        lf.frame_list(series, [0, 6])
    with pytest.raises(ParameterError, match="unknown op"):
        lf.process(series, [("gauss", 1)])


@pytest.mark.parametrize("ext", ["fits", "zarr", "h5"])
def test_cli_stats(tmp_path, series, ext, capsys):
    src = tmp_path / "s.h5"
    lf.write_hexrd_hdf5(series, src)
    out = tmp_path / f"stats.{ext}"
    code = main(["--no-progress", "frames", "stats", str(src), "--stat", "max,mean,median,percentile:99.5",
                 "--nframes", "5", "--out", str(out)])
    assert code == 0
    a = series[:5]
    refs = {"max": a.max(0), "mean": a.mean(0).astype(np.float32), "median": np.median(a, 0).astype(np.float32),
            "percentile_99.5": np.percentile(a, 99.5, 0).astype(np.float32)}
    if ext == "fits":
        with fits.open(out) as hdul:
            got = {h.header["STAT"]: h.data for h in hdul[1:]}
    elif ext == "h5":
        with h5py.File(out) as h5:
            got = {k: h5[k][()] for k in h5}
    else:
        import zarr

        g = zarr.open_group(str(out), mode="r")
        got = {k: v[...] for k, v in g.arrays()}
    assert set(got) == set(refs)
    for k, ref in refs.items():
        np.testing.assert_allclose(got[k], ref, rtol=1e-6, err_msg=k)
        if k != "mean":
            np.testing.assert_array_equal(got[k], ref, err_msg=k)
    assert main(["--no-progress", "frames", "stats", str(src), "--stat", "max", "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path, series, capsys):
    src = tmp_path / "s.npz"
    lf.write_frame_cache(series, src, threshold=250)
    for argv, msg in [
        (["frames", "stats", str(src), "--stat", "percentile:101", "--out", str(tmp_path / "o.fits")], "[0, 100]"),
        (["frames", "stats", str(src), "--stat", "mode", "--out", str(tmp_path / "o.fits")], "unknown stat"),
        (["frames", "stats", str(src), "--out", str(tmp_path / "o.txt")], ".fits, .zarr or .h5"),
        (["frames", "stats", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "o.h5")], "missing.h5"),
        (["frames", "convert", str(src), str(tmp_path / "c.npz")], "threshold"),
    ]:
        assert main(["--no-progress", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and msg in err, err


def test_cli_convert_chain(tmp_path, series):
    src = tmp_path / "s.npz"
    lf.write_frame_cache(series, src, threshold=0)
    assert main(["--no-progress", "frames", "convert", str(src), str(tmp_path / "s.zarr")]) == 0
    assert main(["--no-progress", "frames", "convert", str(tmp_path / "s.zarr"), str(tmp_path / "s.fch5"),
                 "--threshold", "0"]) == 0
    assert main(["--no-progress", "frames", "convert", str(tmp_path / "s.fch5"), str(tmp_path / "s.h5"),
                 "--nframes", "4"]) == 0
    np.testing.assert_array_equal(lf.open(tmp_path / "s.zarr").values, series)
    np.testing.assert_array_equal(lf.open(tmp_path / "s.fch5").values, series)
    np.testing.assert_array_equal(lf.open(tmp_path / "s.h5").values, series[:4])
