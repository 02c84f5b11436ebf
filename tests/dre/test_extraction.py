"""lazyastro.dre.extraction (sextract): the sep engine and the SExtractor binary, end to end on a simulated tile."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from lazyastro.cli.main import main
from lazyastro.core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from lazyastro.dre.extraction import (
    find_sextractor,
    read_catalog,
    resolve_gain,
    sextract,
    write_ldac,
)

NEEDED = ["NUMBER", "EXT_NUMBER", "X_IMAGE", "Y_IMAGE", "THETA_IMAGE", "A_IMAGE", "B_IMAGE", "CLASS_STAR",
          "FLUX_AUTO", "FLAGS", "ELONGATION", "FWHM_IMAGE", "FLUX_APER", "FLUXERR_APER", "FLUX_RADIUS", "SNR_WIN"]
needs_sextractor = pytest.mark.skipif(find_sextractor() is None, reason="SExtractor binary not installed")


def _match(cat, truth, radius=1.5):
    """Index into truth of each catalogue row (or -1) and the distance."""
    d = np.hypot(np.asarray(cat["X_IMAGE"])[:, None] - np.asarray(truth["x"])[None],
                 np.asarray(cat["Y_IMAGE"])[:, None] - np.asarray(truth["y"])[None])
    j = d.argmin(axis=1)
    return np.where(d.min(axis=1) < radius, j, -1), d.min(axis=1)


def _check_products(out, truth, shape=(512, 512)):
    with fits.open(out["catalog"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "LDAC_IMHEAD", "LDAC_OBJECTS"]
        cards = hdul[1].data["Field Header Card"][0]
        assert any(str(c).startswith("NAXIS1") for c in cards) and str(cards[-1]).startswith("END")
        assert hdul[2].columns["VIGNET"].dim == "(35,35)" or hdul[2].columns["VIGNET"].dim == "(35, 35)"
    cat = read_catalog(out["catalog"])
    for col in NEEDED:
        assert col in cat.colnames, col
    nb, rms, seg = (fits.getdata(out[k]) for k in ("nb", "rms", "seg"))
    assert nb.shape == rms.shape == seg.shape == shape
    assert seg.dtype.kind == "i" and seg.max() == len(cat)
    assert abs(float(np.median(nb))) < 0.5  # background (sky 10) subtracted
    assert 0.8 < float(np.median(rms)) < 1.3  # sky noise 1
    # every truth source brighter than the detection limit is found near its true position
    j, d = _match(cat, truth)
    found = set(j[j >= 0].tolist())
    primaries = np.flatnonzero(~truth["is_neighbour"])
    assert set(primaries.tolist()) <= found
    assert np.median(d[j >= 0]) < 0.3
    # the segmentation pixel under each detection is its NUMBER
    iy = np.round(np.asarray(cat["Y_IMAGE"]) - 1).astype(int)
    ix = np.round(np.asarray(cat["X_IMAGE"]) - 1).astype(int)
    assert (seg[iy, ix] == np.asarray(cat["NUMBER"])).mean() > 0.9
    # stellarity separates stars from galaxies
    stars = np.array([truth["is_star"][k] if k >= 0 else False for k in j])
    gals = np.array([(not truth["is_star"][k]) and (not truth["is_neighbour"][k]) if k >= 0 else False for k in j])
    cls = np.asarray(cat["CLASS_STAR"])
    assert np.median(cls[stars]) > 0.8 and np.median(cls[gals]) < 0.3
    # orientation of elongated galaxies follows the truth (THETA_IMAGE convention, mod 180)
    q = np.array([truth["q"][k] if k >= 0 else 1.0 for k in j])
    th = np.array([truth["theta"][k] if k >= 0 else 0.0 for k in j])
    el = gals & (q <= 0.5)
    if el.any():
        diff = np.abs((np.asarray(cat["THETA_IMAGE"])[el] - th[el] + 90) % 180 - 90)
        assert np.median(diff) < 10
    return cat


def test_sep_end_to_end(dre_sextracted, dre_truth):
    assert dre_sextracted["engine"] == "sep"
    cat = _check_products(dre_sextracted, dre_truth)
    assert (cat["EXT_NUMBER"] == 1).all()


@needs_sextractor
def test_sextractor_end_to_end(dre_tile, dre_truth, tmp_path):
    out = sextract(dre_tile["tile"], tmp_path / "S", engine="sextractor", gain="counts", subdir=True)
    assert out["engine"] == "sextractor" and out["catalog"] == str(tmp_path / "S" / "tile00" / "tile00_cat.fits")
    _check_products(out, dre_truth)
    assert not list((tmp_path / "S").rglob("*.partial"))


@needs_sextractor
def test_sextractor_and_sep_agree(dre_tile, dre_sextracted, tmp_path):
    sx = read_catalog(sextract(dre_tile["tile"], tmp_path, engine="sextractor")["catalog"])
    sp = read_catalog(dre_sextracted["catalog"])
    d = np.hypot(np.asarray(sx["X_IMAGE"])[:, None] - np.asarray(sp["X_IMAGE"])[None],
                 np.asarray(sx["Y_IMAGE"])[:, None] - np.asarray(sp["Y_IMAGE"])[None])
    assert abs(len(sx) - len(sp)) <= 3 and np.median(d.min(axis=1)) < 0.1


@needs_sextractor
def test_sextractor_failure_reports_stderr(dre_tile, tmp_path):
    with pytest.raises(LazyAstroError, match="SExtractor failed .*DETECT_TYPE set to an unknown keyword") as exc:
        sextract(dre_tile["tile"], tmp_path / "S", engine="sextractor", args=[("DETECT_TYPE", "NONSENSE")])
    assert "tile00.fits" in str(exc.value)
    assert not list((tmp_path / "S").glob("*.fits"))


def test_sep_dual_mode_and_args(dre_tile, tmp_path):
    pytest.importorskip("sep")
    with pytest.warns(UserWarning, match="PHOT_AUTOPARAMS is ignored"):
        out = sextract(dre_tile["tile"], tmp_path, engine="sep", detection=dre_tile["tile"], name="dual",
                       args={"DETECT_THRESH": 5, "PHOT_AUTOPARAMS": "2.5,3.5"})
    low = read_catalog(out["catalog"])
    assert out["catalog"].endswith("dual_cat.fits") and 10 < len(low) <= 30


def test_gain_resolution():
    assert resolve_gain({"GAIN": 2.0}, "counts") == 2.0
    assert resolve_gain({"GAIN": 2.0, "EXPTIME": 100.0}, "cps") == 200.0
    assert resolve_gain({"CCDGAIN": 4.0}, "counts") == 4.0
    assert resolve_gain({"MYG": 3.0}, "counts", gain_key="MYG") == 3.0
    assert resolve_gain({}, "1.5") == 1.5 and resolve_gain({}, None) is None
    with pytest.raises(FormatError, match="several keys contain GAIN"):
        resolve_gain({"AGAIN": 1.0, "BGAIN": 2.0}, "counts", path="x.fits")
    with pytest.raises(FormatError, match="EXPTIME"):
        resolve_gain({"GAIN": 1.0}, "cps", path="x.fits")
    with pytest.raises(ParameterError):
        resolve_gain({}, "lots")


def test_errors(tmp_path, dre_tile):
    with pytest.raises(InputNotFoundError, match="missing.fits"):
        sextract(tmp_path / "missing.fits", tmp_path, engine="sep")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not a fits file" * 100)
    with pytest.raises(FormatError, match="junk.fits"):
        sextract(junk, tmp_path, engine="sep")
    with pytest.raises(ParameterError, match="engine"):
        sextract(dre_tile["tile"], tmp_path, engine="magic")
    with pytest.raises(ParameterError, match="flag images need the SExtractor engine"):
        sextract(dre_tile["tile"], tmp_path, engine="sep", flags=dre_tile["tile"])
    with pytest.raises(FormatError, match="no gain key"):
        sextract(dre_tile["tile"], tmp_path, engine="sep", gain="counts", gain_key="NOPE")


def test_ldac_roundtrip(tmp_path):
    p = write_ldac(tmp_path / "c_cat.fits", {"NUMBER": np.arange(1, 4, dtype=np.int32),
                                             "VIGNET": np.zeros((3, 5, 5), np.float32)})
    assert "VIGNET" not in read_catalog(p).colnames and "VIGNET" in read_catalog(p, vignet=True).colnames
    with pytest.raises(FormatError, match="no NUMBER"):
        read_catalog(write_ldac(tmp_path / "d_cat.fits", {"X": np.zeros(2)}))


def test_cli_sextract(dre_tile, tmp_path, capsys):
    pytest.importorskip("sep")
    code = main(["--no-progress", "dre", "sex_dre", "-i", str(dre_tile["workdir"] / "Tiles"), "-o",
                 str(tmp_path / "S"), "--engine", "sep", "--gain", "counts", "--arg", "DETECT_MINAREA", "5"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "tile00:" in out.out and (tmp_path / "S" / "tile00_seg.fits").is_file()
    assert main(["dre", "sextract", "-i", str(tmp_path / "none"), "--engine", "sep"]) == 1
    err = capsys.readouterr().err
    assert "none" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("engine", ["sep", pytest.param("sextractor", marks=needs_sextractor)])
def test_weights_mask_a_region(dre_tile, dre_truth, tmp_path, engine):
    if engine == "sep":
        pytest.importorskip("sep")
    gal = dre_truth[~dre_truth["is_star"] & ~dre_truth["is_neighbour"]][0]
    y, x = int(gal["y"]) - 1, int(gal["x"]) - 1
    w = np.ones((512, 512), np.float32)
    w[y - 40:y + 40, x - 40:x + 40] = 0.0
    fits.PrimaryHDU(w).writeto(tmp_path / "w.fits")
    cat = read_catalog(sextract(dre_tile["tile"], tmp_path / "S", engine=engine, weights=tmp_path / "w.fits",
                                detection=dre_tile["tile"])["catalog"])
    d = np.hypot(np.asarray(cat["X_IMAGE"]) - gal["x"], np.asarray(cat["Y_IMAGE"]) - gal["y"])
    assert d.min() > 30 and len(cat) > 10  # the zero-weight region yields no detection, the rest does


def test_cli_file_option(dre_tile, tmp_path, capsys):
    pytest.importorskip("sep")
    wdir = tmp_path / "W"
    wdir.mkdir()
    fits.PrimaryHDU(np.ones((512, 512), np.float32)).writeto(wdir / "tile00.fits")
    code = main(["dre", "sextract", "-i", dre_tile["tile"], "-o", str(tmp_path / "S"), "--engine", "sep",
                 "--file", "MISSING_NAME", str(tmp_path / "nowhere")])
    assert code == 1 and "nowhere/tile00.fits: --file MISSING_NAME: no such file" in capsys.readouterr().err
