"""``lazyastro dre sextract | psfex | cuts`` (aliases ``sex_dre``, ``psfex_dre``, ``make_cuts``): thin CLI.

::

    lazyastro dre sextract -i Tiles -o Sextracted [--subdir] [--engine auto|sextractor|sep]
        [--gain counts|cps|VALUE] [--gain-key KEY] [--config F] [--param F] [--filter F] [--nnw F]
        [--zero-point ZP] [--seeing FWHM] [--flags DIR] [--weights DIR [DIR]] [--arg NAME VALUE]...
        [--file NAME DIR [DIR2]]...
    lazyastro dre sextract -i DET_DIR MEAS_DIR ...            # dual-image mode (names matched by prefix)
    lazyastro dre psfex -i Sextracted -o PSF [-c default.psfex] [--engine auto|psfex|empirical]
    lazyastro dre cuts -i Tiles -s Sextracted [-c CATALOGS] -o Cuts [--margin 80] [--max-stellarity 1.0]
        [-f PARAM MIN MAX]... [--centroids] [--centroids-mode com|1dg|2dg] [--compression medium] [--warn]
        [--objects-per-block 64]     # resumable per block: rerun after an interruption to finish
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..cli.options import float_option, int_option

__all__ = ["register"]

_IMAGE_EXT = (".fits", ".fit", ".fts", ".fits.fz", ".fits.gz")


def _images(path: Path) -> list[Path]:
    from ..core.errors import InputNotFoundError

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputNotFoundError("no such file or directory", path)
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(_IMAGE_EXT))
    if not found:
        raise InputNotFoundError("no FITS image (*.fits) in the directory", path)
    return found


def _prefix(name: str, sep: str) -> str:
    return name.split(sep, 1)[0] if sep else name


def _sextract(args) -> int:
    from ..core.errors import InputNotFoundError, ParameterError
    from .extraction import read_catalog, sextract, tile_name

    if len(args.input) > 2:
        raise ParameterError(f"-i takes one directory (or two: detection, measurement), got {len(args.input)}")
    meas = _images(Path(args.input[-1]))
    det_by_prefix = None
    if len(args.input) == 2:
        det_by_prefix = {}
        for p in _images(Path(args.input[0])):
            det_by_prefix.setdefault(_prefix(tile_name(p), args.separator), p)
    if args.weights and len(args.weights) > 2:
        raise ParameterError(f"--weights takes one or two directories, got {len(args.weights)}")
    for image in meas:
        name = tile_name(image)
        det = None
        if det_by_prefix is not None:
            det = det_by_prefix.get(_prefix(name, args.separator))
            if det is None:
                raise InputNotFoundError(f"no detection image with prefix {_prefix(name, args.separator)!r} "
                                         f"for {image.name}", args.input[0])
        det_name = tile_name(det) if det is not None else name
        weights = None
        if args.weights:
            w1 = Path(args.weights[0]) / f"{det_name}_wht.fits"
            w2 = Path(args.weights[-1]) / f"{name}_wht.fits"
            weights = [w1, w2] if det is not None or len(args.weights) == 2 else [w1]
        flags = Path(args.flags) / f"{det_name}_flag.fits" if args.flags else None
        extra = [tuple(a) for a in args.arg or ()]
        for spec in args.file or ():
            # --file NAME DIR [DIR2]: -NAME DIR/<detection file name>[,DIR2/<measurement file name>]
            if len(spec) not in (2, 3):
                raise ParameterError(f"--file takes NAME DIR [DIR2], got {' '.join(spec)}")
            key, dirs = spec[0], spec[1:]
            files = [Path(dirs[0]) / (det or image).name] + ([Path(dirs[-1]) / image.name] if det or len(dirs) == 2
                                                              else [])
            for f in files:
                if not f.is_file():
                    raise InputNotFoundError(f"--file {key}: no such file", f)
            extra.append((key, ",".join(str(f.resolve()) for f in files)))
        out = sextract(image, args.output, engine=args.engine, detection=det, gain=args.gain, gain_key=args.gain_key,
                       config=args.config, params=args.param, filter=args.filter, nnw=args.nnw,
                       zero_point=args.zero_point, seeing=args.seeing, weights=weights, flags=flags,
                       args=extra, subdir=args.subdir)
        n = len(read_catalog(out["catalog"]))
        print(f"{name}: {n} objects ({out['engine']}) -> {out['catalog']}")
    return 0


def _catalogs(path: Path) -> list[Path]:
    from ..core.errors import InputNotFoundError

    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputNotFoundError("no such file or directory", path)
    found = sorted(path.rglob("*_cat.fits"))
    if not found:
        raise InputNotFoundError("no SExtractor catalogue (*_cat.fits) found", path)
    return found


def _psfex(args) -> int:
    from .psf import make_psf, read_psf

    for cat in _catalogs(Path(args.input)):
        out = make_psf(cat, args.output, engine=args.engine, config=args.config,
                       args=[tuple(a) for a in args.arg or ()], size=args.size, method=args.method)
        psf = read_psf(out)
        print(f"{cat.name}: PSF {psf.shape[0]}x{psf.shape[1]} -> {out}")
    return 0


def _cuts(args) -> int:
    from ..core.errors import InputNotFoundError, ParameterError
    from .cuts import make_cuts, open_cuts
    from .extraction import tile_name

    done = 0
    for tile in _images(Path(args.input)):
        name = tile_name(tile)
        out = Path(args.output) / f"{name}_cuts.h5"
        try:
            with warnings.catch_warnings():
                if not args.warn:
                    warnings.simplefilter("ignore")
                path = make_cuts(tile, args.sextracted, out, margin=args.margin, max_stellarity=args.max_stellarity,
                                 filters=[(p, lo, hi) for p, lo, hi in args.filter or ()],
                                 centroids=args.centroids_mode if args.centroids else None,
                                 compression=args.compression, catalog=args.catalogs, legacy=args.legacy,
                                 warn=args.warn, objects_per_block=args.objects_per_block)
        except InputNotFoundError as exc:
            print(f"warning: {name}: skipped ({exc})")
            continue
        a = open_cuts(path).attrs
        print(f"{name}: {a['n_written']} cuts written ({a['n_selected']} selected of {a['n_catalog']}; "
              f"skipped: {a['n_skipped_nan']} with NaN, {a['n_skipped_edge']} too close to the edge) -> {path}")
        done += 1
    if not done:
        raise ParameterError(f"no tile was cut (no SExtractor products found under {args.sextracted})")
    return 0




def register(subparsers) -> None:
    """Add ``sextract`` (``sex_dre``), ``psfex`` (``psfex_dre``) and ``cuts`` (``make_cuts``)."""
    p = subparsers.add_parser("sextract", aliases=["sex_dre"], help="source extraction (SExtractor or sep)",
                              description="Run SExtractor (or sep when it is not installed) on every image of "
                              "a directory with the legacy forced options; writes <name>_cat.fits (FITS_LDAC), "
                              "_nb, _rms and _seg images.")
    p.add_argument("-i", "--input", nargs="+", default=["Tiles"], metavar="DIR",
                   help="image directory or file (two directories: detection, measurement; default Tiles)")
    p.add_argument("-o", "--output", default="Sextracted", help="output directory (default Sextracted)")
    p.add_argument("--subdir", action="store_true", help="write into OUTPUT/<name>/")
    p.add_argument("--engine", choices=("auto", "sextractor", "sep"), default="auto",
                   help="auto: SExtractor when installed, else sep")
    p.add_argument("--gain", default=None, metavar="counts|cps|VALUE",
                   help="counts: header gain; cps: gain x EXPTIME; or a value (default: none passed)")
    p.add_argument("--gain-key", default=None, help="header key of the gain (default GAIN, else the unique *GAIN* key)")
    p.add_argument("--config", default=None, help="SExtractor configuration (default: the shipped one)")
    p.add_argument("--param", default=None, help="SExtractor parameter list")
    p.add_argument("--filter", default=None, help="SExtractor detection filter")
    p.add_argument("--nnw", default=None, help="SExtractor star/galaxy neural network weights")
    p.add_argument("--zero-point", type=float, default=None, help="MAG_ZEROPOINT")
    p.add_argument("--seeing", type=float_option(min=0, min_open=True), default=None, help="SEEING_FWHM")
    p.add_argument("--flags", default=None, metavar="DIR", help="flag images DIR/<det>_flag.fits")
    p.add_argument("--weights", nargs="+", default=None, metavar="DIR",
                   help="weight images DIR1/<det>_wht.fits[,DIR2/<meas>_wht.fits] (MAP_WEIGHT)")
    p.add_argument("--arg", nargs=2, action="append", metavar=("NAME", "VALUE"), help="extra -NAME VALUE option")
    p.add_argument("--file", nargs="+", action="append", metavar="NAME DIR",
                   help="-NAME DIR/<image file>[,DIR2/<measurement file>] (repeatable)")
    p.add_argument("--separator", default="_", help="dual mode: names match on the prefix before this (default _)")
    p.set_defaults(func=_sextract)

    p = subparsers.add_parser("psfex", aliases=["psfex_dre"], help="PSF per tile (PSFEx or empirical)",
                              description="Run PSFEx (PSF_SAMPLING 1) on every *_cat.fits under the input "
                              "directory and write PSF/<name>.psf; without PSFEx, build an empirical PSF from "
                              "bright isolated stars.")
    p.add_argument("-i", "--input", default="Sextracted", help="catalogue or directory (default Sextracted)")
    p.add_argument("-o", "--output", default="PSF", help="output directory (default PSF)")
    p.add_argument("-c", "--config", default=None, help="PSFEx configuration (default: the shipped one)")
    p.add_argument("--engine", choices=("auto", "psfex", "empirical"), default="auto",
                   help="auto: PSFEx when installed, else the empirical PSF")
    p.add_argument("--arg", nargs=2, action="append", metavar=("NAME", "VALUE"), help="extra PSFEx -NAME VALUE")
    p.add_argument("--size", type=int_option(min=5), default=25, help="empirical PSF size (default 25)")
    p.add_argument("--method", choices=("median", "epsf"), default="median", help="empirical PSF stacking")
    p.set_defaults(func=_psfex)

    p = subparsers.add_parser("cuts", aliases=["make_cuts"], help="128x128 obj/seg/rms cutouts per object",
                              description="Cut obj (background-subtracted), seg (cleaned mask) and rms stamps "
                              "of the selected catalogue objects of every tile into Cuts/<name>_cuts.h5.")
    p.add_argument("-i", "--input", default="Tiles", help="tile directory or file (default Tiles)")
    p.add_argument("-s", "--sextracted", default="Sextracted", help="SExtractor products (default Sextracted)")
    p.add_argument("-c", "--catalogs", default=None, help="catalogue directory (default: the -s directory)")
    p.add_argument("-o", "--output", default="Cuts", help="output directory (default Cuts)")
    p.add_argument("--margin", type=float_option(min=0), default=80.0, help="edge margin, pixels (default 80)")
    p.add_argument("--max-stellarity", type=float, default=1.0, help="keep CLASS_STAR < this (default 1.0)")
    p.add_argument("-f", "--filter", nargs=3, action="append", metavar=("PARAM", "MIN", "MAX"),
                   help="keep MIN < PARAM < MAX (repeatable)")
    p.add_argument("--centroids", action="store_true", help="re-centre each cut on its centroid")
    p.add_argument("--centroids-mode", choices=("com", "1dg", "2dg"), default="com", help="centroid method")
    p.add_argument("--legacy", action="store_true", help="re-centre to 63.5 (the legacy target) instead of 64")
    p.add_argument("--compression", choices=("none", "low", "medium", "high"), default="medium",
                   help="HDF5 compression: none, lzf, gzip 4, gzip 9 (default medium)")
    p.add_argument("--warn", action="store_true", help="warn about every skipped object")
    p.add_argument("--objects-per-block", type=int_option(min=1), default=64,
                   help="objects per task, the resume unit after an interruption (default 64)")
    p.set_defaults(func=_cuts)
