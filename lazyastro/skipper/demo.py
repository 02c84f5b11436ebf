"""The skipper step of ``lazyastro demo``: quick-look statistics of simulated skipper images."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["DEMO_STEPS", "quicklook_step"]


def quicklook_step(ctx) -> list[str]:
    """Skipper-CCD quick-look statistics on simulated images (1, 25 and 400 skips)."""
    from lazyastro import skipper

    run = ctx.out / "skipper"
    paths = []
    for i, nskips in enumerate((1, 25, 400)):
        path = run / f"Img_{i:02d}.fits"
        skipper.simulate(path, nrows=60, ncols=200, nskips=nskips, read_noise=20.0,
                         dark_current=0.3, gain=8.0, seed=ctx.seed + i)
        paths.append(path)
    nbytes = sum(p.stat().st_size for p in paths)
    rows = ctx.table.run("skipper: quick-look statistics of 3 files", nbytes,
                         lambda: skipper.compute_statistics(paths, seed=ctx.seed))
    table = run / "img_preproc_out.ecsv"
    skipper.write_rows(table, rows, "ecsv", rewrite=True)
    print("  skipper truth: read noise 20 ADU per skip (20/sqrt(nskips) on the average), "
          "dark current 0.3 e-/pix, gain 8 ADU/e-", file=sys.stderr)
    for row in rows:
        print(f"  skipper {Path(row['filename']).name}: nskips={row['nskips']}, "
              f"skNoise={row['skNoise']:.3g} ADU, darkCurrent={row['darkCurrent']:.3g} e-/pix, "
              f"aduConversion={row['aduConversion']:.3g} ADU/e-", file=sys.stderr)
    return [str(table)]


#: (order, label, step) entries collected by ``lazyastro demo``.
DEMO_STEPS = [(20, "skipper quick-look", quicklook_step)]
