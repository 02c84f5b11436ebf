"""The GAN step of ``lazyastro demo``: statistics of a real-vs-synthetic image set and the comparison plots."""

from __future__ import annotations

import sys

__all__ = ["DEMO_STEPS", "statistics_step"]


def statistics_step(ctx) -> list[str]:
    """Two simulated lognormal sets (a "real" one and a "generated" one with another spectrum):
    denormprep, statistics caches, KS tests and the comparison plots."""
    import numpy as np

    from . import compute_statistics, denormprep, write_imageset
    from .cache import StatCache, ks_tests
    from .plot import plot_all
    from .simulate import simulate_set

    run = ctx.out / "gan"
    real, fake = run / "real.h5", run / "generated.h5"
    write_imageset(simulate_set(32, 64, seed=ctx.seed), real, overwrite=True, progress=False)
    denormprep(real, overwrite=True)
    from .imageset import open_imageset

    ln = open_imageset(real).attrs["lognorminfo"]
    write_imageset(simulate_set(32, 64, seed=ctx.seed + 1, slope=-2.4), fake, lognorminfo=ln, overwrite=True,
                   progress=False)
    nbytes = 2 * 32 * 64 * 64 * 8

    def job():
        return [compute_statistics(p, run / f"{p.stem}-cache.h5", overwrite=True, progress=False)
                for p in (real, fake)]

    ctx.table.run("gan: statistics of 2 x 32 images (PSD, histogram, 100-threshold Minkowski)", nbytes, job)
    caches = [StatCache(run / "real-cache.h5", name="real"), StatCache(run / "generated-cache.h5", name="generated")]
    ks = ks_tests(*caches)
    frac = float(np.mean(ks.mf_p.values < 0.05))
    print(f"  gan: KS tests real vs generated (per-image F, U, chi): p < 0.05 at {frac:.0%} of thresholds",
          file=sys.stderr)
    return plot_all(caches, run / "plots")


#: (order, label, step) entries collected by ``lazyastro demo``.
DEMO_STEPS = [(30, "gan statistics", statistics_step)]
