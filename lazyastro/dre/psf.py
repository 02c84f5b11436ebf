"""The PSF for DRE: run PSFEx, read ``.psf``/``.fits`` PSFs, or build an empirical PSF from stars.

- :func:`run_psfex` runs ``psfex <name>_cat.fits -c <config>`` (subprocess, no shell) in the output
  directory with ``PSF_SAMPLING 1.0`` forced (the legacy "PSF_STEP = 1": the PSF is sampled on the
  image pixels, which the model convolution needs) and renames ``<name>_cat.psf`` to
  ``<name>.psf`` like the legacy ``psfex_dre``. Without a user configuration the shipped
  ``lazyastro/dre/data/default.psfex`` is used (one constant PSF per tile).
- :func:`read_psf` returns the order-0 PSF as a non-negative float64 array that sums to 1.
- :func:`empirical_psf` is the embedded fallback when PSFEx is not installed: bright, isolated,
  unsaturated stars of the catalogue stacked with photutils' ``EPSFBuilder`` (``method="epsf"``) or
  re-centred and median-combined (``method="median"``). :func:`write_psf` writes it as a ``.psf``
  file in the PSFEx layout (so every consumer reads one format) or as plain FITS.
- :func:`make_psf` picks PSFEx when installed, else the empirical PSF (the ``lazyastro dre psfex``
  command).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from ..core.paths import require_input

__all__ = ["read_psf", "run_psfex", "empirical_psf", "write_psf", "make_psf", "find_psfex", "clean_psf",
           "select_psf_stars"]


def find_psfex() -> str | None:
    """The ``psfex`` executable on ``PATH``, or ``None``."""
    return shutil.which("psfex")


def clean_psf(psf, *, path: str | os.PathLike | None = None, field: str = "data") -> np.ndarray:
    """Validate a PSF array: 2-D and finite; negative pixels -> 0; normalised to sum 1.

    Parameters
    ----------
    psf : array_like
    path : path, optional
        File named in error messages.
    field : str, optional
        Field (HDU/column) named in error messages.

    Returns
    -------
    numpy.ndarray
        float64, >= 0, sum 1.

    Raises
    ------
    FormatError
        Not 2-D, empty, non-finite values, or no positive pixel.

    Examples
    --------
    >>> clean_psf([[0.0, -1.0], [1.0, 3.0]]).tolist()
    [[0.0, 0.0], [0.25, 0.75]]
    """
    a = np.asarray(psf, dtype=np.float64)
    if a.ndim != 2 or min(a.shape) < 1:
        raise FormatError(f"{field}: PSF must be a 2-D image, got shape {a.shape}", path)
    if not np.isfinite(a).all():
        raise FormatError(f"{field}: PSF has {int((~np.isfinite(a)).sum())} non-finite pixels", path)
    a = np.where(a > 0, a, 0.0)
    total = a.sum()
    if not total > 0:
        raise FormatError(f"{field}: PSF has no positive pixel (all <= 0)", path)
    return a / total


def read_psf(path: str | os.PathLike) -> np.ndarray:
    """Read a PSF: a PSFEx ``.psf`` file or a FITS image; cleaned with :func:`clean_psf`.

    ``.psf``: the first HDU (1...N) whose header has ``ACCEPTED != 0``; the PSF is ``PSF_MASK`` of
    its first row, first component, i.e. the order-0 (constant) PSF. A ``PSF_SAMP`` other than 1
    is refused (DRE needs the PSF on the image pixel grid). ``.fits``/``.fit``/``.fts`` (optionally
    ``.gz``): the primary HDU (or the first image HDU when the primary is empty).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray
        2-D float64, >= 0, sum 1.

    Raises
    ------
    InputNotFoundError
        Missing file.
    FormatError
        Other extension, unreadable file, no accepted PSF, wrong shape, all-negative PSF.

    Examples
    --------
    >>> import tempfile
    >>> p = write_psf(np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]), tempfile.mkdtemp() + "/t.psf")
    >>> float(read_psf(p)[1, 1])
    0.25
    """
    from astropy.io import fits

    path = require_input(path)
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    suffix = Path(name).suffix
    if suffix not in (".psf", ".fits", ".fit", ".fts"):
        raise FormatError(f"unsupported PSF file extension {suffix or '(none)'!r}: use a PSFEx .psf or a "
                          ".fits image", path)
    try:
        with fits.open(path, memmap=False) as hdul:
            if suffix == ".psf":
                for i, hdu in enumerate(hdul[1:], start=1):
                    if hdu.header.get("ACCEPTED", 0) == 0:
                        continue
                    field = f"HDU {i} ({hdu.name}) PSF_MASK"
                    if not isinstance(hdu, fits.BinTableHDU) or "PSF_MASK" not in hdu.columns.names:
                        raise FormatError(f"HDU {i} ({hdu.name}) has no PSF_MASK column", path)
                    samp = hdu.header.get("PSF_SAMP", 1.0)
                    if abs(float(samp) - 1.0) > 1e-6:
                        raise FormatError(f"HDU {i} PSF_SAMP = {samp}: DRE needs the PSF sampled on image "
                                          "pixels (run PSFEx with PSF_SAMPLING 1.0, the legacy PSF_STEP = 1)", path)
                    mask = np.asarray(hdu.data["PSF_MASK"])
                    if mask.ndim < 3:
                        raise FormatError(f"{field}: expected (row, component, y, x), got shape {mask.shape}", path)
                    while mask.ndim > 2:
                        mask = mask[0]
                    return clean_psf(mask, path=path, field=field)
                raise FormatError("no HDU with ACCEPTED != 0 (PSFEx accepted no star)", path)
            for i, hdu in enumerate(hdul):
                if hdu.is_image and hdu.data is not None:
                    return clean_psf(hdu.data, path=path, field=f"HDU {i}")
            raise FormatError("no image data in any HDU", path)
    except OSError as exc:
        raise FormatError(f"cannot read PSF: {exc}", path) from exc


def write_psf(psf, path: str | os.PathLike, *, accepted: int = 1, overwrite: bool = True) -> str:
    """Write a PSF as a PSFEx-layout ``.psf`` (one accepted order-0 component) or a FITS image.

    Parameters
    ----------
    psf : array_like
        2-D PSF (cleaned and normalised on writing).
    path : str or os.PathLike
        ``*.psf`` (PSFEx layout: HDU ``PSF_DATA`` with ``PSF_MASK`` (1, 1, ny, nx), ``ACCEPTED``,
        ``PSF_SAMP = 1``) or ``*.fits``.
    accepted : int, optional
        Number of stars recorded in ``ACCEPTED``/``LOADED``.
    overwrite : bool, optional

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> p = write_psf(np.ones((3, 3)), tempfile.mkdtemp() + "/t.fits")
    >>> round(float(read_psf(p).sum()), 12)
    1.0
    """
    from astropy.io import fits

    from ..core.atomic import atomic_output

    a = clean_psf(psf, path=path).astype(np.float32)
    with atomic_output(path, overwrite) as tmp:
        if str(path).lower().endswith(".psf"):
            ny, nx = a.shape
            col = fits.Column(name="PSF_MASK", format=f"{ny * nx}E", dim=f"({nx}, {ny}, 1)",
                              array=a[None, None])
            hdu = fits.BinTableHDU.from_columns([col], name="PSF_DATA")
            for k, v in (("LOADED", accepted), ("ACCEPTED", accepted), ("POLNAXIS", 0), ("POLNGRP", 0),
                         ("PSF_SAMP", 1.0), ("PSFNAXIS", 3), ("PSFAXIS1", nx), ("PSFAXIS2", ny), ("PSFAXIS3", 1),
                         ("SOFTNAME", "lazyastro.dre")):
                hdu.header[k] = v
            fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp)
        else:
            fits.PrimaryHDU(a).writeto(tmp)
    return str(path)


def _stem(catalog: Path) -> str:
    name = catalog.name
    for ext in (".fits", ".fit", ".cat", ".ldac"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return name


def run_psfex(catalog: str | os.PathLike, out_dir: str | os.PathLike = "PSF", *,
              config: str | os.PathLike | None = None, args=None) -> str:
    """Run PSFEx on a SExtractor FITS_LDAC catalogue; write ``<out_dir>/<name>.psf``.

    Parameters
    ----------
    catalog : str or os.PathLike
        ``<name>_cat.fits`` (needs VIGNET, X_IMAGE, Y_IMAGE, FLUX_APER, FLUXERR_APER, FLUX_RADIUS,
        SNR_WIN, ELONGATION, FLAGS; the shipped SExtractor parameter list has them).
    out_dir : str or os.PathLike, optional
        Output directory (created); PSFEx runs there.
    config : path, optional
        PSFEx configuration (default: the shipped ``default.psfex``).
    args : mapping or sequence of (NAME, VALUE), optional
        Extra PSFEx options (``-NAME VALUE``); ``PSF_SAMPLING 1.0`` and ``PSF_DIR`` are forced after.

    Returns
    -------
    str
        Path of ``<name>.psf`` (``_cat`` removed from the catalogue name, as the legacy tool).

    Raises
    ------
    ParameterError
        No ``psfex`` on ``PATH``.
    LazyAstroError
        PSFEx failed (message ends with its stderr tail) or accepted no star.

    Examples
    --------
    >>> run_psfex("Sextracted/t_cat.fits", "PSF")  # doctest: +SKIP
    'PSF/t.psf'
    """
    from .extraction import _args_list, _run, data_file

    catalog = require_input(catalog).resolve()
    if config is not None:
        config = require_input(config).resolve()
    binary = find_psfex()
    if binary is None:
        raise ParameterError("psfex is not installed (no psfex on PATH); use the empirical PSF "
                             "(lazyastro.dre.empirical_psf / lazyastro dre psfex --engine empirical)")
    stem = _stem(catalog)
    name = stem[:-4] if stem.endswith("_cat") else stem
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = (out / f".{name}.psfex.partial").resolve()
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    final = out / f"{name}.psf"
    try:
        cmd = [binary, str(catalog), "-c", str(config or data_file("default.psfex"))]
        for key, value in _args_list(args):
            cmd += [f"-{key}", value]
        cmd += ["-PSF_SAMPLING", "1.0", "-PSF_DIR", str(tmp)]
        proc = _run(cmd, str(out.resolve()), catalog, "PSFEx")
        produced = tmp / f"{stem}.psf"
        if not produced.is_file():
            found = sorted(tmp.glob("*.psf"))
            if len(found) != 1:
                tail = " | ".join((proc.stderr or "").strip().splitlines()[-3:])
                raise LazyAstroError(f"PSFEx wrote no .psf file: {tail or 'no message'}", catalog)
            produced = found[0]
        try:
            read_psf(produced)
        except FormatError as exc:
            raise LazyAstroError(f"PSFEx produced no usable PSF: {exc.message}", catalog) from exc
        os.replace(produced, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)


def select_psf_stars(catalog, shape: tuple[int, int], *, size: int = 25, min_stellarity: float = 0.8,
                     min_snr: float = 20.0, isolation: float | None = None, max_stars: int = 100):
    """Rows of ``catalog`` usable as PSF stars: bright, isolated, unsaturated, unflagged point sources.

    Criteria: ``CLASS_STAR >= min_stellarity``; ``FLAGS == 0`` (not blended, saturated or
    truncated); SNR (``SNR_WIN``, else ``FLUX_AUTO / FLUXERR_AUTO``) ``>= min_snr``; no other
    catalogue object within ``isolation`` pixels (default ``size``); the ``size`` stamp inside the
    image. The brightest ``max_stars`` are kept.

    Returns
    -------
    astropy.table.Table

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"X_IMAGE": [50.0, 60.0, 150.0], "Y_IMAGE": [50.0, 52.0, 150.0], "CLASS_STAR": [1.0] * 3,
    ...            "FLAGS": [0] * 3, "SNR_WIN": [100.0] * 3, "FLUX_AUTO": [1.0, 2.0, 3.0]})
    >>> select_psf_stars(t, (200, 200))["X_IMAGE"].tolist()
    [150.0]
    """
    t = catalog
    n = len(t)
    if n == 0:
        return t[:0]
    x = np.asarray(t["X_IMAGE"], float) - 1.0
    y = np.asarray(t["Y_IMAGE"], float) - 1.0
    ok = np.ones(n, bool)
    if "CLASS_STAR" in t.colnames:
        ok &= np.asarray(t["CLASS_STAR"], float) >= min_stellarity
    if "FLAGS" in t.colnames:
        ok &= np.asarray(t["FLAGS"]) == 0
    if "SNR_WIN" in t.colnames:
        snr = np.asarray(t["SNR_WIN"], float)
    elif "FLUX_AUTO" in t.colnames and "FLUXERR_AUTO" in t.colnames:
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.asarray(t["FLUX_AUTO"], float) / np.asarray(t["FLUXERR_AUTO"], float)
    else:
        snr = np.full(n, np.inf)
    ok &= np.nan_to_num(snr, nan=0.0) >= min_snr
    h = size // 2 + 1
    ok &= (x >= h) & (y >= h) & (x < shape[1] - h) & (y < shape[0] - h)
    iso = float(size if isolation is None else isolation)
    d2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    np.fill_diagonal(d2, np.inf)
    ok &= d2.min(axis=1) > iso**2 if n > 1 else ok
    sel = t[ok]
    if "FLUX_AUTO" in sel.colnames and len(sel) > max_stars:
        sel = sel[np.argsort(-np.asarray(sel["FLUX_AUTO"], float))[:max_stars]]
    return sel


def empirical_psf(image, catalog, *, size: int = 25, method: str = "median", min_stars: int = 3,
                  min_stellarity: float = 0.8, min_snr: float = 20.0, isolation: float | None = None,
                  max_stars: int = 100) -> np.ndarray:
    """An empirical PSF from the bright, isolated, unsaturated stars of a catalogue.

    Parameters
    ----------
    image : path or array_like
        The background-subtracted image (``<name>_nb.fits``) or any 2-D array.
    catalog : path or astropy.table.Table
        SExtractor-like catalogue (``X_IMAGE``, ``Y_IMAGE`` 1-based; ``CLASS_STAR``, ``FLAGS``,
        ``SNR_WIN``/``FLUX_AUTO`` used when present); see :func:`select_psf_stars`.
    size : int, optional
        Odd PSF side (pixels); an even value is made odd (+1).
    method : {"median", "epsf"}, optional
        ``"median"`` (default, fast): each star shifted (cubic spline) so its centroid is on the
        centre pixel, normalised, median-combined; ``"epsf"``: photutils ``EPSFBuilder``
        (oversampling 1, i.e. PSF_STEP 1; slower, needs photutils).
    min_stars : int, optional
        Fewer selected stars -> error.
    min_stellarity, min_snr, isolation, max_stars : optional
        Star selection (:func:`select_psf_stars`).

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64, >= 0, sum 1, centred at ``size // 2``.

    Raises
    ------
    FormatError
        Too few PSF stars (message names the catalogue and the criteria).
    ParameterError
        Bad ``method`` or ``size``.

    Examples
    --------
    >>> from lazyastro.dre.simulate import psf_stamp
    >>> from astropy.table import Table
    >>> img = np.zeros((200, 200))
    >>> for yx in ((50, 50), (50, 150), (150, 50), (150, 150)):
    ...     img[yx[0] - 12:yx[0] + 13, yx[1] - 12:yx[1] + 13] += 1e4 * psf_stamp(3.0)
    >>> cat = Table({"X_IMAGE": [51.0, 151.0, 51.0, 151.0], "Y_IMAGE": [51.0, 51.0, 151.0, 151.0]})
    >>> p = empirical_psf(img, cat, method="median")
    >>> p.shape, bool(abs(p - psf_stamp(3.0)).max() < 1e-6)
    ((25, 25), True)
    """
    from .extraction import read_catalog, tile_name

    if method not in ("epsf", "median"):
        raise ParameterError(f"method must be 'epsf' or 'median', got {method!r}")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 5:
        raise ParameterError(f"size must be an integer >= 5, got {size!r}")
    size = int(size) | 1
    cat_path = None
    if isinstance(catalog, str | os.PathLike):
        cat_path = catalog
        catalog = read_catalog(catalog)
    img_path = None
    if isinstance(image, str | os.PathLike):
        from .extraction import _read_image

        img_path = require_input(image)
        data = _read_image(img_path)[0]
    else:
        data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise ParameterError(f"image must be 2-D, got shape {data.shape}")
    for col in ("X_IMAGE", "Y_IMAGE"):
        if col not in catalog.colnames:
            raise FormatError(f"catalogue has no {col} column", cat_path)
    stars = select_psf_stars(catalog, data.shape, size=size, min_stellarity=min_stellarity, min_snr=min_snr,
                             isolation=isolation, max_stars=max_stars)
    if len(stars) < min_stars:
        where = cat_path or (tile_name(img_path) if img_path else None)
        raise FormatError(f"only {len(stars)} PSF stars (need {min_stars}): CLASS_STAR >= {min_stellarity}, "
                          f"FLAGS == 0, SNR >= {min_snr}, isolated, {size} px from the edge", where)
    x = np.asarray(stars["X_IMAGE"], float) - 1.0
    y = np.asarray(stars["Y_IMAGE"], float) - 1.0
    data = np.where(np.isfinite(data), data, 0.0)
    if method == "epsf":
        psf = _epsf(data, x, y, size)
    else:
        psf = _median_stack(data, x, y, size)
    return clean_psf(psf, path=cat_path, field="empirical PSF")


def _stamp(data, cy, cx, size):
    h = size // 2
    return data[cy - h:cy + h + 1, cx - h:cx + h + 1]


def _median_stack(data, x, y, size):
    from scipy.ndimage import shift

    h = size // 2
    big = size + 4
    stack = []
    for xi, yi in zip(x, y):
        cx, cy = int(round(xi)), int(round(yi))
        s = _stamp(data, cy, cx, big)
        if s.shape != (big, big):
            continue
        core = s[2:-2, 2:-2]
        w = np.clip(core, 0, None)
        yy, xx = np.mgrid[:size, :size]
        tot = w.sum()
        if not tot > 0:
            continue
        # centroid in a 7x7 box around the peak (robust to wings and noise)
        box = (abs(yy - h) <= 3) & (abs(xx - h) <= 3)
        wb = w * box
        dy = (wb * yy).sum() / wb.sum() - h
        dx = (wb * xx).sum() / wb.sum() - h
        shifted = shift(s, (-dy, -dx), order=3, mode="nearest")[2:-2, 2:-2]
        stack.append(shifted / shifted.sum())
    if not stack:
        raise FormatError("no complete star stamp for the PSF")
    return np.median(np.array(stack), axis=0)


def _epsf(data, x, y, size):
    try:
        from astropy.nddata import NDData
        from astropy.table import Table
        from photutils.psf import EPSFBuilder, extract_stars
    except ImportError:
        raise ParameterError("method 'epsf' needs photutils (pip install 'lazyastro[dre]'); "
                             "or use method='median'") from None
    stars = extract_stars(NDData(data=data), Table({"x": x, "y": y}), size=(size, size))
    # the ePSF must be larger than the star stamps: build size + 2, keep the central size x size
    builder = EPSFBuilder(oversampling=1, shape=(size + 2, size + 2), maxiters=3, recentering_maxiters=5,
                          progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        epsf, _ = builder(stars)
    return np.asarray(epsf.data, dtype=np.float64)[1:-1, 1:-1]


def make_psf(catalog: str | os.PathLike, out_dir: str | os.PathLike = "PSF", *, engine: str = "auto",
             image: str | os.PathLike | None = None, config: str | os.PathLike | None = None, args=None,
             size: int = 25, method: str = "median") -> str:
    """The PSF of one tile as ``<out_dir>/<name>.psf``: PSFEx when installed, else the empirical PSF.

    Parameters
    ----------
    catalog : str or os.PathLike
        ``<name>_cat.fits``.
    out_dir : str or os.PathLike, optional
    engine : {"auto", "psfex", "empirical"}, optional
    image : path, optional
        Image for the empirical PSF (default: ``<name>_nb.fits`` next to the catalogue).
    config, args : optional
        PSFEx configuration and extra options (:func:`run_psfex`).
    size, method : optional
        Empirical PSF (:func:`empirical_psf`).

    Returns
    -------
    str
        Path of ``<name>.psf`` (PSFEx layout in both cases, read by :func:`read_psf`).

    Examples
    --------
    >>> make_psf("Sextracted/t_cat.fits", "PSF", engine="empirical")  # doctest: +SKIP
    'PSF/t.psf'
    """
    if engine not in ("auto", "psfex", "empirical"):
        raise ParameterError(f"engine must be 'auto', 'psfex' or 'empirical', got {engine!r}")
    catalog = require_input(catalog)
    if engine == "auto":
        engine = "psfex" if find_psfex() else "empirical"
    if engine == "psfex":
        return run_psfex(catalog, out_dir, config=config, args=args)
    stem = _stem(catalog)
    name = stem[:-4] if stem.endswith("_cat") else stem
    if image is None:
        image = catalog.with_name(f"{name}_nb.fits")
        if not image.is_file():
            raise InputNotFoundError(f"the empirical PSF needs the background-subtracted image {image.name} "
                                     "next to the catalogue (or give image=)", image)
    psf = empirical_psf(image, catalog, size=size, method=method)
    return write_psf(psf, Path(out_dir) / f"{name}.psf", accepted=1)
