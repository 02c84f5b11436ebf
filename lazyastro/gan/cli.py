"""``lazyastro gan``: GAN image-set statistics (thin: parse, call, report).

Subcommands mirror the legacy scripts::

    lazyastro gan denormprep real.h5 [--legacy] [--overwrite]
    lazyastro gan stats real.h5 real-cache.h5 --batch-size 16 --statistics missing
    lazyastro gan split-at real.h5 99 first.h5 second.h5
    lazyastro gan odd-even real.h5 even.h5 odd.h5
    lazyastro gan plot real-cache.h5 gan-cache.h5 --out plots/
    lazyastro gan generate generator.keras gan.h5 --n 1000 --seed 1 --batch-size 16 --like real.h5
    lazyastro gan histograms generator.keras hists.h5 --sets 10 --images-per-set 100 --like real.h5

``generate`` and ``histograms`` run a Keras 3 generator (the ``lazyastro[gan]`` extra).
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _denormprep(args) -> int:
    from .imageset import denormprep

    ln, ms = denormprep(args.imageset, legacy=args.legacy, overwrite=args.overwrite)
    print(f"{args.imageset}: lognorminfo = {ln}, musigmainfo = {ms}")
    return 0


def _stats(args) -> int:
    from .cache import compute_statistics

    c = compute_statistics(args.imageset, args.cache, batch_size=args.batch_size, statistics=args.statistics,
                           mode="legacy" if args.legacy else "default", overwrite=args.overwrite,
                           lognorminfo=args.lognorminfo)
    print(f"{args.cache}: {len(c.batches)} batches of {args.batch_size} images ({c.n_images} images)")
    return 0


def _split_at(args) -> int:
    from .imageset import split_at

    a, b = split_at(args.imageset, args.index, args.first, args.second, legacy=args.legacy,
                    overwrite=args.overwrite)
    print(f"{a}\n{b}")
    return 0


def _odd_even(args) -> int:
    from .imageset import odd_even

    a, b = odd_even(args.imageset, args.even, args.odd, legacy=args.legacy, overwrite=args.overwrite)
    print(f"{a}\n{b}")
    return 0


def _plot(args) -> int:
    from ..core.errors import ParameterError
    from .cache import StatCache
    from .plot import plot_all

    names = args.names.split(",") if args.names else [None] * len(args.caches)
    if len(names) != len(args.caches):
        raise ParameterError(f"--names gives {len(names)} names for {len(args.caches)} caches")
    caches = [StatCache(p, name=n) for p, n in zip(args.caches, names)]
    kvalues = [int(k) for k in args.k.split(",")] if args.k else None
    for p in plot_all(caches, args.out, k_to_ell=args.k_to_ell, kvalues=kvalues, suffix=f".{args.format}"):
        print(p)
    return 0


def _gan_source(args) -> dict:
    from ..core.errors import ParameterError

    if (args.like is None) == (args.lognorminfo is None):
        raise ParameterError("give --like REAL (the real image set) or --lognorminfo LMIN,LMAX: the generator's "
                             "output is de-normalised with the real set's constants")
    return {"like": args.like, "lognorminfo": args.lognorminfo}


def _generate(args) -> int:
    from ..core.random import check_seed
    from .generate import generate_images

    seed = check_seed(args.seed)
    path = generate_images(args.model, args.n, seed=seed, batch_size=args.batch_size, out=args.out,
                           channel=args.channel, dtype="float32" if args.float32 else "float64",
                           legacy=args.legacy, overwrite=args.overwrite, **_gan_source(args))
    print(f"{path}: {args.n} images from {args.model} (seed {seed})")
    return 0


def _histograms(args) -> int:
    from ..core.random import check_seed
    from .generate import gan_histograms

    seed = check_seed(args.seed)
    lo, hi = args.range
    path = gan_histograms(args.model, args.out, n_sets=args.sets, images_per_set=args.images_per_set,
                          range=(lo, hi), bins=args.bins, seed=seed, batch_size=args.batch_size,
                          channel=args.channel, overwrite=args.overwrite, **_gan_source(args))
    print(f"{path}: {args.sets} histograms of {args.images_per_set} images from {args.model} (seed {seed})")
    return 0


def _range(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOWER,UPPER, got {text!r}") from None
    if len(vals) != 2 or not vals[1] > vals[0]:
        raise argparse.ArgumentTypeError(f"expected LOWER,UPPER with LOWER < UPPER, got {text!r}")
    return vals


def _lognorm(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LMIN,LMAX, got {text!r}") from None
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected LMIN,LMAX, got {text!r}")
    return vals


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``gan`` subcommand and its subcommands."""
    from ..cli.options import int_option

    p = subparsers.add_parser("gan", help="GAN image-set statistics (power spectra, histograms, Minkowski)",
                              description="Statistics to compare GAN-generated image sets with real ones.")
    sub = p.add_subparsers(dest="gan_command", metavar="COMMAND", required=True)

    d = sub.add_parser("denormprep", help="store lognorminfo and musigmainfo in a real image set")
    d.add_argument("imageset")
    d.add_argument("--legacy", action="store_true", help="the legacy numbers (Lmax from 1e-100, sigma bug)")
    d.add_argument("--overwrite", action="store_true", help="recompute constants that are already there")
    d.set_defaults(func=_denormprep)

    s = sub.add_parser("stats", help="fill the statistics cache of an image set (only what is missing)")
    s.add_argument("imageset")
    s.add_argument("cache", help="cache file (legacy HDF5 layout) or .zarr")
    s.add_argument("--batch-size", type=int_option(min=1), default=16,
                   help="images per batch (recorded in the cache; default 16)")
    s.add_argument("--statistics", default="missing",
                   help="'missing' (default) or a comma list of psd,intensityhistogram,mf2d to recompute")
    s.add_argument("--legacy", action="store_true",
                   help="legacy kernels (half-pixel ring PSD, minkfncts2d saddles); default: corrected")
    s.add_argument("--lognorminfo", type=_lognorm, default=None, metavar="LMIN,LMAX",
                   help="normalisation constants to use instead of the set's (e.g. the real set's); "
                   "write --lognorminfo=-3.2,5.1 when LMIN is negative")
    s.add_argument("--overwrite", action="store_true", help="discard a cache of other parameters")
    s.set_defaults(func=_stats)

    a = sub.add_parser("split-at", help="images 0..INDEX to FIRST, the rest to SECOND")
    a.add_argument("imageset")
    a.add_argument("index", type=int)
    a.add_argument("first")
    a.add_argument("second")
    a.add_argument("--legacy", action="store_true", help="drop lognorminfo/musigmainfo like the legacy splitter")
    a.add_argument("--overwrite", action="store_true")
    a.set_defaults(func=_split_at)

    o = sub.add_parser("odd-even", help="even-indexed images to EVEN, odd-indexed to ODD")
    o.add_argument("imageset")
    o.add_argument("even")
    o.add_argument("odd")
    o.add_argument("--legacy", action="store_true", help="drop lognorminfo/musigmainfo like the legacy splitter")
    o.add_argument("--overwrite", action="store_true")
    o.set_defaults(func=_odd_even)

    pl = sub.add_parser("plot", help="comparison plots of statistics caches (first = reference)")
    pl.add_argument("caches", nargs="+")
    pl.add_argument("--out", default="gan_plots", help="output directory (default gan_plots)")
    pl.add_argument("--names", default=None, help="comma list of set names for the legends")
    pl.add_argument("--k", default=None, help="comma list of k for the spectrum histograms")
    pl.add_argument("--k-to-ell", type=float, default=18.0, help="ell per k (360 / field width in deg; 18)")
    pl.add_argument("--format", choices=("png", "pdf"), default="png")
    pl.set_defaults(func=_plot)

    def generator_options(q, out_help):
        q.add_argument("model", help="the generator, a Keras 3 .keras file (loaded with safe_mode)")
        q.add_argument("out", help=out_help)
        q.add_argument("--like", default=None, metavar="REAL",
                       help="the real image set whose lognorminfo de-normalises the output (only read)")
        q.add_argument("--lognorminfo", type=_lognorm, default=None, metavar="LMIN,LMAX",
                       help="the constants instead of --like (write --lognorminfo=-3.2,5.1 when LMIN < 0)")
        q.add_argument("--seed", type=int_option(min=0), default=None,
                       help="seed of the latent noise (default: a fresh one, printed and stored)")
        q.add_argument("--batch-size", type=int_option(min=1), default=16,
                       help="images per generator call (default 16; the noise does not depend on it)")
        q.add_argument("--channel", type=int_option(min=0), default=0, help="output channel (default 0)")
        q.add_argument("--overwrite", action="store_true")

    g = sub.add_parser("generate", help="N images from a Keras generator, de-normalised, as an image set",
                       description="Legacy gen_GAN_images.py: seeded latent noise, batched, de-normalised "
                       "with the real set's lognorminfo, streamed to an image set (HDF5 legacy layout or .zarr).")
    generator_options(g, "the image set to write (legacy HDF5 layout, or a .zarr directory)")
    g.add_argument("--n", type=int_option(min=1), required=True, help="number of images")
    g.add_argument("--float32", action="store_true", help="store float32 pixels (default float64)")
    g.add_argument("--legacy", action="store_true", help="musigmainfo with the legacy sigma formula")
    g.set_defaults(func=_generate)

    h = sub.add_parser("histograms", help="log10-intensity histograms of many generated sets",
                       description="Legacy gen_GAN_intensity_histograms.py: SETS sets of IMAGES_PER_SET generated "
                       "images, one summed log10-pixel histogram per set (binedges, imagesize, datasize).")
    generator_options(h, "the HDF5 file of histograms to write")
    h.add_argument("--sets", type=int_option(min=1), required=True, help="number of sets")
    h.add_argument("--images-per-set", type=int_option(min=1), required=True)
    h.add_argument("--range", type=_range, default=[-5.0, 10.0], metavar="LOWER,UPPER",
                   help="histogram range in log10 units (default -5,10; write --range=-5,10)")
    h.add_argument("--bins", type=int_option(min=1), default=100, help="number of bins (default 100)")
    h.set_defaults(func=_histograms)
    return p
