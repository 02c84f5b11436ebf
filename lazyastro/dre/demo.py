"""The DRE step of ``lazyastro demo``: the whole pipeline on a small simulated field.

Simulates a tile of PSF-convolved De Vaucouleurs galaxies (with stars, neighbours and noise) whose
parameters lie on a reduced model grid, runs ``Tiles -> Sextracted -> PSF -> Cuts -> Chi/Summary/
Mosaics`` on it (:func:`lazyastro.dre.run`), and compares the fitted parameters with the truth
(:func:`match_truth`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["DEMO_STEPS", "pipeline_step", "demo_grid", "match_truth", "recovery"]


def demo_grid() -> dict[str, np.ndarray]:
    """The reduced model grid of the demo, tests and notebook: 3 q x 5 theta x 6 log_r (n = 4).

    >>> {k: len(v) for k, v in demo_grid().items()}
    {'n': 1, 'q': 3, 'theta': 5, 'log_r': 6}
    """
    return {"n": np.array([4.0]), "q": np.array([0.4, 0.7, 1.0]), "theta": np.arange(0.0, 181.0, 45.0),
            "log_r": np.round(np.linspace(0.0, 1.0, 6), 10)}


def match_truth(summary, truth, *, radius: float = 2.0):
    """Pair the summary rows with the simulated galaxies (nearest ``X_IMAGE, Y_IMAGE`` within ``radius``).

    Parameters
    ----------
    summary : astropy.table.Table or path
        A joined summary (needs ``X_IMAGE``, ``Y_IMAGE``).
    truth : astropy.table.Table or path
        The truth table of :func:`lazyastro.dre.simulate.simulate_field` (``x``, ``y``, 1-based).
    radius : float
        Matching radius in pixels.

    Returns
    -------
    astropy.table.Table
        One row per matched primary galaxy: the truth columns (``true_`` prefix for
        ``q``, ``theta``, ``log_r``) beside the fitted ones.
    """
    from astropy.table import Table, hstack

    summary = Table.read(summary) if isinstance(summary, str | os.PathLike) else summary
    truth = Table.read(truth) if isinstance(truth, str | os.PathLike) else truth
    gal = truth[~np.asarray(truth["is_star"], bool) & ~np.asarray(truth["is_neighbour"], bool)]
    if len(summary) == 0 or len(gal) == 0:
        return Table()
    sx, sy = np.asarray(summary["X_IMAGE"], float), np.asarray(summary["Y_IMAGE"], float)
    rows_s, rows_t = [], []
    for j, (x, y) in enumerate(zip(np.asarray(gal["x"], float), np.asarray(gal["y"], float))):
        d = np.hypot(sx - x, sy - y)
        i = int(np.argmin(d))
        if d[i] <= radius:
            rows_s.append(i)
            rows_t.append(j)
    t = gal[rows_t]
    t.rename_columns(["q", "theta", "log_r"], ["true_q", "true_theta", "true_log_r"])
    keep = ["id", "x", "y", "flux", "true_q", "true_theta", "true_log_r", "q_idx", "theta_idx", "log_r_idx"]
    fitted = summary[rows_s]["NUMBER", "MODEL_IDX", "AX_RATIO", "ANGLE", "LOGR", "LOGR_PARAB", "CHI"]
    return hstack([t[keep], fitted], metadata_conflicts="silent")


def recovery(matched, *, grid: dict | None = None) -> dict[str, float]:
    """Fractions of matched on-grid galaxies whose true grid point (and log r) was found.

    ``theta`` counts as found modulo 180 degrees, and for any angle when ``q = 1`` (round
    galaxies have no position angle).

    Returns
    -------
    dict
        ``n`` (matched galaxies), ``exact`` (q, theta and log_r all right), ``q``, ``theta``,
        ``log_r`` (each right), ``log_r_1step`` (log_r within one grid step).
    """
    if len(matched) == 0:
        return {"n": 0, "exact": float("nan"), "q": float("nan"), "theta": float("nan"),
                "log_r": float("nan"), "log_r_1step": float("nan")}
    idx = np.asarray(matched["MODEL_IDX"], int)
    ok_q = idx[:, 1] == np.asarray(matched["q_idx"])
    ang = np.asarray(matched["ANGLE"], float)
    tt = np.asarray(matched["true_theta"], float)
    dtheta = np.abs((ang - tt + 90.0) % 180.0 - 90.0)
    ok_t = (dtheta < 1e-6) | (np.asarray(matched["true_q"], float) >= 0.999)
    if grid is not None:
        step = float(np.diff(grid["log_r"]).min())
    else:
        step = float(np.diff(np.unique(np.asarray(matched["LOGR"], float))).min(initial=0.2))
    dr = np.abs(np.asarray(matched["LOGR"], float) - np.asarray(matched["true_log_r"], float))
    ok_r = dr < 1e-6
    return {"n": len(matched), "exact": float(np.mean(ok_q & ok_t & ok_r)), "q": float(np.mean(ok_q)),
            "theta": float(np.mean(ok_t)), "log_r": float(np.mean(ok_r)),
            "log_r_1step": float(np.mean(dr <= step + 1e-6))}


def pipeline_step(ctx) -> list[str]:
    """Simulate one 384 x 384 tile (6 galaxies on the reduced grid, stars, neighbours), run the pipeline."""
    import importlib.util

    from . import make_models
    from .extraction import find_sextractor
    from .pipeline import run
    from .simulate import write_tiles

    engine = "sep" if importlib.util.find_spec("sep") else "sextractor" if find_sextractor() else None
    if engine is None:
        print("  dre: skipped (needs sep or SExtractor: pip install 'lazyastro[dre]')", file=sys.stderr)
        return []
    work = Path(ctx.out) / "dre"
    grid = demo_grid()
    tiles = write_tiles(work, shape=(384, 384), n_galaxies=6, n_stars=4, seed=ctx.seed, grid=grid,
                        q_range=(0.4, 1.0), log_r_range=(0.0, 1.0), min_separation=50.0, galaxy_flux=(2e4, 8e4))
    models = make_models(**{k: v for k, v in grid.items()}, boxsize=128)

    def job():
        return run(work / "Tiles", models=models, engine=engine, mosaics=True, progress=False)

    (summary,) = ctx.table.run(f"dre: {engine} + PSF + cuts + fit of a 384x384 tile (90 models)", 384 * 384 * 4,
                               job)
    rec = recovery(match_truth(summary, tiles[0]["truth"]), grid=grid)
    print(f"  dre: {rec['n']} simulated galaxies fitted; true grid point found for {rec['exact']:.0%} "
          f"(q {rec['q']:.0%}, theta {rec['theta']:.0%}, log r {rec['log_r']:.0%}; "
          f"log r within one step {rec['log_r_1step']:.0%})", file=sys.stderr)
    pngs = sorted(str(p) for p in (work / "Mosaics").rglob("*.png"))
    return [summary] + pngs[:2]


#: (order, label, step) entries collected by ``lazyastro demo``.
DEMO_STEPS = [(40, "dre pipeline", pipeline_step)]
