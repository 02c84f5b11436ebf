"""``version="2019", legacy=True`` reproduces the spec's 2019 definitions (tests/skipper/spec2019.py).

The reference is a literal numpy transcription of the spec, computed on the whole cube in
memory; lazyastro computes the same statistics from chunked exact value counts. They must
agree to 1e-6 (relative) on every deterministic variable, for integer data of any sign,
1 to 60 skips (average images whose values are multiples of 1/n), tracks in the low tail,
and any chunking.
"""

import warnings

import numpy as np
import pytest
from astropy.io import fits

from lazyastro import skipper

from . import spec2019

CASES = {
    # name: (nskips, nrows, ncols, read noise, gain, dark current, baseline, tracks[, float32 values])
    "one_skip": (1, 30, 25, 20.0, 8.0, 0.3, 5000.0, 0),
    "two_skips_negative": (2, 19, 23, 15.7, 12.1, 0.33, 0.0, 1),
    "three_skips": (3, 35, 38, 12.3, 7.6, 0.02, 0.0, 0),
    "ten_skips_tracks": (10, 33, 20, 27.0, 8.0, 0.8, 1000.0, 3),
    "resolved_peaks": (25, 30, 30, 6.0, 10.0, 0.5, 30000.0, 2),
    "sixty_skips": (60, 18, 11, 11.1, 7.7, 0.63, 0.0, 0),
    "float_one_skip": (1, 39, 17, 31.8, 6.1, 0.94, 0.0, 0, True),
    "float_ten_skips": (10, 21, 38, 38.7, 10.5, 0.13, 30000.0, 2, True),
    "float_resolved": (25, 30, 30, 4.0, 10.0, 0.5, 1000.0, 1, True),
}


def _write(path, nskips, nrows, ncols, noise, gain, dc, base, tracks, as_float=False, *, seed):
    rng = np.random.default_rng(seed)
    v = base - gain * rng.poisson(dc, (nrows, ncols, 1)) + rng.normal(0, noise, (nrows, ncols, nskips))
    for _ in range(tracks):  # charge trails: a low tail in the raw values
        v[rng.integers(nrows), : rng.integers(2, ncols)] -= rng.uniform(100, 2000)
    data = v.astype(np.float32) if as_float else np.rint(v).astype(np.int32)  # float: fractional ADU
    hdu = fits.PrimaryHDU(data.reshape(nrows, ncols * nskips))
    hdu.header["NDCMS"] = nskips
    hdu.writeto(path)
    return path


def _close(ours, ref, what):
    if ref is None:  # the legacy "-1": not applicable / failed
        assert np.isnan(ours), what
    else:
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-12), what


@pytest.mark.parametrize("case", sorted(CASES))
def test_legacy_2019_reproduces_spec(tmp_path, case):
    path = _write(tmp_path / "Img_1.fits", *CASES[case], seed=sorted(CASES).index(case))
    cube = fits.getdata(path).astype(np.float64).reshape(CASES[case][1], CASES[case][2], CASES[case][0])
    chunks = {"row": 7, "skip": 3} if CASES[case][0] > 3 else None
    (row,) = skipper.compute_statistics([path], version="2019", legacy=True, scheduler="sync",
                                        progress=False, chunks=chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # curve_fit's covariance warnings, as in the legacy tool
        ref = {
            "aveImgS": spec2019.ave_img_s(cube), "dSdskip": spec2019.ds_dskip(cube),
            "imgNoise": spec2019.img_noise(cube), "skNoise": spec2019.sk_noise(cube),
            "tailRatio": spec2019.tail_ratio(cube),
        }
    _close(row["aveImgS"], ref["aveImgS"], "aveImgS")
    _close(row["imgNoise"], ref["imgNoise"], "imgNoise")
    _close(row["tailRatio"], ref["tailRatio"], "tailRatio")
    for key in ("dSdskip", "skNoise"):
        value, err = ref[key] if ref[key] is not None else (None, None)
        _close(row[key], value, key)
        _close(row[f"{key}_err"], err, f"{key}_err")
    if case in ("resolved_peaks", "float_resolved"):
        assert row["skNoise_method"] == "peaks" and np.isfinite(row["skNoise"])
    assert row["exact"]  # float data too: every value counted exactly


def test_default_gives_nan_with_reason_for_a_degenerate_fit(tmp_path):
    """A 1-skip image: no electron peaks; the default says why there is no skNoise."""
    path = _write(tmp_path / "Img_1.fits", 1, 30, 25, 20.0, 8.0, 0.3, 5000.0, 0, seed=0)
    (row,) = skipper.compute_statistics([path], scheduler="sync", progress=False)
    assert np.isnan(row["skNoise"]) and np.isnan(row["skNoise_err"])
    assert row["skNoise_method"] == "failed" and row["skNoise_reason"]
    assert np.isnan(row["aduConversion"]) and np.isnan(row["darkCurrent"])


@pytest.mark.parametrize("nskips", [1, 4, 10])
def test_default_never_reports_unresolved_values(tmp_path, nskips):
    """Unresolved electron peaks (noise > gain): NaN with a reason, not a number with a huge error."""
    path = _write(tmp_path / "Img_1.fits", nskips, 30, 30, 40.0, 5.0, 0.3, 5000.0, 0, seed=nskips)
    (row,) = skipper.compute_statistics([path], scheduler="sync", progress=False)
    for key in ("skNoise", "aduConversion", "darkCurrent"):
        v, e = row[key], row[f"{key}_err"]
        assert np.isnan(v) or (np.isfinite(e) and e < abs(v)), (key, v, e)
    if np.isnan(row["skNoise"]):
        assert row["skNoise_method"] == "failed" and len(row["skNoise_reason"]) > 5
