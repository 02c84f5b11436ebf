"""One format registry: declarations, detection, one meaning per name, entry points, TIFF/.npy, start-up."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
import warnings

import h5py
import numpy as np
import pytest
import xarray as xr
from astropy.io import fits

import lazyastro
import lazyastro.frames as lf
from lazyastro.cli.main import main
from lazyastro.core.atomic import partial_path
from lazyastro.core.errors import FormatError, InputNotFoundError, OutputExistsError, ParameterError
from lazyastro.io import registry


@pytest.fixture
def stack():
    rng = np.random.default_rng(3)
    return rng.integers(0, 1000, (5, 12, 10)).astype(np.uint16)


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("lazyastro: error: "), err
    for n in needles:
        assert str(n) in err, err
    return err


@pytest.fixture
def files(tmp_path, stack):
    """The same small stack in every readable container the registry knows."""
    out = {}
    fits.PrimaryHDU(stack).writeto(tmp_path / "s.fits")
    out["fits"] = tmp_path / "s.fits"
    lazyastro.to_zarr(stack, tmp_path / "s.zarr", progress=False)
    out["zarr"] = tmp_path / "s.zarr"
    with h5py.File(tmp_path / "plain.h5", "w") as f:
        f["data"] = stack
    out["hdf5"] = tmp_path / "plain.h5"
    lf.write_hexrd_hdf5(stack, tmp_path / "hexrd.h5")
    out["hexrd-hdf5"] = tmp_path / "hexrd.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dense frames in a sparse cache
        lf.write_frame_cache(stack, tmp_path / "c.npz", threshold=0)
        lf.write_frame_cache(stack, tmp_path / "c.fch5", threshold=0, style="fch5")
    out["frame-cache-npz"] = tmp_path / "c.npz"
    out["frame-cache-fch5"] = tmp_path / "c.fch5"
    np.save(tmp_path / "s.npy", stack)
    out["npy"] = tmp_path / "s.npy"
    lazyastro.to_tiff(stack, tmp_path / "s.tif")
    out["tiff"] = tmp_path / "s.tif"
    return out


# ------------------------------------------------------------------ one registry, one meaning


def test_frames_formats_are_registry_formats():
    import lazyastro.frames.formats as ff

    for legacy in ("READERS", "WRITERS", "_ALIASES", "_SNIFFERS", "_EXT_WRITERS"):
        assert not hasattr(ff, legacy)
    names = set(registry.format_names())
    assert {"fits", "zarr", "hdf5", "tiff", "npy", "hexrd-hdf5", "frame-cache", "frame-cache-npz",
            "frame-cache-fch5", "frame-cache-yml", "image-files", "fits-files", "skipper"} <= names
    for name in names:
        fmt = registry.get_format(name)
        assert fmt.kind in registry.KINDS and fmt.description
        assert all(isinstance(p, registry.Param) for p in fmt.open_params + fmt.write_params)


@pytest.mark.parametrize("name", ["fits", "zarr", "hdf5", "hexrd-hdf5", "frame-cache-npz",
                                  "frame-cache-fch5", "npy", "tiff"])
def test_same_file_same_reader(files, stack, name):
    path = files[name]
    assert lazyastro.detect_format(path) == name
    assert lf.detect_series_format(path) == name
    generic = lazyastro.open(path)
    series = lf.open(path)
    assert series.dims == ("frame", "y", "x")
    np.testing.assert_array_equal(generic.values, stack)
    np.testing.assert_array_equal(series.values, stack)


def test_a_name_means_one_thing(files, stack, tmp_path):
    # "hdf5" is a plain HDF5 dataset everywhere; the legacy layout is "hexrd-hdf5".
    lf.write(stack, tmp_path / "a.h5", format="hdf5")
    with h5py.File(tmp_path / "a.h5") as f:
        assert list(f) == ["data"]
    lazyastro.write(stack, tmp_path / "b.h5", format="hexrd-hdf5")
    assert lazyastro.detect_format(tmp_path / "b.h5") == "hexrd-hdf5"
    with pytest.raises(ParameterError, match="'gzip'"):
        lf.write(stack, tmp_path / "c.h5", format="hdf5", gzip=0)
    # Extensions: frames prefers series layouts, lazyastro.write plain containers.
    lf.write(stack, tmp_path / "d.h5")
    lazyastro.write(stack, tmp_path / "e.h5")
    assert lazyastro.detect_format(tmp_path / "d.h5") == "hexrd-hdf5"
    assert lazyastro.detect_format(tmp_path / "e.h5") == "hdf5"
    # dataset= reads a hexrd file as plain HDF5 (only the hdf5 format takes it).
    got = lazyastro.open(files["hexrd-hdf5"], dataset="imageseries/images")
    assert got.attrs["format"] == "hdf5"
    np.testing.assert_array_equal(got.values, stack)


def test_frames_refuses_other_kinds(tmp_path):
    from lazyastro import skipper

    path = tmp_path / "Img_1.fits"
    skipper.simulate(path, nrows=4, ncols=5, nskips=3, seed=1)
    assert lazyastro.open(path).dims == ("y", "x")  # an ordinary FITS image
    assert lazyastro.open(path, format="skipper").dims == ("row", "col", "skip")
    with pytest.raises(ParameterError, match="cube data") as err:
        lf.open(path, format="skipper")
    assert "hexrd-hdf5" in str(err.value)  # lists the series formats


def test_unknown_format_is_one_line_with_the_names(files, tmp_path, capsys):
    with pytest.raises(ParameterError) as err:
        lazyastro.open(files["fits"], format="nope")
    msg = str(err.value)
    assert "\n" not in msg and "'nope'" in msg and all(n in msg for n in ("fits", "zarr", "tiff", "npy"))
    for argv, flag in [
        (["info", str(files["fits"]), "--format", "nope"], "--format"),
        (["convert", str(files["fits"]), str(tmp_path / "o.x"), "--to", "nope"], "--to"),
        (["frames", "stats", str(files["fits"]), "--format", "nope", "--out", str(tmp_path / "o.fits")], "--format"),
        (["frames", "convert", str(files["fits"]), str(tmp_path / "o.zarr"), "--to", "nope"], "--to"),
    ]:
        assert main(["--no-progress", *argv]) == 1
        _one_line(capsys, "'nope'", flag, "fits", "zarr")
    assert main(["convert", str(files["fits"]), str(tmp_path / "o.unknown")]) == 1
    _one_line(capsys, "o.unknown", "format")


def test_options_checked_against_declarations(files, tmp_path, capsys):
    with pytest.raises(ParameterError, match="does not take 'dataset'"):
        lazyastro.open(files["fits"], dataset="x")
    with pytest.raises(ParameterError, match="codec"):
        lazyastro.write(np.zeros((2, 2)), tmp_path / "x.zarr", codec="brotli")
    with pytest.raises(ParameterError, match="clevel"):
        lazyastro.write(np.zeros((2, 2)), tmp_path / "x.zarr", clevel=12)
    assert main(["info", str(files["fits"]), "--dataset", "x"]) == 1
    _one_line(capsys, "--dataset", "fits input", "--hdu")
    assert main(["convert", str(files["fits"]), str(tmp_path / "o.fits"), "--shards", "1,2,2"]) == 1
    _one_line(capsys, "--shards", "fits output")
    assert not (tmp_path / "o.fits").exists()
    # Declared options reach the right writer.
    assert main(["--no-progress", "convert", str(files["fits"]), str(tmp_path / "o.h5"),
                 "--dataset-out", "img", "--compression", "gzip", "--out-chunks", "1,6,10"]) == 0
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["img"].compression == "gzip" and f["img"].chunks == (1, 6, 10)
    assert main(["--no-progress", "frames", "convert", str(files["zarr"]), str(tmp_path / "o2.h5"),
                 "--gzip", "0", "--chunk-rows", "4"]) == 0
    with h5py.File(tmp_path / "o2.h5") as f:
        assert f["imageseries/images"].compression is None and f["imageseries/images"].chunks == (1, 4, 10)


def test_every_declared_cli_option_parses():
    from lazyastro.cli.commands import _declared

    for which in ("open", "write"):
        table = _declared(which, None)  # raises TypeError on conflicting declarations
        assert table
    parser = __import__("lazyastro.cli.main", fromlist=["build_parser"]).build_parser()
    help_text = parser._subparsers._group_actions[0].choices["convert"].format_help()
    for flag in ("--hdu", "--dataset", "--name", "--chunks", "--out-chunks", "--shards", "--codec",
                 "--dataset-out", "--compression", "--threshold", "--gzip"):
        assert flag in help_text


def test_register_format_compat(tmp_path):
    def reader(path, scale=1):
        return xr.DataArray(np.loadtxt(path) * scale, dims=("y", "x"))

    fmt = lazyastro.register_format("txt-test", reader, extensions=(".txtgrid",), description="test")
    try:
        (tmp_path / "a.txtgrid").write_text("1 2\n3 4\n")
        assert lazyastro.detect_format(tmp_path / "a.txtgrid") == "txt-test"
        assert lazyastro.open(tmp_path / "a.txtgrid", scale=2).values.tolist() == [[2, 4], [6, 8]]
        assert fmt.readable and not fmt.writable and not fmt.strict_params
        with pytest.raises(ParameterError, match="cannot be written"):
            lazyastro.write(np.zeros((2, 2)), tmp_path / "b.txtgrid")
    finally:
        registry.unregister("txt-test")
    assert "txt-test" not in lazyastro.formats()


# ------------------------------------------------------------------ entry points


FAKE_MODULE = '''
import numpy as np
import xarray as xr
from lazyastro.io.registry import Format, Param

def read_fake(path, scale=1.0):
    return xr.DataArray(np.loadtxt(path) * scale, dims=("y", "x"), attrs={"format": "fake"})

class FakeFormat(Format):
    name = "fake"
    extensions = (".fake",)
    description = "a third-party test format"
    magic = (b"#fake",)
    reader = "fake_lazyastro_format:read_fake"
    open_params = (Param("scale", float, "multiply the values"),)
'''


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed-looking distribution (dist-info with entry_points.txt) on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "fake_lazyastro_format.py").write_text(FAKE_MODULE)
    info = site / "fake_lazyastro_format-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-lazyastro-format\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[lazyastro.formats]\nfake = fake_lazyastro_format:FakeFormat\n"
    )
    monkeypatch.syspath_prepend(str(site))
    registry.refresh_formats()
    yield tmp_path
    monkeypatch.undo()
    sys.modules.pop("fake_lazyastro_format", None)
    registry.refresh_formats()


def test_entry_point_format_from_a_distribution(fake_distribution, capsys):
    path = fake_distribution / "a.fake"
    path.write_text("#fake\n1 2\n3 4\n")
    assert "fake" in lazyastro.formats()
    assert lazyastro.detect_format(path) == "fake"
    assert lazyastro.open(path, scale=10.0).values.tolist() == [[10, 20], [30, 40]]
    assert main(["info", str(path), "--scale", "2"]) == 0  # its declared option is on the CLI
    out = capsys.readouterr().out
    assert "format  : fake" in out
    assert main(["formats"]) == 0
    assert "a third-party test format" in capsys.readouterr().out


def test_entry_points_are_loaded_lazily_and_safely(tmp_path, monkeypatch):
    (tmp_path / "fake_lazyastro_format.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    EP = importlib.metadata.EntryPoint
    eps = [
        EP("fake", "fake_lazyastro_format:FakeFormat", registry.ENTRY_POINT_GROUP),
        EP("broken", "no_such_module_xyz:Format", registry.ENTRY_POINT_GROUP),
        EP("fits", "fake_lazyastro_format:FakeFormat", registry.ENTRY_POINT_GROUP),  # name taken
    ]
    calls = []

    def entry_points(**kw):
        calls.append(kw)
        return [ep for ep in eps if ep.group == kw.get("group")]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    registry.refresh_formats()
    try:
        assert calls == []  # nothing is looked up before the first lookup
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            table = lazyastro.formats()
        assert calls == [{"group": "lazyastro.formats"}]
        assert "fake" in table and "broken" not in table
        assert table["fits"].name == "fits" and type(table["fits"]).__name__ == "FitsFormat"
        text = " ".join(str(w.message) for w in caught)
        assert "broken" in text and "taken" in text
        lazyastro.formats()
        assert len(calls) == 1  # cached
    finally:
        monkeypatch.undo()
        sys.modules.pop("fake_lazyastro_format", None)
        registry.refresh_formats()


# ------------------------------------------------------------------ TIFF and .npy


@pytest.mark.parametrize("compression", ["none", "zlib"])
def test_tiff_roundtrip_lazy_per_page(tmp_path, stack, scheduler, compression):
    path = tmp_path / "s.tif"
    attrs = {"OBJECT": "M31", "omega": np.arange(10.0).reshape(5, 2)}
    src = xr.DataArray(stack, dims=("frame", "y", "x"), attrs=attrs).chunk({"frame": 2})
    assert lazyastro.write(src, path, compression=compression, scheduler=scheduler, progress=False) == str(path)
    arr = lazyastro.open(path, chunks=(2, 12, 10))
    assert arr.dims == ("frame", "y", "x") and arr.data.numblocks == (3, 1, 1)
    assert arr.attrs["OBJECT"] == "M31"
    (got,) = lazyastro.compute(arr.data, scheduler=scheduler, progress=False)
    np.testing.assert_array_equal(got, stack)
    s = lf.open(path)
    np.testing.assert_array_equal(s.omega_start.values, attrs["omega"][:, 0])
    import tifffile

    with tifffile.TiffFile(path) as tif:  # a plain TIFF stack for other tools
        assert len(tif.pages) == 5
        np.testing.assert_array_equal(tif.pages[3].asarray(), stack[3])


def test_tiff_single_page_and_refusals(tmp_path, stack):
    import tifffile

    lazyastro.to_tiff(stack[0], tmp_path / "one.tiff")
    one = lazyastro.open(tmp_path / "one.tiff")
    assert one.dims == ("y", "x")
    np.testing.assert_array_equal(one.values, stack[0])
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((4, 5, 3), np.uint8), photometric="rgb")
    with pytest.raises(FormatError, match="2-D grayscale") as err:
        lazyastro.open(tmp_path / "rgb.tif")
    assert "rgb.tif" in str(err.value)
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tw:
        tw.write(np.zeros((4, 5), np.uint16))
        tw.write(np.zeros((6, 5), np.uint16))
    with pytest.raises(FormatError, match="page 1"):
        lazyastro.open(tmp_path / "mixed.tif")
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(FormatError, match="junk.tif"):
        lazyastro.open(tmp_path / "junk.tif")
    with pytest.raises(ParameterError, match="compression"):
        lazyastro.to_tiff(stack, tmp_path / "x.tif", compression="jpeg")
    with pytest.raises(ParameterError, match="4-D"):
        lazyastro.to_tiff(np.zeros((2, 2, 2, 2)), tmp_path / "x.tif")


def test_npy_roundtrip_memmap(tmp_path, stack, scheduler):
    path = tmp_path / "s.npy"
    src = xr.DataArray(stack, dims=("frame", "y", "x")).chunk({"frame": 2, "y": 5})
    assert lazyastro.write(src, path, scheduler=scheduler, progress=False) == str(path)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), stack)
    arr = lazyastro.open(path, chunks=(1, 6, 10))
    assert arr.data.numblocks == (5, 2, 1)
    (got,) = lazyastro.compute(arr.data, scheduler=scheduler, progress=False)
    np.testing.assert_array_equal(got, stack)
    np.save(tmp_path / "f.npy", np.asfortranarray(stack))
    np.testing.assert_array_equal(lazyastro.open(tmp_path / "f.npy").values, stack)


def test_npy_refuses_pickles_and_bad_files(tmp_path):
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="pickle") as err:
        lazyastro.open(evil)
    assert str(evil) in str(err.value)
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.zeros((100, 100)))
    trunc.write_bytes(trunc.read_bytes()[:5000])
    with pytest.raises(FormatError, match="truncated"):
        lazyastro.open(trunc)
    with pytest.raises(FormatError, match="not a readable"):
        (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x09\x00junk")
        lazyastro.open(tmp_path / "bad.npy")
    with pytest.raises(InputNotFoundError):
        lazyastro.open(tmp_path / "missing.npy")
    with pytest.raises(lazyastro.UnsupportedDtypeError):
        lazyastro.write(np.array(["a", "b"]), tmp_path / "s.npy")


def test_npy_and_tiff_writes_are_atomic(tmp_path, stack):
    import dask.array as da

    for name in ("a.npy", "a.tif"):
        out = tmp_path / name
        out.write_bytes(b"precious")
        with pytest.raises(OutputExistsError):
            lazyastro.write(stack, out)
        assert out.read_bytes() == b"precious"

        def boom(block):
            if block.sum() >= 0:
                raise RuntimeError("disk on fire")
            return block

        bad = da.from_array(stack, chunks=(1, 12, 10)).map_blocks(boom, dtype=stack.dtype)
        fresh = tmp_path / ("b" + name)
        with pytest.raises(RuntimeError, match="disk on fire"):
            lazyastro.write(bad, fresh, progress=False)
        assert not fresh.exists() and not partial_path(fresh).exists()


def test_cli_convert_through_tiff_and_npy(files, stack, tmp_path):
    assert main(["--no-progress", "convert", str(files["fits"]), str(tmp_path / "a.tif")]) == 0
    assert main(["--no-progress", "convert", str(tmp_path / "a.tif"), str(tmp_path / "a.npy")]) == 0
    assert main(["--no-progress", "convert", str(tmp_path / "a.npy"), str(tmp_path / "a.fits")]) == 0
    np.testing.assert_array_equal(fits.getdata(tmp_path / "a.fits"), stack)
    assert main(["--no-progress", "frames", "convert", str(files["frame-cache-npz"]), str(tmp_path / "b.tif"),
                 "--compression", "zlib"]) == 0
    np.testing.assert_array_equal(lf.open(tmp_path / "b.tif").values, stack)


# ------------------------------------------------------------------ start-up cost

HEAVY = ("distributed", "matplotlib", "scipy", "pandas")


def _modules_after(code: str) -> dict:
    names = HEAVY + ("dask", "xarray", "numpy", "h5py", "zarr", "astropy")
    script = textwrap.dedent(code) + (
        f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {names!r}}}))\n"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_import_lazyastro_is_light():
    loaded = _modules_after("import lazyastro")
    assert not any(loaded[m] for m in HEAVY), loaded
    assert not loaded["dask"] and not loaded["xarray"], loaded


def test_cli_help_is_light():
    loaded = _modules_after("""
        import contextlib, io
        from lazyastro.cli.main import build_parser, main
        build_parser(None)
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["--help"])
            except SystemExit:
                pass
    """)
    assert not any(loaded[m] for m in HEAVY), loaded
    assert not loaded["dask"] and not loaded["xarray"], loaded


def test_subcommand_parsers_with_format_options_are_light():
    # Building info/convert/frames parsers loads every format declaration, but no reader.
    loaded = _modules_after("""
        from lazyastro.cli.main import build_parser
        for command in ("info", "convert", "frames", "formats"):
            build_parser(command)
    """)
    assert not any(loaded[m] for m in HEAVY), loaded
    assert not loaded["dask"] and not loaded["xarray"] and not loaded["h5py"], loaded


def test_info_reads_headers_only_for_npy_tiff_and_fits(files):
    for name in ("npy", "tiff", "fits"):
        loaded = _modules_after(f"""
            import contextlib, io
            from lazyastro.cli.main import main
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main(["info", {str(files[name])!r}, "--chunks", "2,-1,-1"]) == 0
            assert "(3 blocks)" in out.getvalue(), out.getvalue()
        """)
        assert not any(loaded[m] for m in HEAVY), (name, loaded)
        assert not loaded["xarray"], (name, loaded)


def test_describe_matches_open(files):
    for name in ("fits", "npy", "tiff", "zarr", "hexrd-hdf5"):
        summary = registry.describe(files[name])
        arr = lazyastro.open(files[name])
        assert summary.dims == arr.dims and summary.shape == arr.shape and summary.dtype == arr.dtype
        assert summary.chunks == arr.data.chunksize and summary.nblocks == arr.data.npartitions


def test_info_does_not_import_distributed_or_matplotlib(files):
    loaded = _modules_after(f"""
        import contextlib, io
        from lazyastro.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["info", {str(files["fits"])!r}]) == 0
    """)
    assert not any(loaded[m] for m in HEAVY), loaded
    assert not loaded["xarray"], loaded
