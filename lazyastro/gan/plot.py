"""Plots comparing image sets from their statistics caches (matplotlib, Agg; PNG or PDF).

Each function takes a list of :class:`~lazyastro.gan.cache.StatCache` (the first is the
reference, usually the real set) and returns a matplotlib ``Figure``;
:func:`save_figure` writes it atomically. :func:`plot_all` writes the standard set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ParameterError

__all__ = ["plot_intensity_histograms", "plot_minkowski", "plot_log_spectra", "plot_ks_pvalues",
           "plot_spectrum_histograms", "save_figure", "plot_all"]

_MF_LABELS = ("area F [pixel$^2$]", "boundary length U [pixel]", r"Euler characteristic $\chi$")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False) if matplotlib.get_backend().lower() != "agg" else None
    import matplotlib.pyplot as plt

    return plt


def _check(caches) -> list:
    caches = list(caches)
    if not caches:
        raise ParameterError("no image sets to plot")
    return caches


def plot_intensity_histograms(caches, *, units: str = r"$\mu$K", normalise: str = "counted") -> Any:
    """Log10 pixel histograms per set, as fractions of pixels, with Poisson error bars.

    Parameters
    ----------
    caches : sequence of StatCache
    units : str, optional
        Pixel units for the axis label.
    normalise : {"counted", "all"}, optional
        Divide by the binned pixel count (default) or by all pixels (legacy).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, c in enumerate(_check(caches)):
        edges, counts = c.histogram()
        dropped = c.dropped()
        total = dropped.get("total") or counts.sum()
        denom = counts.sum() if normalise == "counted" else total
        centres = 0.5 * (edges[1:] + edges[:-1])
        keep = counts > 0
        frac = counts / denom
        ax.errorbar(centres[keep], frac[keep], yerr=np.sqrt(counts[keep]) / denom, fmt="o", ms=3,
                    capsize=2, color=f"C{i}", label=f"{c.name} ({c.n_images} images)")
    ax.set_yscale("log")
    ax.set_xlabel(f"log$_{{10}}$(intensity / {units})")
    ax.set_ylabel(f"fraction of pixels per bin (width {edges[1] - edges[0]:.2f})")
    ax.set_title("log-intensity histograms (Poisson error bars)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_minkowski(caches) -> Any:
    """Minkowski functionals vs threshold: mean line and shaded +/-1 std band per set (3 panels).

    Parameters
    ----------
    caches : sequence of StatCache

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for i, c in enumerate(_check(caches)):
        mf = c.minkowski()
        thr = c.thresholds()
        mean, std = mf.mean(axis=1), mf.std(axis=1)
        for j, ax in enumerate(axes):
            ax.plot(thr, mean[j], color=f"C{i}", label=c.name if j == 0 else None)
            ax.fill_between(thr, mean[j] - std[j], mean[j] + std[j], color=f"C{i}", alpha=0.25, lw=0)
    for ax, lab in zip(axes, _MF_LABELS):
        ax.set_xlabel("threshold (log-normalised intensity)")
        ax.set_ylabel(lab)
    axes[0].legend(fontsize="small")
    fig.suptitle("Minkowski functionals: mean and $\\pm 1\\sigma$ over images")
    fig.tight_layout()
    return fig


def plot_log_spectra(caches, *, k_to_ell: float = 18.0) -> Any:
    """Mean log10 power spectrum vs multipole with a shaded +/-1 std band per set.

    Parameters
    ----------
    caches : sequence of StatCache
    k_to_ell : float, optional
        ``ell = k * k_to_ell`` (18 for 20-degree fields); 0 or None plots against k.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for i, c in enumerate(_check(caches)):
        ls = c.log_spectra()
        k = np.arange(ls.shape[1], dtype=float)[1:]
        x = k * k_to_ell if k_to_ell else k
        mean, std = ls.mean(axis=0)[1:], ls.std(axis=0)[1:]
        ax.plot(x, mean, color=f"C{i}", label=c.name)
        ax.fill_between(x, mean - std, mean + std, color=f"C{i}", alpha=0.25, lw=0)
    ax.set_xscale("log")
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = ax.get_xlim()
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000) if lo <= t <= hi]
    if len(ticks) >= 2:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel(r"multipole $\ell$" if k_to_ell else "wavenumber k [FFT index]")
    ax.set_ylabel(r"log$_{10}$ P(k)")
    ax.set_title("power spectra: mean and $\\pm 1\\sigma$ over images (k = 0 not shown)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_ks_pvalues(caches) -> Any:
    """KS p-values (per-image F, U, chi; first set vs each other) per threshold, 3 panels.

    Parameters
    ----------
    caches : sequence of StatCache (at least 2)

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .cache import ks_tests

    caches = _check(caches)
    if len(caches) < 2:
        raise ParameterError("KS tests need at least two image sets")
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for i, c in enumerate(caches[1:], start=1):
        ks = ks_tests(caches[0], c)
        for j, ax in enumerate(axes):
            ax.plot(ks.threshold, ks.mf_p[j], "o-", ms=3, color=f"C{i}", label=f"{caches[0].name} vs {c.name}")
    for ax, lab in zip(axes, ("F", "U", r"$\chi$")):
        ax.set_ylim(-0.05, 1.05)
        ax.axhline(0.05, color="0.5", ls=":", lw=1)
        ax.set_xlabel("threshold (log-normalised intensity)")
        ax.set_ylabel(f"KS p-value of {lab}")
    axes[0].legend(fontsize="small")
    fig.suptitle("two-sample KS tests on per-image functionals (dotted: p = 0.05)")
    fig.tight_layout()
    return fig


def plot_spectrum_histograms(caches, kvalues, *, k_to_ell: float = 18.0, range: tuple[float, float] = (6.0, 16.0),  # noqa: A002
                             bins: int = 32) -> Any:
    """Histograms over images of log10 P at chosen k (any number of panels).

    Parameters
    ----------
    caches : sequence of StatCache
    kvalues : sequence of int
    k_to_ell : float, optional
    range : (float, float), optional
    bins : int, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from .cache import spectrum_histograms

    kvalues = list(kvalues)
    if not kvalues:
        raise ParameterError("give at least one k value")
    plt = _plt()
    fig, axes = plt.subplots(1, len(kvalues), figsize=(4.3 * len(kvalues), 4), squeeze=False)
    for i, c in enumerate(_check(caches)):
        centres, hs = spectrum_histograms(c, kvalues, range=range, bins=bins)
        for ax, h in zip(axes[0], hs):
            frac = np.where(h > 0, h / c.n_images, np.nan)  # empty bins: no point (log axis)
            ax.plot(centres, frac, "o-", ms=3, color=f"C{i}", label=c.name)
    for ax, k in zip(axes[0], kvalues):
        ax.set_yscale("log")
        ax.set_xlabel(r"log$_{10}$ P(k)")
        ax.set_ylabel("fraction of images")
        ax.set_title(f"k = {k} ($\\ell$ = {k * k_to_ell:g})")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike, *, overwrite: bool = True, dpi: int = 110) -> str:
    """Save a figure atomically (format from the suffix: .png or .pdf) and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
    overwrite : bool, optional
    dpi : int, optional

    Returns
    -------
    str
    """
    from ..core.atomic import atomic_output

    path = Path(os.fspath(path))
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf"):
        raise ParameterError(f"plots are written as .png or .pdf, got {path.name!r}", path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    _plt().close(fig)
    return str(path)


def plot_all(caches, outdir: str | os.PathLike, *, k_to_ell: float = 18.0, kvalues=None,
             suffix: str = ".png") -> list[str]:
    """Write the standard comparison plots of ``caches`` into ``outdir``; return their paths.

    Parameters
    ----------
    caches : sequence of StatCache
    outdir : path-like
    k_to_ell : float, optional
    kvalues : sequence of int, optional
        For the spectrum histograms (default: three k spread over the spectrum).
    suffix : {".png", ".pdf"}

    Returns
    -------
    list of str
    """
    caches = _check(caches)
    out = Path(os.fspath(outdir))
    out.mkdir(parents=True, exist_ok=True)
    paths = [save_figure(plot_intensity_histograms(caches), out / f"intensity_histograms{suffix}"),
             save_figure(plot_minkowski(caches), out / f"minkowski{suffix}"),
             save_figure(plot_log_spectra(caches, k_to_ell=k_to_ell), out / f"log_power_spectra{suffix}")]
    if len(caches) > 1:
        paths.append(save_figure(plot_ks_pvalues(caches), out / f"ks_pvalues{suffix}"))
    r = caches[0].log_spectra().shape[1]
    ks = list(kvalues) if kvalues is not None else sorted({max(1, r // 8), max(1, r // 3), max(1, r - 2)})
    ls = np.concatenate([c.log_spectra()[:, ks] for c in caches])
    lo, hi = float(np.floor(ls.min())), float(np.ceil(ls.max()))
    paths.append(save_figure(plot_spectrum_histograms(caches, ks, k_to_ell=k_to_ell, range=(lo, max(hi, lo + 1)),
                                                      bins=24), out / f"spectrum_histograms{suffix}"))
    return paths
