"""Source extraction for DRE: the SExtractor binary with the legacy forced options, or ``sep``.

:func:`sextract` writes, for an image ``<name>.fits``, the four products of the legacy ``sex_dre``
into ``out_dir`` (or ``out_dir/<name>/`` with ``subdir=True``)::

    <name>_cat.fits   FITS_LDAC catalogue (HDUs: empty primary, LDAC_IMHEAD, LDAC_OBJECTS)
    <name>_nb.fits    background-subtracted image (SExtractor check-image -BACKGROUND)
    <name>_rms.fits   background RMS map (BACKGROUND_RMS)
    <name>_seg.fits   segmentation map (SEGMENTATION; pixel value = NUMBER of the object)

Engines
-------
``"sextractor"`` runs ``source-extractor`` (or ``sex``), found on ``PATH``, as a subprocess (no
shell) with the legacy forced options ``-CATALOG_NAME <base>_cat.fits -CATALOG_TYPE FITS_LDAC
-CHECKIMAGE_TYPE -BACKGROUND,BACKGROUND_RMS,SEGMENTATION -CHECKIMAGE_NAME
<base>_nb.fits,<base>_rms.fits,<base>_seg.fits``. Without a user configuration it uses the files
shipped in ``lazyastro/dre/data`` (``default.sex``, ``default.param``, ``default.conv``) and the
star/galaxy neural-network weights of the SExtractor installation (``default.nnw``).

``"sep"`` (the embedded default when no binary is installed) runs the same steps with ``sep``:
background (64-px meshes, 3x3 filter), detection at 1.5 sigma on the background-subtracted image
(3x3 pyramidal "conv" filter, 5 pixels, 32 deblending thresholds, contrast 0.005, cleaning), and
writes the same four products with the same LDAC layout and column names as the default
parameter file. Differences from SExtractor, by column:

- ``CLASS_STAR`` is **not** the SExtractor neural network: it is a size criterion. The stellar
  half-light radius ``r*`` is the median ``FLUX_RADIUS`` of the compact end of bright objects
  (SNR > 20), and ``CLASS_STAR = 1 / (1 + exp((FLUX_RADIUS / r* - 1.2) / 0.04))``, pulled towards
  0.5 below SNR 20 (0.5 at SNR <= 5). Stars get ~1, resolved galaxies ~0.
- ``FWHM_IMAGE`` = 2 ``FLUX_RADIUS`` (exact for a Gaussian); ``SNR_WIN`` = ``FLUX_AUTO /
  FLUXERR_AUTO``; ``XWIN_IMAGE``/``YWIN_IMAGE`` from ``sep.winpos`` (sigma = 2 FLUX_RADIUS / 2.35).
- ``FLAGS``: 2 = deblended (sep OBJ_MERGED), 4 = saturated pixel (> ``SATUR_LEVEL``), 8 = touches
  the image edge (OBJ_TRUNC), 16 = aperture incomplete (APER_TRUNC).
- ``FLUX_AUTO`` is the Kron flux (2.5 Kron radii, minimum 3.5) on the background-subtracted
  image, ``FLUX_APER`` a circular aperture of diameter ``PHOT_APERTURES`` (default 10 px);
  ``VIGNET(35,35)`` the background-subtracted pixels around the object (-1e30 outside the image),
  so a sep catalogue also feeds PSFEx.

Gain: ``gain="counts"`` uses the header gain (key ``gain_key``; default: ``GAIN``, else the single
key containing ``GAIN``), ``"cps"`` the header gain times ``EXPTIME`` (images in counts per second),
a number that value; ``None`` passes nothing: SExtractor then uses its configuration (the shipped one
has ``GAIN_KEY GAIN``, so a header ``GAIN`` is used, else no Poisson term), and the sep engine does the
same (header ``GAIN`` if present).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from ..core.paths import require_input

__all__ = ["sextract", "find_sextractor", "resolve_gain", "read_catalog", "write_ldac", "data_file",
           "product_paths", "tile_name", "ENGINES"]

ENGINES = ("auto", "sextractor", "sep")
PRODUCTS = ("catalog", "nb", "rms", "seg")
_SUFFIX = {"catalog": "_cat.fits", "nb": "_nb.fits", "rms": "_rms.fits", "seg": "_seg.fits"}
_NNW_DIRS = ("share/source-extractor", "share/sextractor", "share/sex")
_STRUCTURAL = ("SIMPLE", "XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT",
               "GCOUNT", "BSCALE", "BZERO", "END", "CHECKSUM", "DATASUM")


def data_file(name: str) -> str:
    """Path of a file shipped in ``lazyastro/dre/data`` (``default.sex``, ``default.param``, ...).

    Examples
    --------
    >>> Path(data_file("default.param")).name
    'default.param'
    """
    path = Path(__file__).with_name("data") / name
    if not path.is_file():
        raise InputNotFoundError("shipped data file missing (broken installation)", path)
    return str(path)


def tile_name(path: str | os.PathLike) -> str:
    """The tile name of an image path: the file name without ``.fits``/``.fit``/``.fz``/``.gz``.

    Examples
    --------
    >>> tile_name("Tiles/field_07.fits.fz")
    'field_07'
    """
    name = Path(path).name
    for ext in (".gz", ".fz", ".fits", ".fit", ".fts"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    return name


def product_paths(out_dir: str | os.PathLike, name: str, *, subdir: bool = False) -> dict[str, str]:
    """The four product paths of tile ``name`` in ``out_dir`` (``out_dir/<name>/`` if ``subdir``).

    Examples
    --------
    >>> sorted(product_paths("Sextracted", "t1"))
    ['catalog', 'nb', 'rms', 'seg']
    >>> product_paths("S", "t1", subdir=True)["seg"]
    'S/t1/t1_seg.fits'
    """
    base = Path(out_dir) / name if subdir else Path(out_dir)
    return {k: str(base / f"{name}{s}") for k, s in _SUFFIX.items()}


def find_sextractor() -> str | None:
    """The SExtractor executable on ``PATH`` (``source-extractor``, else ``sex``), or ``None``."""
    for name in ("source-extractor", "sex"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _find_nnw(binary: str) -> str | None:
    prefix = Path(os.path.realpath(binary)).parent.parent
    for root in (prefix, Path("/usr"), Path("/usr/local")):
        for d in _NNW_DIRS:
            p = root / d / "default.nnw"
            if p.is_file():
                return str(p)
    return None


def _read_header(path: Path):
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                    return hdu.header.copy()
    except OSError as exc:
        raise FormatError(f"cannot read FITS image: {exc}", path) from exc
    raise FormatError("no 2-D image HDU", path)


def _read_image(path: Path):
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul:
                if hdu.is_image and hdu.data is not None and hdu.data.ndim == 2:
                    return np.asarray(hdu.data, dtype=np.float64), hdu.header.copy()
    except OSError as exc:
        raise FormatError(f"cannot read FITS image: {exc}", path) from exc
    raise FormatError("no 2-D image HDU", path)


def resolve_gain(header, gain: str | float | None, *, gain_key: str | None = None,
                 path: str | os.PathLike | None = None) -> float | None:
    """The gain (e-/data unit) to use for an image, following the legacy ``--gain`` option.

    Parameters
    ----------
    header : astropy.io.fits.Header or mapping
        The image header.
    gain : {"counts", "cps"} or float or None
        ``"counts"``: header gain; ``"cps"``: header gain x ``EXPTIME``; a number: that value;
        ``None``: no gain (returns ``None``).
    gain_key : str, optional
        Header key of the gain; default ``GAIN``, else the single key containing ``GAIN``.
    path : path, optional
        Named in error messages.

    Returns
    -------
    float or None

    Raises
    ------
    FormatError
        When the header lacks the gain (or ``EXPTIME`` for ``"cps"``) or several keys match.
    ParameterError
        For an invalid ``gain`` value.

    Examples
    --------
    >>> resolve_gain({"GAIN": 2.0, "EXPTIME": 10.0}, "cps")
    20.0
    >>> resolve_gain({"CCDGAIN": 1.5}, "counts")
    1.5
    >>> resolve_gain({}, 3)
    3.0
    """
    if gain is None:
        return None
    if isinstance(gain, str) and gain not in ("counts", "cps"):
        try:
            gain = float(gain)
        except ValueError:
            raise ParameterError(f"gain must be 'counts', 'cps' or a number, got {gain!r}") from None
    if not isinstance(gain, str):
        value = float(gain)
        if not np.isfinite(value) or value < 0:
            raise ParameterError(f"gain must be a finite number >= 0, got {gain!r}")
        return value
    keys = [str(k) for k in header.keys()]
    if gain_key is None:
        if "GAIN" in keys:
            gain_key = "GAIN"
        else:
            cands = sorted({k for k in keys if "GAIN" in k.upper()})
            if len(cands) != 1:
                raise FormatError("cannot choose the gain key (use --gain-key): "
                                  + (f"several keys contain GAIN: {', '.join(cands)}" if cands
                                     else "no header key contains GAIN"), path)
            gain_key = cands[0]
    if gain_key not in keys:
        raise FormatError(f"header has no gain key {gain_key!r}", path)
    try:
        value = float(header[gain_key])
    except (TypeError, ValueError):
        raise FormatError(f"header {gain_key} is not a number: {header[gain_key]!r}", path) from None
    if gain == "cps":
        if "EXPTIME" not in keys:
            raise FormatError("--gain cps needs the header key EXPTIME", path)
        value *= float(header["EXPTIME"])
    return value


def _args_list(args) -> list[tuple[str, str]]:
    if args is None:
        return []
    items = args.items() if isinstance(args, Mapping) else args
    out = []
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            raise ParameterError(f"extra arguments must be (NAME, VALUE) pairs, got {item!r}") from None
        name = str(name).lstrip("-").upper()
        if not name or not name.replace("_", "").isalnum():
            raise ParameterError(f"invalid SExtractor parameter name {name!r}")
        out.append((name, str(value)))
    return out


def sextract(image: str | os.PathLike, out_dir: str | os.PathLike = "Sextracted", *, engine: str = "auto",
             detection: str | os.PathLike | None = None, gain: str | float | None = None,
             gain_key: str | None = None, config: str | os.PathLike | None = None,
             params: str | os.PathLike | None = None, filter: str | os.PathLike | None = None,
             nnw: str | os.PathLike | None = None, zero_point: float | None = None,
             seeing: float | None = None, weights: str | os.PathLike | Iterable | None = None,
             flags: str | os.PathLike | None = None, args=None, subdir: bool = False,
             name: str | None = None, threshold: float | None = None) -> dict[str, str]:
    """Extract the sources of one image and write the four DRE products.

    Parameters
    ----------
    image : str or os.PathLike
        The (measurement) image, FITS.
    out_dir : str or os.PathLike, optional
        Output directory (created), default ``Sextracted``.
    engine : {"auto", "sextractor", "sep"}, optional
        ``"auto"``: the SExtractor binary when installed, else ``sep``. See the module docstring for
        the differences.
    detection : path, optional
        Detection image for dual-image mode (SExtractor ``det,meas``); the products are named after
        ``image``.
    gain, gain_key : optional
        See :func:`resolve_gain`.
    config, params, filter, nnw : path, optional
        SExtractor configuration, parameter list, filter and neural-network files. Without
        ``config`` the shipped defaults are used (and relative names in a user ``config`` resolve
        next to it: SExtractor runs in the configuration's directory).
    zero_point, seeing : float, optional
        ``MAG_ZEROPOINT`` and ``SEEING_FWHM`` (pixels with the default ``PIXEL_SCALE 1``).
    weights : path or (path, path), optional
        ``MAP_WEIGHT`` images (detection, measurement).
    flags : path, optional
        ``FLAG_IMAGE`` (SExtractor engine only).
    args : mapping or sequence of (NAME, VALUE), optional
        Extra SExtractor options (``-NAME VALUE``), before the forced ones. The sep engine honours
        DETECT_THRESH, DETECT_MINAREA, BACK_SIZE, BACK_FILTERSIZE, DEBLEND_NTHRESH,
        DEBLEND_MINCONT, CLEAN, CLEAN_PARAM, PHOT_APERTURES, MAG_ZEROPOINT, SATUR_LEVEL and warns
        about others.
    subdir : bool, optional
        Write into ``out_dir/<name>/`` (legacy ``--subdir``).
    name : str, optional
        Product base name (default: the image file name without ``.fits``).
    threshold : float, optional
        Detection threshold in sigmas (``DETECT_THRESH``/``ANALYSIS_THRESH``), default 1.5.

    Returns
    -------
    dict
        ``{"catalog", "nb", "rms", "seg"}`` -> paths, plus ``"engine"``.

    Raises
    ------
    InputNotFoundError
        Missing image or configuration file.
    FormatError
        Unreadable image, missing header gain.
    ParameterError
        Bad options, an engine that is not installed.
    LazyAstroError
        SExtractor failed (the message ends with the tail of its stderr).

    Examples
    --------
    >>> import tempfile
    >>> from lazyastro.dre.simulate import write_tiles
    >>> d = tempfile.mkdtemp()
    >>> tile = write_tiles(d, shape=(256, 256), n_galaxies=1, n_stars=1)[0]["tile"]
    >>> out = sextract(tile, d + "/Sextracted", engine="sep")  # doctest: +SKIP
    >>> sorted(out)  # doctest: +SKIP
    ['catalog', 'engine', 'nb', 'rms', 'seg']
    """
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    image = require_input(image)
    detection = None if detection is None else require_input(detection)
    for p in (config, params, filter, nnw, flags):
        if p is not None:
            require_input(p)
    if weights is not None:
        weights = [weights] if isinstance(weights, str | os.PathLike) else list(weights)
        if not 1 <= len(weights) <= 2:
            raise ParameterError(f"weights: give one or two weight images, got {len(weights)}")
        weights = [require_input(w) for w in weights]
    if threshold is not None and not threshold > 0:
        raise ParameterError(f"threshold must be > 0, got {threshold}")
    extra = _args_list(args)
    binary = find_sextractor()
    if engine == "auto":
        engine = "sextractor" if binary else "sep"
    if engine == "sextractor" and not binary:
        raise ParameterError("engine 'sextractor': no SExtractor binary on PATH (source-extractor or sex); "
                             "install it or use engine='sep'")
    name = tile_name(image) if name is None else name
    header = _read_header(image)
    gain_value = resolve_gain(header, gain, gain_key=gain_key, path=image)
    paths = product_paths(out_dir, name, subdir=subdir)
    final_dir = Path(paths["catalog"]).parent
    final_dir.mkdir(parents=True, exist_ok=True)
    tmp = final_dir / f".{name}.sextract.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tmp_paths = {k: str(tmp.resolve() / Path(p).name) for k, p in paths.items()}
    try:
        if engine == "sextractor":
            _run_sextractor(binary, image, detection, tmp_paths, gain=gain_value, config=config, params=params,
                            filter=filter, nnw=nnw, zero_point=zero_point, seeing=seeing, weights=weights,
                            flags=flags, extra=extra, threshold=threshold)
        else:
            if flags is not None:
                raise ParameterError("flags: flag images need the SExtractor engine (engine='sextractor')")
            if gain is None:  # as SExtractor's GAIN_KEY GAIN
                try:
                    gain_value = float(header["GAIN"]) if "GAIN" in header else None
                except (TypeError, ValueError):
                    gain_value = None
            _run_sep(image, detection, tmp_paths, gain=gain_value, zero_point=zero_point, weights=weights,
                     extra=extra, threshold=threshold)
        for k in PRODUCTS:
            if not Path(tmp_paths[k]).is_file():
                raise LazyAstroError(f"{engine} did not write {Path(paths[k]).name}", image)
            os.replace(tmp_paths[k], paths[k])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**paths, "engine": engine}


def _run_sextractor(binary, image, detection, out, *, gain, config, params, filter, nnw, zero_point, seeing,
                    weights, flags, extra, threshold):
    image = Path(image).resolve()
    target = f"{Path(detection).resolve()},{image}" if detection is not None else str(image)
    cmd = [binary, target]
    if config is None:
        cmd += ["-c", data_file("default.sex")]
        params = data_file("default.param") if params is None else params
        filter = data_file("default.conv") if filter is None else filter
        if nnw is None:
            nnw = _find_nnw(binary)
            if nnw is None:
                raise ParameterError("SExtractor's default.nnw (star/galaxy weights for CLASS_STAR) was not found "
                                     "next to the binary; give nnw= (--nnw) or a full config")
        cwd = Path(out["catalog"]).parent
    else:
        cmd += ["-c", str(Path(config).resolve())]
        cwd = Path(config).resolve().parent
    for key, value in (("PARAMETERS_NAME", params), ("FILTER_NAME", filter), ("STARNNW_NAME", nnw),
                       ("FLAG_IMAGE", flags)):
        if value is not None:
            cmd += [f"-{key}", str(Path(value).resolve())]
    if weights:
        ws = [str(Path(w).resolve()) for w in weights]
        cmd += ["-WEIGHT_TYPE", "MAP_WEIGHT", "-WEIGHT_IMAGE", ",".join(ws)]
    if gain is not None:
        cmd += ["-GAIN", repr(float(gain))]
    if zero_point is not None:
        cmd += ["-MAG_ZEROPOINT", repr(float(zero_point))]
    if seeing is not None:
        cmd += ["-SEEING_FWHM", repr(float(seeing))]
    if threshold is not None:
        cmd += ["-DETECT_THRESH", repr(float(threshold)), "-ANALYSIS_THRESH", repr(float(threshold))]
    for key, value in extra:
        cmd += [f"-{key}", value]
    cmd += ["-CATALOG_NAME", out["catalog"], "-CATALOG_TYPE", "FITS_LDAC",
            "-CHECKIMAGE_TYPE", "-BACKGROUND,BACKGROUND_RMS,SEGMENTATION",
            "-CHECKIMAGE_NAME", f"{out['nb']},{out['rms']},{out['seg']}"]
    _run(cmd, cwd, image, "SExtractor")


def _run(cmd, cwd, path, what):
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, timeout=3600)
    except OSError as exc:
        raise LazyAstroError(f"cannot run {what} ({cmd[0]}): {exc}", path) from exc
    text = proc.stderr or ""
    error_lines = [ln for ln in text.splitlines() if "error" in ln.lower()]
    if proc.returncode != 0 or error_lines:
        tail = " | ".join(ln.strip() for ln in (error_lines or text.strip().splitlines())[-3:] if ln.strip())
        raise LazyAstroError(f"{what} failed (exit {proc.returncode}): {tail or 'no message'}", path)
    return proc


# ----------------------------------------------------------------------------- sep engine

_SEP_KNOWN = {"DETECT_THRESH", "ANALYSIS_THRESH", "DETECT_MINAREA", "BACK_SIZE", "BACK_FILTERSIZE",
              "DEBLEND_NTHRESH", "DEBLEND_MINCONT", "CLEAN", "CLEAN_PARAM", "PHOT_APERTURES", "MAG_ZEROPOINT",
              "SATUR_LEVEL"}
_FILTER = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=np.float32)
VIGNET = 35


def _opt(extra, name, default, conv=float):
    for k, v in reversed(extra):
        if k == name:
            try:
                return conv(v.split(",")[0]) if conv is not str else v
            except ValueError:
                raise ParameterError(f"{name}: invalid value {v!r}") from None
    return default


def _background(data, mask, extra):
    import sep

    bsize = _opt(extra, "BACK_SIZE", 64, int)
    fsize = _opt(extra, "BACK_FILTERSIZE", 3, int)
    bkg = sep.Background(np.ascontiguousarray(data), mask=mask, bw=bsize, bh=bsize, fw=fsize, fh=fsize)
    return bkg.back(), bkg.rms()


def _sep_catalog(det_nb, det_rms, meas_nb, meas_rms, mask, *, gain, zero_point, extra, threshold):
    """The catalogue columns (dict of arrays) and the segmentation map from sep."""
    import sep

    thresh = threshold if threshold is not None else _opt(extra, "DETECT_THRESH", 1.5)
    sep.set_extract_pixstack(max(300000, det_nb.size))
    sep.set_sub_object_limit(4096)
    objs, seg = sep.extract(np.ascontiguousarray(det_nb), thresh, err=np.ascontiguousarray(det_rms), mask=mask,
                            minarea=_opt(extra, "DETECT_MINAREA", 5, int), filter_kernel=_FILTER, filter_type="conv",
                            deblend_nthresh=_opt(extra, "DEBLEND_NTHRESH", 32, int),
                            deblend_cont=_opt(extra, "DEBLEND_MINCONT", 0.005),
                            clean=_opt(extra, "CLEAN", "Y", str).upper().startswith("Y"),
                            clean_param=_opt(extra, "CLEAN_PARAM", 1.0), segmentation_map=True)
    n = len(objs)
    data = np.ascontiguousarray(meas_nb)
    err = np.ascontiguousarray(meas_rms)
    x, y = objs["x"].astype(np.float64), objs["y"].astype(np.float64)
    a, b, theta = objs["a"].astype(np.float64), objs["b"].astype(np.float64), objs["theta"].astype(np.float64)
    a = np.where(a > 0, a, 1e-3)
    b = np.where(b > 0, b, 1e-3)
    ids = np.arange(1, n + 1)
    cols: dict[str, np.ndarray] = {}
    if n:
        kr, kflag = sep.kron_radius(data, x, y, a, b, theta, 6.0, seg_id=ids, segmap=seg)
        kr = np.where(np.isfinite(kr) & (kr > 0), kr, 3.5 / 2.5)
        r_auto = np.maximum(2.5 * kr, 3.5 / np.sqrt(a * b))
        f_auto, e_auto, fl_auto = sep.sum_ellipse(data, x, y, a, b, theta, r_auto, err=err, gain=gain,
                                                  seg_id=ids, segmap=seg, subpix=5)
        aper = _opt(extra, "PHOT_APERTURES", 10.0)
        f_ap, e_ap, fl_ap = sep.sum_circle(data, x, y, aper / 2.0, err=err, gain=gain, seg_id=ids, segmap=seg,
                                           subpix=5)
        norm = np.where(f_auto > 0, f_auto, np.abs(f_auto) + 1e-30)
        fr, fr_flag = sep.flux_radius(data, x, y, 6.0 * a, 0.5, normflux=norm, seg_id=ids, segmap=seg, subpix=5)
        fr = np.where(np.isfinite(fr) & (fr > 0), fr, 0.5)
        sig = np.maximum(2.0 * fr / 2.35, 0.5)
        xw, yw, _ = sep.winpos(data, x, y, sig)
    else:
        kr = f_auto = e_auto = f_ap = e_ap = fr = xw = yw = np.zeros(0)
        fl_auto = fl_ap = np.zeros(0, dtype=np.int16)
    e_auto = np.where(e_auto > 0, e_auto, np.nan)
    snr = np.where(np.isfinite(e_auto), f_auto / e_auto, 0.0)
    satur = _opt(extra, "SATUR_LEVEL", 50000.0)
    flags = np.zeros(n, dtype=np.int16)
    if n:
        flags |= np.where(objs["flag"] & sep.OBJ_MERGED, 2, 0).astype(np.int16)
        flags |= np.where(objs["flag"] & sep.OBJ_TRUNC, 8, 0).astype(np.int16)
        flags |= np.where((fl_auto | fl_ap) & sep.APER_TRUNC, 16, 0).astype(np.int16)
        flags |= np.where(objs["peak"] >= satur, 4, 0).astype(np.int16)
    zp = zero_point if zero_point is not None else _opt(extra, "MAG_ZEROPOINT", 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(f_auto > 0, zp - 2.5 * np.log10(np.where(f_auto > 0, f_auto, 1.0)), 99.0)
        magerr = np.where(f_auto > 0, 1.0857 * e_auto / np.where(f_auto > 0, f_auto, 1.0), 99.0)
    iy = np.clip(np.round(y).astype(int), 0, det_nb.shape[0] - 1)
    ix = np.clip(np.round(x).astype(int), 0, det_nb.shape[1] - 1)
    theta_deg = np.degrees(theta)
    theta_deg = np.where(theta_deg <= -90.0, theta_deg + 180.0, theta_deg)
    cols["NUMBER"] = ids.astype(np.int32)
    cols["EXT_NUMBER"] = np.ones(n, dtype=np.int16)
    cols["X_IMAGE"] = (x + 1.0).astype(np.float32)
    cols["Y_IMAGE"] = (y + 1.0).astype(np.float32)
    cols["XWIN_IMAGE"] = np.asarray(xw, np.float64) + 1.0
    cols["YWIN_IMAGE"] = np.asarray(yw, np.float64) + 1.0
    cols["A_IMAGE"] = a.astype(np.float32)
    cols["B_IMAGE"] = b.astype(np.float32)
    cols["THETA_IMAGE"] = theta_deg.astype(np.float32)
    cols["ELONGATION"] = (a / b).astype(np.float32)
    cols["ELLIPTICITY"] = (1.0 - b / a).astype(np.float32)
    cols["FWHM_IMAGE"] = (2.0 * fr).astype(np.float32)
    cols["FLUX_RADIUS"] = np.asarray(fr, np.float32)
    cols["KRON_RADIUS"] = np.asarray(kr, np.float32)
    cols["FLUX_AUTO"] = np.asarray(f_auto, np.float32)
    cols["FLUXERR_AUTO"] = np.asarray(e_auto, np.float32)
    cols["MAG_AUTO"] = mag.astype(np.float32)
    cols["MAGERR_AUTO"] = magerr.astype(np.float32)
    cols["FLUX_APER"] = np.asarray(f_ap, np.float32)
    cols["FLUXERR_APER"] = np.asarray(e_ap, np.float32)
    cols["FLUX_MAX"] = np.asarray(objs["peak"], np.float32)
    cols["BACKGROUND"] = np.zeros(n, np.float32)  # filled by the caller
    cols["THRESHOLD"] = (thresh * det_rms[iy, ix]).astype(np.float32)
    cols["ISOAREA_IMAGE"] = np.asarray(objs["npix"], np.int32)
    cols["SNR_WIN"] = np.nan_to_num(snr).astype(np.float32)
    cols["FLAGS"] = flags
    cols["CLASS_STAR"] = stellarity(cols["FLUX_RADIUS"], cols["SNR_WIN"])
    cols["VIGNET"] = _vignets(data, ix, iy)
    return cols, seg.astype(np.int32), (iy, ix)


def stellarity(flux_radius: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """Size-based stellarity in [0, 1] (the sep engine's ``CLASS_STAR``; see the module docstring).

    Parameters
    ----------
    flux_radius, snr : numpy.ndarray
        Half-light radii (pixels) and signal-to-noise ratios of the objects of one image.

    Returns
    -------
    numpy.ndarray
        float32, ~1 for point sources, ~0 for resolved ones, 0.5 for SNR <= 5.

    Examples
    --------
    >>> s = stellarity(np.array([1.9, 1.95, 2.0, 4.0, 6.0]), np.array([50.0, 60, 80, 80, 3]))
    >>> [round(float(v), 1) for v in s]
    [1.0, 1.0, 1.0, 0.0, 0.5]
    """
    fr = np.asarray(flux_radius, np.float64)
    snr = np.asarray(snr, np.float64)
    if fr.size == 0:
        return np.zeros(0, np.float32)
    bright = np.isfinite(fr) & (fr > 0) & (snr > 20)
    pool = fr[bright] if bright.sum() >= 3 else fr[np.isfinite(fr) & (fr > 0)]
    if pool.size == 0:
        return np.full(fr.shape, 0.5, np.float32)
    lo = np.percentile(pool, 10)
    compact = pool[pool <= lo * 1.15]
    r_star = float(np.median(compact)) if compact.size else float(lo)
    with np.errstate(over="ignore", invalid="ignore"):
        cls = 1.0 / (1.0 + np.exp((fr / r_star - 1.2) / 0.04))
    w = np.clip((snr - 5.0) / 15.0, 0.0, 1.0)
    cls = w * np.nan_to_num(cls, nan=0.0) + (1.0 - w) * 0.5
    return cls.astype(np.float32)


def _vignets(data, ix, iy, size=VIGNET):
    h = size // 2
    padded = np.pad(data.astype(np.float32), h, mode="constant", constant_values=-1e30)
    out = np.empty((len(ix), size, size), np.float32)
    for k, (cy, cx) in enumerate(zip(iy, ix)):
        out[k] = padded[cy:cy + size, cx:cx + size]
    return out


def _run_sep(image, detection, out, *, gain, zero_point, weights, extra, threshold):
    try:
        import sep  # noqa: F401
    except ImportError:
        raise ParameterError("engine 'sep' needs the sep package (pip install 'lazyastro[dre]'), "
                             "or install SExtractor") from None
    for k, _ in extra:
        if k not in _SEP_KNOWN:
            warnings.warn(f"sep engine: SExtractor option {k} is ignored", stacklevel=3)
    meas, header = _read_image(Path(image))
    det = meas if detection is None else _read_image(Path(detection))[0]
    if det.shape != meas.shape:
        raise FormatError(f"detection image shape {det.shape} differs from {meas.shape} of {image}", detection)
    bad = ~np.isfinite(meas) | ~np.isfinite(det)
    wmask = None
    werr = [None, None]
    if weights:
        ws = [_read_image(Path(w))[0] for w in weights]
        ws = ws + ws[:1] if len(ws) == 1 else ws
        for i, w in enumerate(ws):
            if w.shape != meas.shape:
                raise FormatError(f"weight image shape {w.shape} differs from {meas.shape}", weights[min(i, len(weights) - 1)])
            with np.errstate(divide="ignore"):
                werr[i] = np.where(w > 0, 1.0 / np.sqrt(np.where(w > 0, w, 1.0)), np.inf)
        wmask = (ws[0] <= 0) | (ws[1] <= 0)
    mask = bad if wmask is None else (bad | wmask)
    mask_arg = mask if mask.any() else None
    meas_c = np.where(mask, 0.0, meas)
    det_c = np.where(mask, 0.0, det)
    try:
        back_m, rms_m = _background(meas_c, mask_arg, extra)
        back_d, rms_d = (back_m, rms_m) if detection is None else _background(det_c, mask_arg, extra)
    except LazyAstroError:
        raise
    except Exception as exc:
        raise LazyAstroError(f"sep background failed: {type(exc).__name__}: {exc}", image) from exc
    if werr[0] is not None:
        # weights give the relative noise; scale them to the measured background rms
        for i, (rms, e) in enumerate(((rms_d, werr[0]), (rms_m, werr[1]))):
            finite = np.isfinite(e)
            scale = np.median(rms[finite]) / np.median(e[finite]) if finite.any() else 1.0
            werr[i] = np.where(finite, e * scale, 1e30)
        rms_d, rms_m = werr
    nb_m, nb_d = meas_c - back_m, det_c - back_d
    try:
        cols, seg, (iy, ix) = _sep_catalog(nb_d, rms_d, nb_m, rms_m, mask_arg, gain=gain, zero_point=zero_point,
                                           extra=extra, threshold=threshold)
    except LazyAstroError:
        raise
    except Exception as exc:  # sep raises plain Exception subclasses (pixel stack, deblending limits)
        raise LazyAstroError(f"sep extraction failed: {type(exc).__name__}: {exc}", image) from exc
    cols["BACKGROUND"] = back_m[iy, ix].astype(np.float32)
    nb_out = np.where(bad, np.nan, nb_m).astype(np.float32)
    _write_image(out["nb"], nb_out, header)
    _write_image(out["rms"], np.asarray(rms_m, np.float32), header)
    _write_image(out["seg"], seg, header)
    full = header.copy()
    full["SEXGAIN"] = (float(gain) if gain else 0.0, "Gain used (e-/ADU)")
    write_ldac(out["catalog"], cols, full, extra_cards={"SEXBKGND": float(np.median(back_m)),
                                                         "SEXBKDEV": float(np.median(rms_m)),
                                                         "SEXNFIN": len(cols["NUMBER"]),
                                                         "SEXENGIN": "lazyastro.dre sep"})


def _clean_header(header):
    from astropy.io import fits

    h = fits.Header()
    for card in header.cards:
        if card.keyword in _STRUCTURAL or card.keyword.startswith("NAXIS") or card.keyword == "":
            continue
        try:
            h.append(card)
        except (ValueError, KeyError):
            continue
    return h


def _write_image(path, data, header):
    from astropy.io import fits

    fits.PrimaryHDU(data, header=_clean_header(header)).writeto(path, overwrite=True, output_verify="silentfix")


def write_ldac(path: str | os.PathLike, columns, header=None, *, extra_cards: dict | None = None) -> str:
    """Write a FITS_LDAC catalogue: empty primary, ``LDAC_IMHEAD`` (the image header), ``LDAC_OBJECTS``.

    Parameters
    ----------
    path : str or os.PathLike
    columns : mapping or astropy.table.Table
        Column name -> array (2-D/3-D arrays become vector columns with ``TDIM``, e.g. VIGNET).
    header : astropy.io.fits.Header, optional
        The image header stored in ``LDAC_IMHEAD`` (one row, 80-character cards).
    extra_cards : dict, optional
        Cards appended to the stored header.

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> p = write_ldac(tempfile.mkdtemp() + "/t_cat.fits", {"NUMBER": np.arange(1, 4, dtype=np.int32)})
    >>> len(read_catalog(p))
    3
    """
    from astropy.io import fits
    from astropy.table import Table

    # the image header as SExtractor stores it (structural keys included: PSFEx reads NAXIS1/2)
    h = fits.Header() if header is None else header.copy()
    for k in ("CHECKSUM", "DATASUM"):
        h.remove(k, ignore_missing=True, remove_all=True)
    for k, v in (extra_cards or {}).items():
        h[k] = v
    cards = [str(c).ljust(80)[:80] for c in h.cards if c.keyword != "END"] + ["END".ljust(80)]
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column(name="Field Header Card", format=f"{80 * len(cards)}A", dim=f"(80, {len(cards)})",
                     array=np.array([cards], dtype="S80"))], name="LDAC_IMHEAD")
    table = columns if isinstance(columns, Table) else Table({k: np.asarray(v) for k, v in columns.items()})
    objects = fits.table_to_hdu(table)
    objects.name = "LDAC_OBJECTS"
    fits.HDUList([fits.PrimaryHDU(), imhead, objects]).writeto(path, overwrite=True)
    # astropy pads the cards' trailing blanks with NUL bytes; LDAC readers (PSFEx) need blanks
    with fits.open(path, memmap=False) as hdul:
        offset, nbytes = hdul[1].fileinfo()["datLoc"], 80 * len(cards)
    with open(path, "r+b") as f:
        f.seek(offset)
        block = f.read(nbytes).replace(b"\x00", b" ")
        f.seek(offset)
        f.write(block)
    return str(path)


def read_catalog(path: str | os.PathLike, *, vignet: bool = False):
    """Read a SExtractor catalogue: all ``LDAC_OBJECTS`` HDUs stacked (or the first table HDU).

    Parameters
    ----------
    path : str or os.PathLike
        FITS_LDAC catalogue (``<name>_cat.fits``) or a plain FITS table.
    vignet : bool, optional
        Keep the ``VIGNET`` column (dropped by default).

    Returns
    -------
    astropy.table.Table
        With ``EXT_NUMBER`` added (= 0) when the catalogue has none, as the legacy keys assume.

    Raises
    ------
    InputNotFoundError, FormatError
        Missing file, no table, or no ``NUMBER`` column.

    Examples
    --------
    >>> import tempfile
    >>> p = write_ldac(tempfile.mkdtemp() + "/c_cat.fits", {"NUMBER": np.array([1, 2], np.int32)})
    >>> read_catalog(p)["EXT_NUMBER"].tolist()
    [0, 0]
    """
    from astropy.io import fits
    from astropy.table import Table, vstack

    path = require_input(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            hdus = [h for h in hdul if isinstance(h, fits.BinTableHDU) and h.name == "LDAC_OBJECTS"]
            if not hdus:
                hdus = [h for h in hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)][:1]
            if not hdus:
                raise FormatError("no LDAC_OBJECTS (or table) HDU: not a SExtractor catalogue", path)
            tables = []
            for h in hdus:
                t = Table(h.data, masked=False)
                if not vignet and "VIGNET" in t.colnames:
                    t.remove_column("VIGNET")
                tables.append(t)
    except OSError as exc:
        raise FormatError(f"cannot read catalogue: {exc}", path) from exc
    table = tables[0] if len(tables) == 1 else vstack(tables, metadata_conflicts="silent")
    if "NUMBER" not in table.colnames:
        raise FormatError("catalogue has no NUMBER column", path)
    if "EXT_NUMBER" not in table.colnames:
        table["EXT_NUMBER"] = np.zeros(len(table), dtype=np.int16)
    return table
