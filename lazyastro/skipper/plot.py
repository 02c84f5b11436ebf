"""PNG of the average-image histogram behind ``skNoise`` with the fitted model (matplotlib, Agg)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from ..core.atomic import atomic_output
from . import fitting

__all__ = ["plot_fit", "figure"]


def _fmt(value, err=None, unit: str = "") -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    text = f"{value:.3g}" if err is None or not np.isfinite(err) else f"{value:.3g} ± {err:.2g}"
    return f"{text} {unit}".rstrip()


def plot_fit(row: dict, path: str | os.PathLike) -> str:
    """Write the histogram behind ``skNoise`` and its fitted model for one statistics row.

    The counts are drawn on a logarithmic axis that starts below one pixel (no negative
    region); the legend gives the fitted values with their units, and when there is no fit
    the plot says why.

    Parameters
    ----------
    row : dict
        A row from :func:`lazyastro.skipper.compute_statistics` (it holds ``"_plot"``).
    path : path
        PNG to write (atomically; the directory is created).

    Returns
    -------
    str
        ``path``.

    Examples
    --------
    >>> plot_fit(row, "plots/Img_01.png")  # doctest: +SKIP
    'plots/Img_01.png'
    """
    fig = figure(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    return str(path)


def figure(row: dict):
    """The matplotlib ``Figure`` that :func:`plot_fit` saves (Agg; no pyplot state).

    Parameters
    ----------
    row : dict
        A statistics row with ``"_plot"``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    info = row["_plot"]
    x, h = np.asarray(info["centres"], float), np.asarray(info["counts"], float)
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    flipped = " (flipped: charge towards higher ADU)" if info["flipped"] else ""
    ax.step(x, h, where="mid", color="k", lw=1, label=f"average image, 1-ADU bins{flipped}")
    nz = np.flatnonzero(h)
    lo, hi = (x[nz[0]], x[nz[-1]]) if len(nz) else ((x[0], x[-1]) if len(x) else (0.0, 1.0))
    pad = max(5.0, 0.05 * (hi - lo))
    ax.set_xlim(lo - pad, hi + pad)
    window = info.get("window")
    if info["params"] is not None and len(x):
        xf = np.linspace(lo - pad, hi + pad, 2000)
        if info["method"] == "poisson_gauss":
            ax.plot(xf, fitting.poisson_gauss(xf, *info["params"]), "r-", lw=1.2,
                    label="Poisson ⊗ Gaussian fit: "
                    f"σ = {_fmt(row['skNoise'], row.get('skNoise_err'), 'ADU')}\n"
                    f"λ = {_fmt(row.get('darkCurrent'), row.get('darkCurrent_err'), 'e⁻/pixel')}, "
                    f"gain = {_fmt(row.get('aduConversion'), row.get('aduConversion_err'), 'ADU/e⁻')}")
        else:
            ax.plot(xf, fitting.gaussian(xf, *info["params"]), "r-", lw=1.2,
                    label=f"Gaussian on one peak (peak finder): σ = {_fmt(row['skNoise'], row.get('skNoise_err'), 'ADU')}")
            if window is not None:
                ax.axvspan(window[0], window[1], color="tab:orange", alpha=0.15, label="fit window")
    else:
        reason = info.get("reason") or row.get("skNoise_reason") or "fit failed"
        ax.plot([], [], " ", label="no fit: " + "\n".join(textwrap.wrap(reason, 55)))
    ax.set_yscale("log", nonpositive="clip")
    top = float(h.max()) if len(h) and h.max() > 0 else 1.0
    ax.set_ylim(0.5, top * 30)  # counts: nothing below one pixel, no negative region; room for the legend
    ax.set_xlabel("average-image value [ADU]" + (" (mirrored)" if info["flipped"] else ""))
    ax.set_ylabel("pixels per 1-ADU bin")
    name = Path(row["filename"]).name
    nskips = row["nskips"]
    ax.set_title(f"{name}: {nskips} skip{'' if nskips == 1 else 's'}, skNoise = {_fmt(row['skNoise'], row.get('skNoise_err'), 'ADU')}"
                 f" ({row.get('skNoise_method', '')}, {row.get('version', info.get('version', ''))} variables)",
                 fontsize=10)
    legend = ax.legend(fontsize=8, loc="upper right")
    for text in legend.get_texts():
        if text.get_text().startswith("no fit:"):
            text.set_color("tab:red")
    fig.tight_layout()
    return fig
