"""GAN image-set statistics: power spectra, log-intensity histograms, Minkowski functionals.

Importing this package is cheap: kernels, graphs, I/O and plots load on first use of a name.
A function given a 2-D array computes at once (numpy or CuPy); given a DataArray
``(image, y, x)`` it returns a lazy DataArray. Image generation from a Keras generator
(:func:`generate_images`, :func:`gan_histograms`) needs the ``lazyastro[gan]`` extra; nothing
else here imports Keras or TensorFlow.

>>> import numpy as np
>>> from lazyastro import gan
>>> gan.minkowski(np.eye(3), [0.5]).shape
(3, 1)
"""

from __future__ import annotations

from ..core.lazyimport import lazy_exports

__all__ = [
    "power_spectrum", "power_spectrum_2d", "intensity_histogram", "minkowski", "wavenumbers",
    "k_to_ell", "log_normalise", "denormalise", "denormalise_log10", "Histogram",
    "open_imageset", "write_imageset", "denormprep", "split_at", "odd_even", "ImageSetFormat",
    "StatCache", "compute_statistics", "aggregate", "ks_tests",
    "load_generator", "generate_images", "gan_histograms", "open_gan_histograms", "latent_noise",
]

_LAZY = {
    "power_spectrum": ".stats", "intensity_histogram": ".stats", "minkowski": ".stats",
    "power_spectrum_2d": ".kernels", "wavenumbers": ".kernels", "k_to_ell": ".kernels",
    "log_normalise": ".kernels", "denormalise": ".kernels", "denormalise_log10": ".kernels",
    "Histogram": ".kernels",
    "open_imageset": ".imageset", "write_imageset": ".imageset", "denormprep": ".imageset",
    "split_at": ".imageset", "odd_even": ".imageset", "ImageSetFormat": ".formats",
    "StatCache": ".cache", "compute_statistics": ".cache", "aggregate": ".cache",
    "ks_tests": ".cache",
    "load_generator": ".generate", "generate_images": ".generate", "gan_histograms": ".generate",
    "open_gan_histograms": ".generate", "latent_noise": ".generate",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
