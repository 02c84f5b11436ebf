"""lazyastro.dre.psf: PSFEx runs, reading .psf/.fits PSFs, the empirical PSF."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from lazyastro.cli.main import main
from lazyastro.core.errors import FormatError, InputNotFoundError, LazyAstroError
from lazyastro.dre.extraction import find_sextractor, sextract
from lazyastro.dre.psf import (
    clean_psf,
    empirical_psf,
    find_psfex,
    make_psf,
    read_psf,
    run_psfex,
    write_psf,
)

needs_psfex = pytest.mark.skipif(find_psfex() is None or find_sextractor() is None,
                                 reason="SExtractor and PSFEx binaries not installed")


def _true_psf(dre_tile):
    return fits.getdata(dre_tile["psf"]).astype(np.float64)


def _check_psf(psf, true, tol=0.08):
    assert psf.shape == true.shape and psf.dtype == np.float64
    assert (psf >= 0).all() and abs(psf.sum() - 1) < 1e-12
    assert np.unravel_index(psf.argmax(), psf.shape) == (12, 12)
    assert np.abs(psf - true).sum() < tol  # L1 distance to the true PSF


@needs_psfex
def test_sextractor_psfex_end_to_end(dre_tile, tmp_path):
    sx = sextract(dre_tile["tile"], tmp_path / "Sextracted", engine="sextractor", gain="counts")
    out = run_psfex(sx["catalog"], tmp_path / "PSF")
    assert out == str(tmp_path / "PSF" / "tile00.psf")  # <name>_cat.psf renamed as the legacy tool
    assert sorted(p.name for p in (tmp_path / "PSF").iterdir()) == ["tile00.psf"]
    with fits.open(out) as hdul:
        assert hdul[1].header["ACCEPTED"] > 3 and hdul[1].header["PSF_SAMP"] == 1.0
    _check_psf(read_psf(out), _true_psf(dre_tile), tol=0.05)


@needs_psfex
def test_psfex_on_sep_catalogue(dre_tile, dre_sextracted, tmp_path):
    # the sep catalogue has the LDAC layout and columns PSFEx needs
    _check_psf(read_psf(run_psfex(dre_sextracted["catalog"], tmp_path)), _true_psf(dre_tile), tol=0.05)


@needs_psfex
def test_psfex_failure(dre_tile, tmp_path):
    bad = tmp_path / "x_cat.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("A", "E", array=[1.0])])]).writeto(bad)
    with pytest.raises(LazyAstroError, match="x_cat.fits: PSFEx"):
        run_psfex(bad, tmp_path / "PSF")


@needs_psfex
def test_psfex_no_star(tmp_path):
    pytest.importorskip("sep")
    fits.PrimaryHDU(np.random.default_rng(0).normal(0, 1, (200, 200)).astype(np.float32)).writeto(tmp_path / "n.fits")
    cat = sextract(tmp_path / "n.fits", tmp_path, engine="sep", threshold=10)["catalog"]
    with pytest.raises(LazyAstroError, match="n_cat.fits: PSFEx produced no usable PSF: .*accepted no star"):
        run_psfex(cat, tmp_path / "PSF")
    assert not (tmp_path / "PSF" / "n.psf").exists()


def test_empirical_psf(dre_tile, dre_sextracted):
    true = _true_psf(dre_tile)
    _check_psf(empirical_psf(dre_sextracted["nb"], dre_sextracted["catalog"]), true)


def test_empirical_psf_epsf(dre_tile, dre_sextracted):
    pytest.importorskip("photutils")
    _check_psf(empirical_psf(dre_sextracted["nb"], dre_sextracted["catalog"], method="epsf", max_stars=8),
               _true_psf(dre_tile))


def test_make_psf_fallback(dre_tile, dre_psf):
    assert dre_psf.endswith("PSF/tile00.psf")
    _check_psf(read_psf(dre_psf), _true_psf(dre_tile))


def test_empirical_psf_too_few_stars(dre_sextracted):
    with pytest.raises(FormatError, match="only 0 PSF stars"):
        empirical_psf(dre_sextracted["nb"], dre_sextracted["catalog"], min_snr=1e9)


def test_read_psf_formats_and_bad_files(tmp_path):
    g = np.outer([1.0, 3.0, 1.0], [1.0, 3.0, 1.0])
    g[0, 0] = -0.5
    for name in ("a.fits", "a.psf"):
        p = write_psf(np.clip(g, 0, None), tmp_path / name)
        psf = read_psf(p)
        assert abs(psf.sum() - 1) < 1e-12 and psf[1, 1] == pytest.approx(9 / 24)
    # negatives clipped before normalising; plain FITS primary read as is
    fits.PrimaryHDU(g).writeto(tmp_path / "neg.fits")
    assert read_psf(tmp_path / "neg.fits")[0, 0] == 0.0
    # a PSFEx file: the first HDU with ACCEPTED != 0, first row/component
    mask = np.zeros((1, 2, 5, 5), np.float32)
    mask[0, 0, 2, 2] = 1.0
    mask[0, 1] = 7.0
    col = fits.Column(name="PSF_MASK", format="50E", dim="(5, 5, 2)", array=mask)
    rejected = fits.BinTableHDU.from_columns([fits.Column(name="PSF_MASK", format="50E", dim="(5, 5, 2)",
                                                          array=np.ones_like(mask))], name="PSF_DATA")
    rejected.header["ACCEPTED"] = 0
    good = fits.BinTableHDU.from_columns([col], name="PSF_DATA")
    good.header["ACCEPTED"] = 12
    good.header["PSF_SAMP"] = 1.0
    fits.HDUList([fits.PrimaryHDU(), rejected, good]).writeto(tmp_path / "multi.psf")
    psf = read_psf(tmp_path / "multi.psf")
    assert psf[2, 2] == 1.0 and psf.sum() == 1.0
    # errors: name the file and the field
    with pytest.raises(InputNotFoundError, match="nope.psf"):
        read_psf(tmp_path / "nope.psf")
    (tmp_path / "p.txt").write_text("1 2 3")
    with pytest.raises(FormatError, match="p.txt: unsupported PSF file extension"):
        read_psf(tmp_path / "p.txt")
    fits.PrimaryHDU(-np.ones((5, 5))).writeto(tmp_path / "allneg.fits")
    with pytest.raises(FormatError, match="allneg.fits: HDU 0: PSF has no positive pixel"):
        read_psf(tmp_path / "allneg.fits")
    fits.PrimaryHDU(np.ones((2, 5, 5))).writeto(tmp_path / "cube.fits")
    with pytest.raises(FormatError, match=r"cube.fits: HDU 0: PSF must be a 2-D image, got shape \(2, 5, 5\)"):
        read_psf(tmp_path / "cube.fits")
    nan = np.ones((5, 5))
    nan[1, 1] = np.nan
    fits.PrimaryHDU(nan).writeto(tmp_path / "nan.fits")
    with pytest.raises(FormatError, match="non-finite"):
        read_psf(tmp_path / "nan.fits")
    rejected_only = fits.HDUList([fits.PrimaryHDU(), rejected])
    rejected_only.writeto(tmp_path / "none.psf")
    with pytest.raises(FormatError, match="none.psf: no HDU with ACCEPTED != 0"):
        read_psf(tmp_path / "none.psf")
    good.header["PSF_SAMP"] = 0.5
    fits.HDUList([fits.PrimaryHDU(), good]).writeto(tmp_path / "half.psf")
    with pytest.raises(FormatError, match="PSF_SAMP = 0.5"):
        read_psf(tmp_path / "half.psf")
    (tmp_path / "junk.psf").write_bytes(b"\0" * 3000)
    with pytest.raises(FormatError, match="junk.psf"):
        read_psf(tmp_path / "junk.psf")
    with pytest.raises(FormatError):
        clean_psf(np.zeros((3, 3)))


def test_cli_psfex_empirical(dre_sextracted, tmp_path, capsys):
    code = main(["dre", "psfex_dre", "-i", dre_sextracted["catalog"], "-o", str(tmp_path), "--engine", "empirical"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert (tmp_path / "tile00.psf").is_file() and "PSF 25x25" in out.out


def test_make_psf_needs_nb(tmp_path, dre_sextracted):
    import shutil

    cat = tmp_path / "t_cat.fits"
    shutil.copy(dre_sextracted["catalog"], cat)
    with pytest.raises(InputNotFoundError, match="t_nb.fits"):
        make_psf(cat, tmp_path, engine="empirical")
