"""``lazyastro dre fit`` (alias ``dre``) and ``lazyastro dre run`` (thin: parse, call, report).

::

    lazyastro dre fit --psf PSF -i Cuts -o Summary --chi Chi --catalogs Sextracted [-m MODEL | MODEL]
    lazyastro dre run Tiles [--engine auto|sextractor|sep] [--mosaics] [--legacy]

The legacy ``dre`` options: ``-m/--model`` (also a positional), ``--psf`` (file or directory,
default ``PSF``), ``-i`` (cuts file or directory, default ``Cuts``), ``-o`` (summary directory,
default ``Summary``), ``--chi`` (default ``Chi``), ``--catalogs`` (default ``Sextracted``),
``--mosaics``, ``--cpu`` (worker threads), ``--compression`` (none/low/medium/high, default
medium); plus ``--legacy`` (the legacy statistics and mosaic orientation) and ``--variance``.
"""

from __future__ import annotations

import argparse

from ..cli.options import float_option, int_option

__all__ = ["register"]


def _workers(cpu: int | None):
    import contextlib

    import dask

    return dask.config.set(num_workers=cpu) if cpu else contextlib.nullcontext()


def _fit(args) -> int:
    from ..core.errors import ParameterError
    from .pipeline import fit_tiles, print_report

    if args.model and args.model_pos and args.model != args.model_pos:
        raise ParameterError(f"two models given: -m {args.model} and {args.model_pos}")
    model = args.model or args.model_pos
    with _workers(args.cpu):
        results = fit_tiles(args.input, models=model, psf=args.psf, chi_dir=args.chi, summary_dir=args.output,
                            catalogs=args.catalogs, mosaics="Mosaics" if args.mosaics else None,
                            mode="legacy" if args.legacy else "default", variance=args.variance,
                            compression=args.compression, exposure=args.exposure,
                            objects_per_block=args.objects_per_block, report=print_report)
    if not results:
        raise ParameterError("no tile was fitted (no PSF for any tile)")
    for res in results:
        print(res.summary)
    return 0


def _run(args) -> int:
    from .pipeline import print_report, run

    with _workers(args.cpu):
        paths = run(args.tiles, workdir=args.workdir, models=args.model, psf=args.psf, engine=args.engine,
                    gain=_gain(args.gain), margin=args.margin, max_stellarity=args.max_stellarity, mosaics=args.mosaics,
                    mode="legacy" if args.legacy else "default", variance=args.variance,
                    compression=args.compression, objects_per_block=args.objects_per_block, report=print_report)
    for p in paths:
        print(p)
    return 0


def _gain(text):
    if text in (None, "counts", "cps"):
        return text
    from ..core.errors import ParameterError

    try:
        return float(text)
    except ValueError:
        raise ParameterError(f"--gain must be counts, cps or a number, got {text!r}") from None


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mosaics", action="store_true", help="write Mosaics/<name>/ (FITS and PNG per object)")
    p.add_argument("--cpu", type=int_option(min=1), default=None, metavar="N",
                   help="worker threads (default: one per core)")
    p.add_argument("--compression", choices=("none", "low", "medium", "high"), default="medium",
                   help="chi (and cut) HDF5 compression: none, low (lzf), medium (gzip 4, default), high (gzip 9)")
    p.add_argument("--legacy", action="store_true",
                   help="legacy statistics (plain-NaN sums), even-PSF shift and transposed mosaics")
    p.add_argument("--variance", choices=("model", "psf"), default="model",
                   help="chi^2 variance: s*m + rms^2 (model, default) or the fork's s*m*sum(PSF^2)/t_exp + rms^2")
    p.add_argument("--objects-per-block", type=int_option(min=1), default=None, metavar="N",
                   help="objects per task (the resume unit)")


def register(subparsers) -> None:
    """Add ``fit`` (alias ``dre``) and ``run`` to ``lazyastro dre``."""
    p = subparsers.add_parser(
        "fit", aliases=["dre"], help="chi^2 fit of every cut against the PSF-convolved model cube",
        description="Fit every object of the cut files against the model cube convolved with each tile's "
        "PSF: Chi/<name>_chi.h5 (+ .zarr), Summary/<name>_dre.fits joined with the catalogue, "
        "optional Mosaics/. Resumable: rerun the same command after an interruption.")
    p.add_argument("model_pos", nargs="?", default=None, metavar="MODEL",
                   help="model cube (Zarr or legacy FITS); same as -m")
    p.add_argument("-m", "--model", default=None, help="model cube (default: the default-grid cube, built once)")
    p.add_argument("--psf", default="PSF", help="PSF file (.psf or .fits) or directory of <tile>.psf (default: PSF)")
    p.add_argument("-i", dest="input", default="Cuts", help="cut file or directory of <tile>_cuts.h5 (default: Cuts)")
    p.add_argument("-o", dest="output", default="Summary", help="summary directory (default: Summary)")
    p.add_argument("--chi", default="Chi", help="chi directory (default: Chi)")
    p.add_argument("--catalogs", default="Sextracted", help="SExtractor catalogues (default: Sextracted)")
    p.add_argument("--exposure", type=float_option(min=0, min_open=True), default=None,
                   help="t_exp of --variance psf (default 1)")
    _common(p)
    p.set_defaults(func=_fit)

    r = subparsers.add_parser(
        "run", help="the whole pipeline on a directory of tiles: sextract, PSF, cuts, fit",
        description="Tiles -> Sextracted -> PSF -> Cuts -> Chi/Summary(/Mosaics) in the legacy working-directory "
        "layout (beside TILES_DIR). Uses SExtractor and PSFEx when installed, else sep and an empirical PSF.")
    r.add_argument("tiles", metavar="TILES_DIR", help="directory of FITS images")
    r.add_argument("-m", "--model", default=None, help="model cube (default: the default-grid cube)")
    r.add_argument("--psf", default=None, help="use this PSF file or directory instead of measuring one per tile")
    r.add_argument("--workdir", default=None, help="working directory (default: the parent of TILES_DIR)")
    r.add_argument("--engine", choices=("auto", "sextractor", "sep"), default="auto",
                   help="source extraction (default auto: SExtractor if installed, else sep)")
    r.add_argument("--gain", default=None, help="extraction gain: counts (header GAIN), cps (GAIN x EXPTIME) "
                   "or a number (default: none)")
    r.add_argument("--margin", type=int_option(min=0), default=80, help="cut selection margin (default 80)")
    r.add_argument("--max-stellarity", type=float_option(min=0), default=1.0,
                   help="keep objects with CLASS_STAR below this (default 1.0)")
    _common(r)
    r.set_defaults(func=_run)
