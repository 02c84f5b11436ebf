"""``lazyastro sgan preprocess`` and ``lazyastro sgan train`` (thin: parse, call, report).

::

    lazyastro sgan preprocess f606w.fits f775w.fits f814w.fits cube.zarr --rotate 43.25 \\
        --crop 2080:5320,2080:5320 --units "e-/s"
    lazyastro sgan train cube.zarr --epochs 300 --out runs/xdf --checkpoint-every 10
    lazyastro sgan train skimage:hubble_deep_field --units "8-bit JPEG counts" --epochs 100 --out runs/hdf
    lazyastro sgan train cube.zarr --epochs 600 --out runs/xdf --resume
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _crop(text: str):
    try:
        ys, xs = text.split(",")
        (y0, y1), (x0, x1) = (tuple(int(v) for v in p.split(":")) for p in (ys, xs))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected Y0:Y1,X0:X1, got {text!r}") from None
    return ((y0, y1), (x0, x1))


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",")]


def _sizes(text: str):
    from ..core.errors import ParameterError
    from .training import parse_sizes

    try:
        return parse_sizes(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def _prep_options(args) -> dict:
    opts = {"bands": args.bands, "units": args.units, "rotate": args.rotate, "crop": args.crop,
            "clip_percentile": None if args.no_clip else args.clip_percentile, "select": args.select,
            "band_axis": args.band_axis}
    return opts


def _changed_prep(args) -> dict:
    """The preprocessing options the user gave (train passes none for preprocessed data)."""
    defaults = {"bands": None, "units": None, "rotate": None, "crop": None, "clip_percentile": 99.99,
                "select": None, "band_axis": None}
    return {k: v for k, v in _prep_options(args).items() if v != defaults[k]}


def _preprocess(args) -> int:
    from .. import to_zarr
    from .preprocessing import preprocess

    data = args.inputs[0] if len(args.inputs) == 1 else list(args.inputs)
    out = preprocess(data, **_prep_options(args))
    to_zarr(out, args.out, overwrite=args.overwrite)
    bands = ", ".join(f"{b} [{lo:.6g}, {hi:.6g}]" for b, lo, hi in
                      zip(out.attrs["bands"], out.attrs["band_min"], out.attrs["band_max"]))
    print(f"{args.out}: {out.shape[1]} x {out.shape[2]} pixels, bands {bands} ({out.attrs['units']})")
    return 0


def _train(args) -> int:
    from .training import train

    r = train(args.data, args.out, epochs=args.epochs, iterations_per_epoch=args.iterations_per_epoch,
              batch_size=args.batch_size, sizes=args.sizes, filters=args.filters, noise_channels=args.noise_channels,
              depth=args.depth, checkpoint_every=args.checkpoint_every, resume=args.resume, seed=args.seed,
              learning_rate=args.learning_rate, sample_size=args.sample_size, threads=args.threads,
              preprocess_options=_changed_prep(args) or None)
    print(f"{r.out}: {r.epoch} epochs, {r.iterations} iterations in {r.seconds:.0f} s; d_loss {r.d_loss:.4f}, "
          f"g_loss {r.g_loss:.4f}; generator {r.generator_path}")
    return 0


def _add_prep_args(p: argparse.ArgumentParser) -> None:
    from ..cli.options import float_option

    g = p.add_argument_group("preprocessing (raw inputs)")
    g.add_argument("--bands", type=_names, help="band names, comma-separated (default: from the input)")
    g.add_argument("--units", help="pixel units recorded with the model (default: from the input)")
    g.add_argument("--rotate", type=float_option(), metavar="DEG", help="rotate by DEG degrees (legacy XDF: 43.25)")
    g.add_argument("--crop", type=_crop, metavar="Y0:Y1,X0:X1", help="crop after the rotation")
    g.add_argument("--clip-percentile", type=float_option(min=0, max=100, min_open=True), default=99.99,
                   help="per-band upper clip percentile (default 99.99)")
    g.add_argument("--no-clip", action="store_true", help="no percentile clip (min-max only)")
    g.add_argument("--select", type=_int_list, metavar="I,J,..", help="keep these bands (legacy XDF: 1,2,3)")
    g.add_argument("--band-axis", type=int, help="band axis of a 3-D input (default 0)")


def register(sub) -> None:
    """Add ``preprocess`` and ``train`` to the ``sgan`` subcommands."""
    from ..cli.options import float_option, int_option

    p = sub.add_parser("preprocess", help="clip and normalise images per band into a training cube (Zarr)",
                       description="Rotate/crop (optional), clip each band at a percentile, min-max normalise; "
                       "writes a (band, y, x) Zarr whose attrs hold the constants the model keeps.")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="a file of any format, an RGB PNG/JPEG, skimage:NAME, or one file per band")
    p.add_argument("out", help="output Zarr store")
    p.add_argument("--overwrite", action="store_true", help="replace an existing store")
    _add_prep_args(p)
    p.set_defaults(func=_preprocess)

    t = sub.add_parser("train", help="train a Spatial GAN (RaSGAN) with checkpoints and resume",
                       description="RaSGAN training: random crops at the (noise, crop) sizes, flips, a generator "
                       "and a discriminator step per iteration, two Adam optimisers.")
    t.add_argument("data", help="preprocessed Zarr (lazyastro sgan preprocess), or a raw input (preprocessed first)")
    t.add_argument("--out", required=True, help="output directory (checkpoints, losses.csv, samples)")
    t.add_argument("--epochs", type=int_option(min=1), required=True, help="train until this many epochs in total")
    t.add_argument("--iterations-per-epoch", type=int_option(min=1), default=30, help="(default 30)")
    t.add_argument("--batch-size", type=int_option(min=2), default=32, help="even (default 32)")
    t.add_argument("--sizes", type=_sizes, default="4:64,8:128,16:256",
                   help="noise:crop sizes drawn per iteration (default 4:64,8:128,16:256)")
    t.add_argument("--filters", type=int_option(min=1), default=32, help="last-block filters (default 32)")
    t.add_argument("--noise-channels", type=int_option(min=1), default=50, help="(default 50)")
    t.add_argument("--depth", type=int_option(min=1), default=4, help="stride-2 blocks (default 4: x16)")
    t.add_argument("--checkpoint-every", type=int_option(min=1), default=10, metavar="K",
                   help="checkpoint every K epochs (default 10)")
    t.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    t.add_argument("--seed", type=int_option(min=0), help="seed (default: fresh, recorded)")
    t.add_argument("--learning-rate", type=float_option(min=0, min_open=True), default=2e-4, help="(default 2e-4)")
    t.add_argument("--sample-size", type=int_option(min=1), default=32,
                   help="noise side of the sample image per checkpoint (default 32 -> 512 px)")
    t.add_argument("--threads", type=int_option(min=1), help="TensorFlow threads (default: all cores)")
    _add_prep_args(t)
    t.set_defaults(func=_train)
