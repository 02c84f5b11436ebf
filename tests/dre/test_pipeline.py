"""The DRE pipeline: parameter recovery on simulated fields, ``dre run`` end to end (sep and the real
binaries), resume after ``kill -9`` of ``dre fit``, bad inputs (one line, exit 1, no outputs)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

pytest.importorskip("sep")

from lazyastro.cli.main import main  # noqa: E402
from lazyastro.core.stream import record_path  # noqa: E402
from lazyastro.dre import make_models, write_models  # noqa: E402
from lazyastro.dre.demo import demo_grid, match_truth, recovery  # noqa: E402
from lazyastro.dre.outputs import SUMMARY_COLUMNS, read_chi_h5  # noqa: E402
from lazyastro.dre.pipeline import run  # noqa: E402
from lazyastro.dre.simulate import write_tiles  # noqa: E402

GRID = demo_grid()
FIELD = dict(shape=(512, 512), n_galaxies=10, n_stars=5, q_range=(0.4, 1.0), log_r_range=(0.0, 1.0),
             min_separation=60.0, galaxy_flux=(2e4, 8e4))


@pytest.fixture(scope="module")
def models_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "models.zarr"
    write_models(make_models(**GRID, boxsize=128), path)
    return path


def _run_field(root: Path, models_path, *, on_grid=True, seed=3, engine="sep", cli=False):
    tiles = write_tiles(root, seed=seed, grid=GRID, on_grid=on_grid, **FIELD)
    if cli:
        assert main(["--no-progress", "dre", "run", str(root / "Tiles"), "-m", str(models_path),
                     "--engine", engine, "--mosaics"]) == 0
        summary = root / "Summary" / "tile00_dre.fits"
    else:
        (summary,) = run(root / "Tiles", models=models_path, engine=engine, progress=False)
    return Path(summary), tiles[0]


@pytest.fixture(scope="module")
def field(tmp_path_factory, models_path):
    root = tmp_path_factory.mktemp("field")
    summary, tile = _run_field(root, models_path, cli=True)
    return root, summary, tile


def test_run_sep_end_to_end_joined_summary(field):
    root, summary, tile = field
    for rel in ("Sextracted/tile00/tile00_cat.fits", "Cuts/tile00_cuts.h5", "Chi/tile00_chi.h5",
                "Chi/tile00_chi.zarr", "Summary/tile00_dre.fits"):
        assert (root / rel).exists(), rel
    assert any((root / "PSF").iterdir())
    t = Table.read(summary)
    assert t.colnames[: len(SUMMARY_COLUMNS)] == list(SUMMARY_COLUMNS)
    assert {"X_IMAGE", "Y_IMAGE", "CLASS_STAR", "FLAG_EDGE"} <= set(t.colnames) and "VIGNET" not in t.colnames
    assert len(t) >= 8 and t["MODEL_IDX"].shape[1] == 4
    chi = read_chi_h5(root / "Chi" / "tile00_chi.h5")
    keys = {f"{e:02d}_{n:04d}" for e, n in zip(t["EXT_NUMBER"], t["NUMBER"])}
    assert keys <= set(chi)
    assert next(iter(chi.values())).shape == (1, 3, 5, 6)
    with h5py.File(root / "Chi" / "tile00_chi.h5") as f:
        assert next(iter(f.values())).compression == "gzip"
    # the summary's best model is the argmin of the stored cube
    row = t[0]
    cube = chi[f"{row['EXT_NUMBER']:02d}_{row['NUMBER']:04d}"]
    assert tuple(row["MODEL_IDX"]) == np.unravel_index(np.nanargmin(cube), cube.shape)
    np.testing.assert_allclose(row["CHI"], np.nanmin(cube), rtol=1e-5)
    pngs = sorted((root / "Mosaics" / "tile00").glob("*_mosaic.png"))
    assert len(pngs) == len(t)
    with fits.open(pngs[0].with_suffix(".fits")) as hdul:
        assert hdul[1].data.shape == (128, 512)


def _assert_same_table(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for c in a.colnames:
        np.testing.assert_array_equal(np.asarray(a[c]), np.asarray(b[c]), err_msg=c)  # NaN == NaN here


def test_rerun_keeps_finished_work(field, models_path):
    root, summary, _ = field
    stamps = {rel: (root / rel).stat().st_mtime_ns for rel in
              ("Sextracted/tile00/tile00_cat.fits", "Cuts/tile00_cuts.h5", "Chi/tile00_chi.zarr/zarr.json")}
    before = Table.read(summary)
    assert run(root / "Tiles", models=models_path, engine="sep", progress=False) == [str(summary)]
    assert {rel: (root / rel).stat().st_mtime_ns for rel in stamps} == stamps  # nothing redone
    _assert_same_table(Table.read(summary), before)


def test_recovery_on_grid(field):
    _, summary, tile = field
    rec = recovery(match_truth(summary, tile["truth"]), grid=GRID)
    assert rec["n"] >= 8, rec
    assert rec["exact"] >= 0.85, rec
    assert rec["log_r_1step"] == 1.0, rec


def test_recovery_off_grid(tmp_path, models_path):
    summary, tile = _run_field(tmp_path, models_path, on_grid=False, seed=11)
    rec = recovery(match_truth(summary, tile["truth"]), grid=GRID)
    assert rec["n"] >= 8, rec
    assert rec["log_r_1step"] >= 0.9, rec
    # a tile rewritten after its products (as a rerun of the demo does) is extracted again, and the
    # rerun still fits it
    tile_path = next((tmp_path / "Tiles").glob("*.fits"))
    os.utime(tile_path, ns=(time.time_ns() + 10**9,) * 2)
    before = Table.read(summary)
    assert run(tmp_path / "Tiles", models=models_path, engine="sep", progress=False) == [str(summary)]
    _assert_same_table(Table.read(summary), before)


@pytest.mark.skipif(not (shutil.which("source-extractor") or shutil.which("sex")) or not shutil.which("psfex"),
                    reason="SExtractor and PSFEx binaries not installed")
def test_run_with_sextractor_and_psfex(tmp_path, models_path):
    summary, tile = _run_field(tmp_path, models_path, engine="sextractor", seed=5)
    assert (tmp_path / "PSF" / "tile00.psf").exists()
    t = Table.read(summary)
    assert len(t) >= 6 and "FLUX_AUTO" in t.colnames
    rec = recovery(match_truth(summary, tile["truth"]), grid=GRID)
    assert rec["n"] >= 6 and rec["log_r_1step"] >= 0.8, rec


# --------------------------------------------------------------------------- resume

FIT_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import lazyastro.dre.pipeline as pipeline
    from lazyastro.cli.main import main

    _check = pipeline._check_block

    def slow_check(obj, seg, rms, keys, *, path):
        if os.environ.get("SLOW"):
            time.sleep(0.25)
        return _check(obj, seg, rms, keys, path=path)

    pipeline._check_block = slow_check
    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    """
)


def _fit_args(root: Path, models_path, out: str) -> list[str]:
    return ["--scheduler", "sync", "--no-progress", "dre", "fit", str(models_path), "--psf",
            str(next((root / "PSF").iterdir())), "-i", str(root / "Cuts"), "-o", str(root / f"{out}-Summary"),
            "--chi", str(root / f"{out}-Chi"), "--catalogs", str(root / "Sextracted"), "--objects-per-block", "1"]


def test_fit_resumes_after_kill_9(field, models_path, tmp_path, monkeypatch):
    import lazyastro.dre.pipeline as pipeline

    root, _, _ = field
    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    assert main(_fit_args(root, models_path, "ref")) == 0  # the uninterrupted reference, in this process
    n_obj = len(read_chi_h5(root / "ref-Chi" / "tile00_chi.h5"))

    proc = subprocess.Popen([sys.executable, str(script), *_fit_args(root, models_path, "kill")],
                            env=dict(os.environ, SLOW="1"))
    record = record_path(root / "kill-Chi" / "tile00_chi.zarr")
    deadline = time.time() + 120
    while time.time() < deadline and len(list(record.glob("0-*.done"))) < 4:  # variable 0: chi2
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(record.glob("0-*.done")))
    assert 2 <= done_before < n_obj, "the fit was not interrupted mid-way"
    assert not (root / "kill-Summary" / "tile00_dre.fits").exists()

    # rerun (in this process), logging the blocks it computes
    computed = []
    check = pipeline._check_block

    def logged(obj, seg, rms, keys, *, path):
        computed.append(str(np.asarray(keys).ravel()[0]))
        return check(obj, seg, rms, keys, path=path)

    monkeypatch.setattr(pipeline, "_check_block", logged)
    assert main(_fit_args(root, models_path, "kill")) == 0
    assert 0 < len(computed) <= n_obj - done_before + 1  # the finished blocks were not recomputed
    assert not record.exists()
    ref, out = read_chi_h5(root / "ref-Chi" / "tile00_chi.h5"), read_chi_h5(root / "kill-Chi" / "tile00_chi.h5")
    assert sorted(ref) == sorted(out)
    for k in ref:
        np.testing.assert_array_equal(ref[k], out[k])
    # written in one go from the finished chi store: the same bytes as the uninterrupted run's
    assert (root / "kill-Chi" / "tile00_chi.h5").read_bytes() == (root / "ref-Chi" / "tile00_chi.h5").read_bytes()
    _assert_same_table(Table.read(root / "kill-Summary" / "tile00_dre.fits"),
                       Table.read(root / "ref-Summary" / "tile00_dre.fits"))


# --------------------------------------------------------------------------- bad inputs


def _bad_fit(root: Path, models_path, tmp_path, capsys, *, psf=None, cuts=None, catalogs=None, command="fit") -> str:
    out = tmp_path / "out"
    args = ["--no-progress", "dre", command, "-m", str(models_path), "--psf", str(psf or next((root / "PSF").iterdir())),
            "-i", str(cuts or root / "Cuts" / "tile00_cuts.h5"), "-o", str(out / "Summary"), "--chi", str(out / "Chi"),
            "--catalogs", str(catalogs or root / "Sextracted")]
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    assert left == [], left
    return err


def test_bad_psf_shape_and_negative(field, models_path, tmp_path, capsys):
    root, _, _ = field
    p3 = tmp_path / "cube_psf.fits"
    fits.PrimaryHDU(np.ones((3, 5, 5), "f4")).writeto(p3)
    assert "cube_psf.fits" in _bad_fit(root, models_path, tmp_path, capsys, psf=p3, command="dre")  # legacy name
    big = tmp_path / "big_psf.fits"
    fits.PrimaryHDU(np.ones((200, 200), "f4")).writeto(big)
    assert "big_psf.fits" in _bad_fit(root, models_path, tmp_path, capsys, psf=big)
    neg = tmp_path / "neg_psf.fits"
    fits.PrimaryHDU(-np.ones((11, 11), "f4")).writeto(neg)
    assert "neg_psf.fits" in _bad_fit(root, models_path, tmp_path, capsys, psf=neg)


def _catalog_dir(tmp_path, cols) -> Path:
    d = tmp_path / "cats" / "tile00"
    d.mkdir(parents=True)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="LDAC_OBJECTS")]).writeto(
        d / "tile00_cat.fits")
    return d.parent


def test_bad_catalogue_empty_or_without_number(field, models_path, tmp_path, capsys):
    root, _, _ = field
    empty = _catalog_dir(tmp_path / "e", [fits.Column("NUMBER", "J", array=np.zeros(0, int)),
                                          fits.Column("X_IMAGE", "E", array=np.zeros(0))])
    assert "empty" in _bad_fit(root, models_path, tmp_path, capsys, catalogs=empty)
    nonum = _catalog_dir(tmp_path / "n", [fits.Column("X_IMAGE", "E", array=np.ones(3))])
    assert "NUMBER" in _bad_fit(root, models_path, tmp_path, capsys, catalogs=nonum)


def _copy_cuts(root: Path, tmp_path: Path) -> Path:
    d = tmp_path / "badcuts"
    d.mkdir(parents=True)
    dst = d / "tile00_cuts.h5"
    shutil.copy(root / "Cuts" / "tile00_cuts.h5", dst)
    return dst


def test_bad_cuts_without_rms_or_with_nan(field, models_path, tmp_path, capsys):
    root, _, _ = field
    cuts = _copy_cuts(root, tmp_path)
    with h5py.File(cuts, "a") as f:
        del f[sorted(f)[1]]["rms"]
    assert "rms" in _bad_fit(root, models_path, tmp_path, capsys, cuts=cuts)
    cuts.unlink()
    cuts = _copy_cuts(root, tmp_path / "x")
    with h5py.File(cuts, "a") as f:
        key = sorted(f)[-1]
        obj = f[key]["obj"][()]
        obj[64, 64] = np.nan
        f[key]["obj"][...] = obj
    err = _bad_fit(root, models_path, tmp_path, capsys, cuts=cuts)
    assert "NaN" in err and key in err


# --------------------------------------------------------------------------- PSF directory, legacy mode


def test_fit_psf_directory_skips_tiles_without_psf(field, models_path, tmp_path):
    from lazyastro.dre import fit

    root, summary, _ = field
    cuts = tmp_path / "Cuts"
    cuts.mkdir()
    shutil.copy(root / "Cuts" / "tile00_cuts.h5", cuts / "tile00_cuts.h5")
    shutil.copy(root / "Cuts" / "tile00_cuts.h5", cuts / "other_cuts.h5")
    psf_dir = tmp_path / "PSF"
    psf_dir.mkdir()
    shutil.copy(next((root / "PSF").iterdir()), psf_dir / "tile00.psf")
    with pytest.warns(UserWarning, match="no PSF other.psf"):
        out = fit(cuts, models=models_path, psf=psf_dir, chi_dir=tmp_path / "Chi", summary_dir=tmp_path / "Summary",
                  catalogs=root / "Sextracted", mosaics=tmp_path / "Mosaics", mode="legacy", progress=False)
    assert out == [str(tmp_path / "Summary" / "tile00_dre.fits")]
    assert not (tmp_path / "Chi" / "other_chi.h5").exists()
    t = Table.read(out[0])
    assert len(t) == len(Table.read(summary))
    # legacy mosaics: every panel transposed relative to the cut
    key = f"{t['EXT_NUMBER'][0]:02d}_{t['NUMBER'][0]:04d}"
    mosaic = fits.getdata(tmp_path / "Mosaics" / "tile00" / f"tile00_{key}_mosaic.fits", ext=1)
    with h5py.File(cuts / "tile00_cuts.h5") as f:
        np.testing.assert_array_equal(mosaic[:, :128], f[key]["obj"][()].T)


def test_fit_without_catalogue_writes_unjoined_summary_psf_variance(field, models_path, tmp_path):
    from lazyastro.dre import fit

    root, summary, _ = field
    with pytest.warns(UserWarning, match="unjoined"):
        out = fit(root / "Cuts" / "tile00_cuts.h5", models=models_path, psf=next((root / "PSF").iterdir()),
                  chi_dir=tmp_path / "Chi", summary_dir=tmp_path / "Summary", catalogs=tmp_path / "none",
                  variance="psf", compression="none", progress=False)
    assert out == str(tmp_path / "Summary" / "tile00_dre.fits")
    t, joined = Table.read(out), Table.read(summary)
    assert t.colnames[: len(SUMMARY_COLUMNS)] == list(SUMMARY_COLUMNS) and "X_IMAGE" not in t.colnames
    assert sorted(t["NUMBER"]) == sorted(joined["NUMBER"])
    with h5py.File(tmp_path / "Chi" / "tile00_chi.h5") as f:
        key = sorted(f)[0]
        assert f[key].compression is None
        psf_chi = f[key][()]
    assert not np.allclose(psf_chi, read_chi_h5(root / "Chi" / "tile00_chi.h5")[key])  # another variance
