"""DRE: elliptical-galaxy fitting against a cube of PSF-convolved Sérsic models.

Pipeline: image -> source extraction -> PSF -> cutouts -> chi^2 fit -> summary, chi cubes, mosaics.
``sep`` and ``photutils`` come with the ``lazyastro[dre]`` extra (the embedded fallbacks for
SExtractor and PSFEx). Importing this package is cheap: modules load on first use of a name. No module shares a name
with a function (``convolution`` holds :func:`convolve`, ``extraction`` :func:`sextract`,
``chisquare`` :func:`chi2`, ``bestfit`` :func:`parameters`), so importing a module never hides a function.
"""

from __future__ import annotations

from ..core.lazyimport import lazy_exports

__all__ = [
    "make_models", "open_models", "write_models", "default_grid", "default_models",
    "convolve",
    "read_psf", "run_psfex", "empirical_psf",
    "sextract",
    "make_cuts", "open_cuts",
    "simulate_field",
    "chi2", "parameters",
    "fit", "run",
]

_LAZY = {
    "make_models": ".models", "open_models": ".models", "write_models": ".models", "default_grid": ".models",
    "default_models": ".models",
    "convolve": ".convolution",
    "read_psf": ".psf", "run_psfex": ".psf", "empirical_psf": ".psf",
    "sextract": ".extraction",
    "make_cuts": ".cuts", "open_cuts": ".cuts",
    "simulate_field": ".simulate",
    "chi2": ".chisquare", "parameters": ".bestfit",
    "fit": ".pipeline", "run": ".pipeline",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
