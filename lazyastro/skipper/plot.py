"""PNG of the average-image histogram with the fitted model (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_output
from . import fitting

__all__ = ["plot_fit"]


def plot_fit(row: dict, path: str | os.PathLike) -> str:
    """Write the histogram behind ``skNoise`` and its fitted model for one statistics row.

    >>> plot_fit(row, "plots/Img_01.png")  # doctest: +SKIP
    'plots/Img_01.png'
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    info = row["_plot"]
    x, h = np.asarray(info["centres"]), np.asarray(info["counts"])
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ax.step(x, h, where="mid", color="k", lw=1, label="average image" + (" (flipped)" if info["flipped"] else ""))
    if info["params"] is not None and len(x):
        xf = np.linspace(x[0], x[-1], 20 * len(x))
        if info["method"] == "poisson_gauss":
            s, lam, _off, gain, _n = info["params"]
            ax.plot(xf, fitting.poisson_gauss(xf, *info["params"]), "r-",
                    label=f"Poisson(x)Gauss: sigma={s:.3g}, lambda={lam:.3g}, gain={gain:.3g}")
        else:
            ax.plot(xf, fitting.gaussian(xf, *info["params"]), "r-",
                    label=f"Gaussian (peak finder): sigma={info['params'][2]:.3g}")
    nz = np.flatnonzero(h)
    if len(nz):
        pad = max(5.0, 0.05 * (x[nz[-1]] - x[nz[0]]))
        ax.set_xlim(x[nz[0]] - pad, x[nz[-1]] + pad)
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("ADU (1-ADU bins)")
    ax.set_ylabel("pixels")
    ax.set_title(f"{Path(row['filename']).name}: nskips={row['nskips']}, skNoise={row['skNoise']:.3g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return str(path)
