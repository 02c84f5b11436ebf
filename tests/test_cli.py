"""The lazyastro CLI: commands, and one-line errors for bad input with nothing left behind."""

import h5py
import numpy as np
import pytest
from astropy.io import fits

import lazyastro
from lazyastro.cli.main import main
from lazyastro.core.atomic import partial_path

from .conftest import run_cli


@pytest.fixture
def cube(tmp_path):
    path = tmp_path / "cube.fits"
    data = np.arange(4 * 30 * 20, dtype=np.float32).reshape(4, 30, 20)
    fits.PrimaryHDU(data, header=fits.Header({"OBJECT": "XDF", "EXPTIME": 1200.0})).writeto(path)
    return path, data


def _one_line_error(capsys, *names):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith("lazyastro: error: ")
    for name in names:
        assert str(name) in err, err
    return err


def test_info_is_lazy_and_complete(cube, capsys):
    path, _ = cube
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "format  : fits" in out and "frame=4, y=30, x=20" in out and "float32" in out
    assert "OBJECT" in out and "chunks" in out


@pytest.mark.parametrize("ext", ["zarr", "h5", "fits"])
def test_convert_roundtrip(cube, tmp_path, ext, capsys):
    path, data = cube
    out = tmp_path / f"out.{ext}"
    assert main(["--no-progress", "convert", str(path), str(out)]) == 0
    np.testing.assert_array_equal(lazyastro.open(out).values, data)
    back = tmp_path / "back.fits"
    assert main(["convert", str(out), str(back), "--scheduler", "sync", "--no-progress"]) == 0
    np.testing.assert_array_equal(fits.getdata(back), data)
    assert fits.getheader(back)["OBJECT"] == "XDF"


def test_convert_zarr_with_chunks_and_shards(cube, tmp_path):
    path, data = cube
    out = tmp_path / "s.zarr"
    assert main(["convert", str(path), str(out), "--out-chunks", "1,10,20", "--shards", "2,30,20",
                 "--codec", "zstd", "--no-progress"]) == 0
    np.testing.assert_array_equal(lazyastro.open(out).values, data)


def test_formats_lists_core_formats(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    for name in ("fits", "zarr", "hdf5"):
        assert name in out


def test_demo_small(tmp_path):
    res = run_cli("demo", "--size", "4,256,256", "--out", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    assert "peak RSS" in res.stdout and "MiB/s" in res.stdout
    assert (tmp_path / "demo" / "stack_mean.fits").exists()
    stack = fits.getdata(tmp_path / "demo" / "stack_mean.fits")
    assert stack.shape == (256, 256) and abs(float(np.median(stack)) - 100) < 5
    median = lazyastro.open(tmp_path / "demo" / "median.fits").values
    cube = lazyastro.open(tmp_path / "demo" / "series.fits").values
    np.testing.assert_array_equal(median, np.median(cube, axis=0).astype(np.float32))
    assert (tmp_path / "demo" / "skipper" / "img_preproc_out.ecsv").exists()
    assert "skipper: quick-look statistics" in res.stdout


# ------------------------------------------------------------------ bad inputs


def test_truncated_fits(cube, tmp_path, capsys):
    path, _ = cube
    bad = tmp_path / "trunc.fits"
    bad.write_bytes(path.read_bytes()[:4000])
    out = tmp_path / "o.zarr"
    assert main(["convert", str(bad), str(out)]) == 1
    _one_line_error(capsys, bad, "truncated")
    assert not out.exists() and not partial_path(out).exists()


def test_text_file_named_fits(tmp_path, capsys):
    bad = tmp_path / "notes.fits"
    bad.write_text("this is not a FITS file\n")
    assert main(["info", str(bad)]) == 1
    _one_line_error(capsys, bad, "FITS")


def test_missing_hdf5_dataset(tmp_path, capsys):
    path = tmp_path / "a.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3, 3))
    out = tmp_path / "o.fits"
    assert main(["convert", str(path), str(out), "--dataset", "missing/images"]) == 1
    _one_line_error(capsys, path, "missing/images")
    assert not out.exists() and not partial_path(out).exists()


def test_nonexistent_path(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope.fits")]) == 1
    _one_line_error(capsys, tmp_path / "nope.fits", "no such")


def test_existing_output_without_overwrite(cube, tmp_path, capsys):
    path, data = cube
    out = tmp_path / "exists.fits"
    out.write_bytes(b"precious")
    assert main(["convert", str(path), str(out)]) == 1
    _one_line_error(capsys, out, "overwrite")
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(path), str(out), "--overwrite", "--no-progress"]) == 0
    np.testing.assert_array_equal(fits.getdata(out), data)


def test_unsupported_dtype(tmp_path, capsys):
    path = tmp_path / "mask.h5"
    with h5py.File(path, "w") as f:
        f["mask"] = np.zeros((5, 5), dtype=bool)
        f["cplx"] = np.zeros((5, 5), dtype=np.complex64)
    out = tmp_path / "mask.fits"
    assert main(["convert", str(path), str(out), "--dataset", "mask"]) == 1
    _one_line_error(capsys, "bool", "FITS")
    assert not out.exists() and not partial_path(out).exists()
    assert main(["info", str(path), "--dataset", "cplx"]) == 1
    _one_line_error(capsys, path, "complex64")


def test_bad_scheduler_and_budget(cube, capsys):
    path, _ = cube
    assert main(["--scheduler", "warp", "info", str(path)]) == 1
    _one_line_error(capsys, "warp")
    assert main(["info", str(path), "--memory-budget", "lots"]) == 1
    _one_line_error(capsys, "lots")


def test_real_process_exit_code_and_debug_traceback(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("nope")
    res = run_cli("info", str(bad))
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and str(bad) in res.stderr
    res = run_cli("info", str(bad), "--debug")
    assert res.returncode != 0 and "Traceback" in res.stderr


def test_help_lists_every_command_and_format_options():
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    for name in ("info", "convert", "formats", "demo", "frames", "skipper"):
        assert name in res.stdout
    res = run_cli("convert", "--help")
    assert res.returncode == 0, res.stderr
    for flag in ("--format", "--to", "--hdu", "--dataset", "--out-chunks", "--shards", "--compression"):
        assert flag in res.stdout


def test_wrong_format_is_a_user_error(cube, capsys):
    path, _ = cube
    assert main(["info", str(path), "--format", "fitz"]) == 1
    err = _one_line_error(capsys, "fitz", "--format", "fits", "zarr", "hdf5")
    assert "internal" not in err


def test_command_group_registers_each_module_and_a_missing_one_is_an_error():
    import argparse

    from lazyastro.cli.options import add_command_group

    top = argparse.ArgumentParser(prog="lazyastro")
    sub = top.add_subparsers(dest="command")
    p = add_command_group(sub, "dre", help="h", description="d", dest="dre_command",
                          modules=["lazyastro.dre.cli_models", "lazyastro.dre.cli_fit"])
    assert p.prog == "lazyastro dre"
    assert top.parse_args(["dre", "models", "m.zarr"]).dre_command == "models"
    assert top.parse_args(["dre", "run", "tiles"]).dre_command == "run"  # from cli_fit
    for argv in (["dre"], ["dre", "sextract", "t.fits"]):  # a subcommand is required; only those registered
        with pytest.raises(SystemExit):
            top.parse_args(argv)
    with pytest.raises(ModuleNotFoundError, match="cli_nope"):
        add_command_group(sub, "sgan", help="h", description="d", dest="sgan_command",
                          modules=["lazyastro.sgan.cli_train", "lazyastro.sgan.cli_nope"])
