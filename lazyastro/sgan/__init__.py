"""Generative deep fields: a Spatial GAN (XDF-GAN) that makes survey images of any size.

Keras 3 and TensorFlow come with the ``lazyastro[gan]`` extra; importing this package is cheap
and needs neither: modules load on first use of a name.

- :func:`build_generator`, :func:`build_discriminator`, :func:`load_model`: the reference
  architecture (configurable) and generator files with their normalisation metadata.
- :func:`preprocess`, :func:`train`: per-band clipping/normalisation and RaSGAN training.
- :func:`receptive_field`: the noise halo a generator needs, computed from its layers.
- :func:`noise_field`, :func:`generate`, :func:`tessellate`: seeded noise and (tiled) generation,
  lazy, seam-free and resumable.
- :func:`preview`, :func:`write_preview`: an RGB look at a mosaic of any size (lazy block means).
"""

from __future__ import annotations

from ..core.lazyimport import lazy_exports

__all__ = [
    "build_generator", "build_discriminator", "rasgan_losses", "load_model", "save_model", "SGANModel",
    "builtin_model_path",
    "preprocess", "train",
    "receptive_field", "noise_field", "generate", "tessellate", "preview", "write_preview",
]

_LAZY = {
    "build_generator": ".model", "build_discriminator": ".model", "rasgan_losses": ".model",
    "load_model": ".model", "save_model": ".model", "SGANModel": ".model", "builtin_model_path": ".model",
    "preprocess": ".preprocessing", "train": ".training",
    "receptive_field": ".receptive", "noise_field": ".noise", "generate": ".generation",
    "preview": ".display", "write_preview": ".display",
    "tessellate": ".tiling",  # modules not named like the functions: importing one would shadow the name
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
