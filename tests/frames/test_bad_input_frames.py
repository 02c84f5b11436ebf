"""Bad series input: validated frame caches, one-line YAML errors, FITS-per-frame scaling,
Zarr metadata against chunk bytes, read errors naming file and frames, the npz median budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from astropy.io import fits

import lazyastro.frames as lf
from lazyastro.core.errors import FormatError, LazyAstroError
from lazyastro.core.execution import compute
from lazyastro.frames.formats.framecache import open_fch5_cache, open_npz_cache
from lazyastro.frames.formats.imagefiles import open_fits_files, open_image_files

ROOT = Path(__file__).resolve().parents[2]


def _one_line(err: BaseException, *names) -> str:
    text = str(err)
    assert "\n" not in text, text
    for name in names:
        assert str(name) in text, text
    return text


def _npz(path, nframes=2, shape=(4, 5), dtype="uint16", frames=None):
    frames = frames if frames is not None else {
        i: (np.array([0, 1], "u2"), np.array([2, 3], "u2"), np.array([7, 9], dtype)) for i in range(nframes)
    }
    fields = {"shape": np.array(shape), "nframes": np.array(nframes), "dtype": np.array(str(dtype).encode())}
    for i, (r, c, v) in frames.items():
        fields.update({f"{i}_row": r, f"{i}_col": c, f"{i}_data": v})
    np.savez(path, **fields)
    return path


# --------------------------------------------------------------------------- npz frame caches


@pytest.mark.parametrize("kw,match", [
    ({"nframes": -3, "frames": {}}, "'nframes' is -3"),
    ({"nframes": 3, "frames": {0: (np.array([0], "u2"),) * 2 + (np.array([1], "u2"),)}}, "frame field"),
    ({"shape": (4,)}, "'shape' must hold 2 values"),
    ({"shape": (4, -5)}, "'shape' is -5"),
    ({"frames": {0: (np.array([0], "u2"), np.array([9], "u2"), np.array([1], "u2")),
                 1: (np.array([0], "u2"), np.array([0], "u2"), np.array([1], "u2"))}}, "out of range"),
    ({"frames": {0: (np.array([0], "u2"), np.array([1], "u2"), np.array([1.5])),
                 1: (np.array([0], "u2"), np.array([0], "u2"), np.array([1], "u2"))}}, "dtype"),
    ({"dtype": "object"}, "dtype"),
])
def test_npz_fields_validated_at_open(tmp_path, kw, match):
    path = _npz(tmp_path / "c.npz", **kw)
    with pytest.raises(FormatError, match=match) as exc:
        open_npz_cache(path)
    _one_line(exc.value, path)


def test_npz_out_of_range_index_in_a_later_frame_names_it(tmp_path, scheduler):
    good = (np.array([0], "u2"), np.array([1], "u2"), np.array([5], "u2"))
    path = _npz(tmp_path / "c.npz", nframes=4, frames={0: good, 1: good, 2: (np.array([70], "u2"),
                np.array([1], "u2"), np.array([5], "u2")), 3: good})
    s = open_npz_cache(path, chunks={"frame": 1})
    with pytest.raises(FormatError) as exc:
        compute(s.data, scheduler=scheduler, progress=False)
    _one_line(exc.value, path, "frame 2", "out of range")


# --------------------------------------------------------------------------- fch5 frame caches


def _fch5(path, nframes=2, ids=None, data_n=4, idx_n=None, bad_index=False):
    with h5py.File(path, "w") as h5:
        h5.attrs["HEXRD_FRAMECACHE_VERSION"] = 1
        h5["shape"] = np.array([4, 5])
        h5["nframes"] = np.int64(nframes)
        h5["dtype"] = np.bytes_(b"uint16")
        h5["data"] = np.arange(1, data_n + 1, dtype="u2")[:, None]
        idx = np.zeros((idx_n if idx_n is not None else data_n, 2), "u2")
        if bad_index:
            idx[-1] = (3, 99)
        h5["indices"] = idx
        h5["frame_ids"] = np.array(ids if ids is not None else [0, 2, 2, data_n], "u8")
    return path


@pytest.mark.parametrize("kw,match", [
    ({"nframes": -1, "ids": []}, "'nframes' is -1"),
    ({"ids": [0, 2, 2, 9]}, "frame_ids"),
    ({"ids": [0, 2]}, "frame_ids"),
    ({"idx_n": 3}, "'indices'"),
])
def test_fch5_fields_validated_at_open(tmp_path, kw, match):
    path = _fch5(tmp_path / "c.fch5", **kw)
    with pytest.raises(FormatError, match=match) as exc:
        open_fch5_cache(path)
    _one_line(exc.value, path)


def test_fch5_out_of_range_index_fails_naming_frame(tmp_path):
    path = _fch5(tmp_path / "c.fch5", bad_index=True)
    s = open_fch5_cache(path, chunks={"frame": 1})
    assert s[0].values[0, 0] == 2  # frame 0 is fine (its two pixels both at (0, 0): the last wins)
    with pytest.raises(FormatError) as exc:
        _ = s[1].values
    _one_line(exc.value, path, "frame 1", "out of range")


# --------------------------------------------------------------------------- YAML


def test_yaml_errors_are_one_line(tmp_path):
    bad = tmp_path / "series.yml"
    bad.write_text("image-files:\n  directory: [a, b\n  files: '*.fits'\n")
    with pytest.raises(FormatError, match="invalid YAML: line") as exc:
        open_image_files(bad)
    _one_line(exc.value, bad)
    with pytest.raises(FormatError, match="invalid YAML") as exc:
        open_image_files("image-files: {directory: [\n")
    _one_line(exc.value)
    opt = tmp_path / "opt.yml"
    opt.write_text("image-files:\n  files: '*.fits'\noptions:\n  empty-frames: -2\n")
    with pytest.raises(FormatError, match="'empty-frames' must be >= 0, got -2") as exc:
        open_image_files(opt)
    _one_line(exc.value, opt)
    cache = tmp_path / "cache.yml"
    cache.write_text("data: {file: c.npz\nmeta: {}\n")
    from lazyastro.frames.formats.framecache import open_yml_cache

    with pytest.raises(FormatError, match="invalid YAML") as exc:
        open_yml_cache(cache)
    _one_line(exc.value, cache)


# --------------------------------------------------------------------------- one FITS file per frame


def _frames_dir(tmp_path, make):
    d = tmp_path / "frames"
    d.mkdir()
    refs = []
    for i in range(3):
        hdu = make(i)
        hdu.writeto(d / f"f{i:02d}.fits")
        with fits.open(d / f"f{i:02d}.fits") as hdul:
            refs.append(np.asarray(hdul[0].data))
    return d, np.stack(refs)


def test_fits_files_with_bzero_uint16_frames(tmp_path):
    d, ref = _frames_dir(tmp_path, lambda i: fits.PrimaryHDU((np.arange(12).reshape(3, 4) * 5000 + i).astype("u2")))
    assert ref.dtype == np.uint16 and ref.max() > 32767
    s = open_fits_files(d)
    assert s.dtype == np.uint16
    np.testing.assert_array_equal(s.values, ref)


def test_fits_files_with_blank_frames_read_as_astropy(tmp_path):
    def make(i):
        raw = (np.arange(12).reshape(3, 4) + i).astype("i2")
        raw[0, 0] = -1
        hdu = fits.PrimaryHDU(raw)
        hdu.header["BLANK"] = -1
        return hdu

    d, ref = _frames_dir(tmp_path, make)
    s = open_fits_files(d)
    assert s.dtype == ref.dtype.newbyteorder("=") == np.float32
    np.testing.assert_array_equal(s.values, ref)
    assert np.isnan(s.values[:, 0, 0]).all()


def test_fits_files_gzip_frames(tmp_path):
    import gzip

    d = tmp_path / "gz"
    d.mkdir()
    ref = np.arange(3 * 40 * 30, dtype="f4").reshape(3, 40, 30) % 7
    for i in range(3):
        fits.writeto(tmp_path / "t.fits", ref[i], overwrite=True)
        (d / f"f{i}.fits.gz").write_bytes(gzip.compress((tmp_path / "t.fits").read_bytes()))
    np.testing.assert_array_equal(open_fits_files(d).values, ref)


# --------------------------------------------------------------------------- Zarr metadata vs chunk bytes


@pytest.mark.parametrize("compressed", [False, True])
def test_zarr_dtype_that_does_not_match_the_chunks_is_refused(tmp_path, compressed):
    from zarr.codecs import BloscCodec

    path = tmp_path / "s.zarr"
    z = zarr.create_array(store=str(path), shape=(4, 8, 8), chunks=(2, 8, 8), dtype="u2",
                          compressors=[BloscCodec(cname="lz4")] if compressed else None)
    z[:] = np.arange(4 * 64, dtype="u2").reshape(4, 8, 8)
    meta = json.loads((path / "zarr.json").read_text())
    meta["data_type"] = "uint32"
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(LazyAstroError) as exc:
        s = lf.open(path)
        _ = s.values
    _one_line(exc.value, path)
    assert "metadata does not match" in str(exc.value) or "cannot read" in str(exc.value)


# --------------------------------------------------------------------------- hexrd HDF5 read errors


def test_corrupt_hexrd_chunk_names_file_and_frames(tmp_path):
    path = tmp_path / "s.h5"
    data = np.random.default_rng(1).integers(0, 900, (6, 32, 32)).astype("u2")
    lf.write(data, path, format="hexrd-hdf5")
    with h5py.File(path, "r") as f:
        offset = f["imageseries/images"].id.get_chunk_info(4).byte_offset
    with open(path, "r+b") as f:
        f.seek(offset + 8)
        f.write(b"\xff" * 64)
    s = lf.open(path, chunks={"frame": 1})
    with pytest.raises(FormatError) as exc:
        _ = s.values
    _one_line(exc.value, path, "frames 4:5")


# --------------------------------------------------------------------------- npz median within the budget

_CHILD = textwrap.dedent("""
    import json, sys
    import dask
    import numpy as np
    import lazyastro.frames as lf
    from lazyastro.core.config import set_options
    from lazyastro.core.execution import compute
    from lazyastro.core.memory import current_rss, peak_rss, reset_peak_rss

    path, budget = sys.argv[1], int(sys.argv[2])
    with set_options(memory_budget=budget, scheduler="threads", progress=False), \\
            dask.config.set(num_workers=2):
        s = lf.open(path)
        compute(lf.median(s.isel(y=slice(0, 4))).data)  # warm-up
        lazy = lf.median(s)
        base = current_rss()
        reset_peak_rss()
        (out,) = compute(lazy.data)
        print(json.dumps({"peak": peak_rss() - base, "sum": float(np.asarray(out, np.float64).sum())}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc/self/clear_refs")
def test_npz_median_stays_within_the_budget(tmp_path):
    rng = np.random.default_rng(3)
    nf, ny, nx = 48, 1024, 1024
    data = np.zeros((nf, ny, nx), "u2")
    data[:, :16] = rng.integers(1, 1000, (nf, 16, nx))  # a dense band: a non-trivial median
    mask = rng.random((nf, ny, nx)) < 0.01
    data[mask] = rng.integers(1, 1000, int(mask.sum()))
    path = tmp_path / "c.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lf.write(data, path, threshold=0)
    budget = data.nbytes // 4  # 24 MiB for a 96 MiB series
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, str(script), str(path), str(budget)],
                         capture_output=True, text=True, env=env, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["sum"] == pytest.approx(float(np.median(data, 0).sum()))
    if got["peak"] <= 0:
        pytest.skip("peak RSS reset not supported here")
    assert got["peak"] < budget, f"peak {got['peak'] / 2**20:.1f} MiB over a {budget / 2**20:.0f} MiB budget"
