"""``lazyastro sgan generate`` and ``lazyastro sgan tessellate`` (thin: parse, call, report).

::

    lazyastro sgan generate -z 232 -n 4 --seed 42 --format fits --out images/
    lazyastro sgan generate --model g.keras -z 64 -n 10 --seed 1 --format png,npy --out outs/ --rescale
    lazyastro sgan tessellate --size 16384 --seed 7 --out mosaic.zarr
    lazyastro sgan tessellate --size 5000x7000 --seed 7 --tile 2048 --out mosaic.fits --fits-layout per-band
    lazyastro sgan preview mosaic.zarr mosaic.png --max-side 2048 [--region 0:2048,0:2048]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

__all__ = ["register", "FORMATS"]

FORMATS = ("fits", "zarr", "npy", "png")


def _size(text: str):
    try:
        parts = [int(v) for v in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or NYxNX, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected N or NYxNX, got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def _formats(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [v for v in names if v not in FORMATS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"formats are {', '.join(FORMATS)} (comma-separated), got {text!r}")
    return names


def _rate(pixels: int, seconds: float) -> str:
    return f"{pixels / 1e6 / seconds:.3f} Mpx/s" if seconds > 0 else "-"


def _tessellate(args) -> int:
    from ..core.errors import ParameterError
    from ..core.memory import peak_rss
    from .tiling import tessellate, write_mosaic

    out = Path(args.out)
    if not out.name.lower().endswith((".zarr", ".fits", ".fit", ".fts")):
        raise ParameterError("output must end in .zarr or .fits", out)
    t0 = time.perf_counter()
    mosaic = tessellate(args.model, size=args.size, seed=args.seed, tile=args.tile, overlap=args.overlap,
                        exact=not args.non_exact, one_shot=args.one_shot, legacy=args.legacy,
                        rescale=True if args.rescale else None)
    paths = write_mosaic(mosaic, out, fits_layout=args.fits_layout, overwrite=args.overwrite)
    dt = time.perf_counter() - t0
    _, ny, nx = mosaic.shape
    tiles = len(mosaic.chunks[1]) * len(mosaic.chunks[2])
    print(f"{', '.join(map(str, paths))}: {mosaic.sizes['band']} bands x {ny} x {nx} px "
          f"({', '.join(mosaic.attrs['bands'])}; {mosaic.attrs['BUNIT'] or 'normalised units'}), seed {args.seed}, "
          f"{tiles} tile{'s' if tiles > 1 else ''}, halo {mosaic.attrs['HALO']}; {dt:.1f} s, "
          f"{_rate(ny * nx, dt)}, peak RSS {peak_rss() / 2**20:.0f} MiB")
    return 0


def _png(image, path: Path) -> None:
    """One band as an 8-bit PNG with an asinh stretch (written atomically)."""
    import numpy as np

    from ..core.atomic import atomic_output

    img = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(img, [1.0, 99.9])
    scale = max(hi - lo, 1e-30)
    x = np.arcsinh(np.clip((img - lo) / scale, 0, None) * 10.0) / np.arcsinh(10.0)
    data = (np.clip(x, 0, 1) * 255).astype(np.uint8)
    from PIL import Image

    with atomic_output(path, overwrite=True) as tmp:
        Image.fromarray(data).save(tmp, format="PNG")


def _generate(args) -> int:
    import numpy as np

    from ..core.atomic import atomic_output
    from ..core.execution import compute
    from ..io.fits_write import to_fits
    from ..io.zarr_write import to_zarr
    from .display import write_preview
    from .generation import generate

    t0 = time.perf_counter()
    images = generate(args.model, z_size=args.z_size, n=args.images, seed=args.seed, shuffle=args.shuffle,
                      rescale=args.rescale, legacy=args.legacy, tile=args.tile)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    n, nb = images.sizes["image"], images.sizes["band"]
    if "zarr" in args.format:
        written.append(to_zarr(images, out / "images.zarr", overwrite=args.overwrite))
    for i in range(n):
        img = images.isel(image=i)
        stores = []
        if "fits" in args.format:
            for c in range(nb):
                band = img.isel(band=c).drop_vars(["band", "image"])
                band.attrs = {k: v for k, v in images.attrs.items() if k != "bands"}
                band.attrs.update({"BAND": str(images["band"].values[c]), "IMAGE": i})
                p = out / f"{i}-{c}.fits"
                stores.append(to_fits(band, p, overwrite=args.overwrite, compute=False))
                written.append(str(p))
        if stores:
            compute(*stores, desc=f"image {i}")
        if "npy" in args.format or "png" in args.format:
            arr = np.asarray(compute(img.data, progress=False)[0], dtype=np.float32)
            if "npy" in args.format:
                p = out / f"{i}.npy"
                with atomic_output(p, overwrite=args.overwrite) as tmp:
                    with open(tmp, "wb") as f:
                        np.save(f, arr, allow_pickle=False)
                written.append(str(p))
            if "png" in args.format:
                for c in range(nb):
                    p = out / f"{i}-{c}.png"
                    _png(arr[c], p)
                    written.append(str(p))
                if nb == 3:  # and the colour composite, one stretch for the three bands
                    p = out / f"{i}-rgb.png"
                    write_preview(img, p, overwrite=True)
                    written.append(str(p))
    dt = time.perf_counter() - t0
    side = images.sizes["y"]
    print(f"{out}: {n} image{'s' if n > 1 else ''} of {nb} bands x {side} x {side} px, seed {args.seed}, "
          f"model {images.attrs['MODELSHA'][:12]}; {len(written)} files ({', '.join(args.format)}); {dt:.1f} s, "
          f"{_rate(n * side * side, dt)}")
    return 0


def _preview(args) -> int:
    from ..core.paths import require_input
    from ..io.registry import open as open_any
    from .display import parse_region, write_preview

    src = require_input(args.mosaic, kind="any")
    mosaic = open_any(src)
    if not hasattr(mosaic, "dims"):
        from ..core.errors import FormatError

        raise FormatError("not an image mosaic (expected one array with dims band, y, x)", src)
    if mosaic.ndim == 3 and "band" not in mosaic.dims:
        mosaic = mosaic.rename(dict(zip(mosaic.dims, ("band", "y", "x"), strict=True)))
    elif mosaic.ndim == 2:
        mosaic = mosaic.rename(dict(zip(mosaic.dims, ("y", "x"), strict=True)))
    t0 = time.perf_counter()
    try:
        bands = [int(b) for b in args.bands.split(",")] if args.bands else None
    except ValueError:
        from ..core.errors import ParameterError

        raise ParameterError(f"--bands takes 1 or 3 comma-separated band indices, got {args.bands!r}") from None
    path = write_preview(mosaic, args.out, max_side=args.max_side, region=parse_region(args.region), bands=bands,
                         softening=args.softening, overwrite=args.overwrite)
    print(f"{path}: preview of {src} ({' x '.join(str(mosaic.sizes[d]) for d in mosaic.dims)} px); "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


def register(sub) -> None:
    from ..cli.options import int_option

    g = sub.add_parser("generate", help="seeded images of a given noise size (FITS per band, Zarr, npy, PNG)",
                       description="Generate N seeded images with a Spatial GAN generator, in physical units "
                       "(the model's band constants). Files: <i>-<band>.fits (header BAND, BUNIT, MODELSHA, "
                       "SEED, ZSIZE), images.zarr, <i>.npy (band, y, x), <i>-<band>.png (asinh stretch).")
    g.add_argument("--model", "-m", default=None, help="generator .keras file (default: the built-in model)")
    g.add_argument("-z", "--z-size", type=int, default=64, help="noise side; output side 16 z (default 64)")
    g.add_argument("-n", "--images", type=int, default=1, help="number of images (default 1)")
    g.add_argument("--seed", type=int, default=42, help="seed (default 42)")
    g.add_argument("--format", type=_formats, default=["fits"], help="fits, zarr, npy, png; comma-separated "
                   "(default fits)")
    g.add_argument("--out", "-o", required=True, help="output directory")
    g.add_argument("--shuffle", action="store_true", help="legacy noise shuffle (seeded)")
    g.add_argument("--rescale", action="store_true", help="legacy rescale: subtract the modal-bin left edge")
    g.add_argument("--legacy", action="store_true", help="legacy constants and axes (transposed per-band files)")
    g.add_argument("--tile", type=int_option(min=1), default=None,
                   help="tile side of the generation tasks (default about 1024)")
    g.add_argument("--overwrite", action="store_true", help="replace existing files")
    g.set_defaults(func=_generate)

    t = sub.add_parser("tessellate", help="seam-free mosaic of any size, streamed to Zarr or FITS (resumable)",
                       description="Tile a mosaic of any size from a seeded noise field: every tile is "
                       "regenerated with the generator's receptive-field halo, so the result equals one-shot "
                       "generation bit for bit. Resumable: rerun the same command after an interruption.")
    t.add_argument("--model", "-m", default=None, help="generator .keras file (default: the built-in model)")
    t.add_argument("--size", type=_size, required=True, help="output size N or NYxNX in pixels (any)")
    t.add_argument("--out", "-o", required=True, help="mosaic.zarr or mosaic.fits")
    t.add_argument("--seed", type=int, required=True, help="seed of the noise field")
    t.add_argument("--tile", type=int, default=None,
                   help="tile side in output pixels (default about 1024: 1072 for the reference architecture)")
    t.add_argument("--overlap", type=int, default=None,
                   help="symmetric overlap in noise pixels (default: the minimum exact halo of the model)")
    t.add_argument("--non-exact", action="store_true", help="allow an overlap below the receptive field (seams)")
    t.add_argument("--one-shot", action="store_true", help="the whole noise field in one generator call")
    t.add_argument("--fits-layout", choices=("cube", "per-band"), default="cube",
                   help="one 3-D cube (default) or one file per band <stem>-<i>.fits")
    t.add_argument("--legacy", action="store_true", help="legacy constants, axes and rescale")
    t.add_argument("--rescale", action="store_true", help="subtract the modal-bin left edge per band")
    t.add_argument("--overwrite", action="store_true", help="replace an existing mosaic")
    t.set_defaults(func=_tessellate)

    v = sub.add_parser("preview", help="an RGB (or grey) PNG of a mosaic of any size, block-averaged",
                       description="Render a (band, y, x) mosaic (Zarr, FITS, any registered format) as a PNG: "
                       "an optional region, block means down to --max-side pixels computed chunk by chunk "
                       "(memory bounded by the chunks), one asinh stretch for all bands (the colour balance "
                       "is kept). Three bands are shown as R, G, B.")
    v.add_argument("mosaic", help="mosaic.zarr, mosaic.fits, ...")
    v.add_argument("out", help="output .png")
    v.add_argument("--max-side", type=int_option(min=1), default=2048, help="largest side of the PNG (default 2048)")
    v.add_argument("--region", default=None, help="Y0:Y1,X0:X1 pixel ranges to show (default: all)")
    v.add_argument("--bands", default=None, help="three band indices for R,G,B (default 0,1,2), or one for grey")
    v.add_argument("--softening", type=float, default=0.3, help="asinh softening (default 0.3)")
    v.add_argument("--overwrite", action="store_true", help="replace an existing PNG")
    v.set_defaults(func=_preview)
