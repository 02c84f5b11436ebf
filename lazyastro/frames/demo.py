"""The frames step of ``lazyastro demo``: the exact median over frames, out of core."""

from __future__ import annotations

__all__ = ["DEMO_STEPS", "median_step"]


def median_step(ctx) -> list[str]:
    """Exact median over frames (hexrd ``imageseries.stats``) of the demo series, streamed to FITS."""
    import lazyastro
    from lazyastro import frames

    median = frames.median(frames.open(ctx.series_zarr))
    path = ctx.out / "median.fits"
    ctx.table.run("frames: exact median over frames (FITS)", ctx.nbytes,
                  lambda: lazyastro.to_fits(median, path, overwrite=True))
    return [str(path)]


#: (order, label, step) entries collected by ``lazyastro demo``.
DEMO_STEPS = [(10, "frames median", median_step)]
