"""The Spatial-GAN step of ``lazyastro demo``: a seam-free mosaic from the built-in model, streamed to
Zarr, its statistics (power spectrum, intensity histogram, Minkowski functionals) computed lazily,
and an RGB preview PNG."""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["DEMO_STEPS", "mosaic_step", "mosaic_size"]

#: mosaic side (output px) per ``lazyastro demo --size``
SIZES = {"small": 256, "medium": 1024, "full": 2048}
#: side of the patches the statistics are computed on
PATCH = 128


def mosaic_size(size_arg: str) -> int:
    """Mosaic side for a ``--size`` value (the FRAMES,NY,NX form gives the medium mosaic).

    Examples
    --------
    >>> mosaic_size("small"), mosaic_size("8,64,64")
    (256, 1024)
    """
    return SIZES.get(size_arg, SIZES["medium"])


def _patches(mosaic, band: int, patch: int):
    """Up to 64 non-overlapping ``patch``-sided cut-outs of one band as a lazy image set ``(image, y, x)``."""
    import dask.array as da
    import xarray as xr

    data = mosaic.data[band]
    ny, nx = (s // patch for s in data.shape)
    cuts = [data[i * patch:(i + 1) * patch, j * patch:(j + 1) * patch] for i in range(ny) for j in range(nx)]
    cuts = cuts[:: max(1, len(cuts) // 64)][:64]  # at most 64 patches spread over the mosaic (memory budget)
    return xr.DataArray(da.stack(cuts).rechunk((8, patch, patch)), dims=("image", "y", "x"))


def mosaic_step(ctx) -> list[str]:
    """Tessellate a mosaic with the built-in generator straight to Zarr, then its statistics, lazily."""
    import numpy as np

    import lazyastro
    from lazyastro.gan import intensity_histogram, minkowski, power_spectrum

    from .display import write_preview
    from .tiling import tessellate

    side = mosaic_size(getattr(ctx.args, "size", "small"))
    # small tiles (304 px: whole evaluator blocks with the halo) keep the step within the demo's
    # memory budget after the steps before it; 1072-px tiles are faster but hold ~3x more per tile
    tile = 256 if side <= 512 else 304
    path = ctx.out / "sgan" / "mosaic.zarr"
    try:  # the built-in model is read without Keras; other files may need it
        mosaic = tessellate(None, size=side, seed=ctx.seed, tile=tile)
    except ModuleNotFoundError as exc:
        if exc.name not in ("keras", "tensorflow") and importlib.util.find_spec("keras") is not None:
            raise
        print("  sgan: mosaic step skipped (Keras is not installed: pip install 'lazyastro[gan]')", file=sys.stderr)
        return []
    nb = mosaic.sizes["band"]
    nbytes = nb * side * side * 4
    ctx.table.run(f"sgan: {side}x{side}x{nb} mosaic, built-in model -> Zarr", nbytes,
                  lambda: lazyastro.to_zarr(mosaic, path, overwrite=True, progress=False))
    stored = lazyastro.open_zarr(path)
    band = nb // 2
    images = _patches(stored, band, PATCH)
    lo, hi = np.percentile(stored[band, :PATCH, :PATCH].values, [5, 99.5])
    thresholds = np.linspace(float(lo), float(hi), 32)
    stats = (power_spectrum(images), intensity_histogram(images, range=(-1.0, 3.0)), minkowski(images, thresholds))

    def job():
        return lazyastro.compute(*stats, progress=False)

    ps, hist, mf = ctx.table.run(f"sgan: statistics of {images.sizes['image']} patches {PATCH}px (PSD, hist, MF)",
                                 images.sizes["image"] * PATCH * PATCH * 4, job)
    k_peak = float(ps.k.values[int(np.argmax(ps.mean("image").values[1:])) + 1])
    area = mf.sel(functional="F").mean("image").values
    print(f"  sgan: mosaic {path} ({stored.attrs.get('BUNIT') or 'normalised'}), band "
          f"{stored['band'].values[band]}: {images.sizes['image']} patches, PSD peak at k={k_peak:.3g}, "
          f"area fraction {area[0] / PATCH**2:.2f} -> {area[-1] / PATCH**2:.2f} over thresholds "
          f"[{lo:.3g}, {hi:.3g}], {int(hist.counts.sum())} histogram counts", file=sys.stderr)
    png = write_preview(stored, ctx.out / "sgan" / "mosaic.png", overwrite=True, max_side=1024)
    print(f"  sgan: look at it: {png} (RGB, asinh stretch)", file=sys.stderr)
    return [str(path), png]


#: (order, label, step) entries collected by ``lazyastro demo``.
DEMO_STEPS = [(40, "sgan mosaic", mosaic_step)]
