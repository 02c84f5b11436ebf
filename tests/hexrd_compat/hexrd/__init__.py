"""Test shim: ``hexrd.imageseries`` and ``hexrd.core.imageseries`` *are* ``lazyastro.frames.hexrd``.

Only for running hexrd's own imageseries tests against the facade
(``tests/frames/test_hexrd_compat.py``). Each facade module is registered in
``sys.modules`` under hexrd's names, so ``patch("hexrd.core.imageseries.stats.X")``
patches the facade module itself and there is one registry, not two copies.
"""

import importlib
import sys

import lazyastro.frames.hexrd as _facade

_SUBMODULES = (
    "baseclass", "imageseriesabc", "errors", "stats", "process", "omega", "save",
    "load", "load.registry", "load.array", "load.hdf5", "load.framecache", "load.function",
    "load.imagefiles", "load.metadata", "load.rawimage",
)

for _prefix in ("hexrd.imageseries", "hexrd.core.imageseries"):
    sys.modules[_prefix] = _facade
    for _sub in _SUBMODULES:
        sys.modules[f"{_prefix}.{_sub}"] = importlib.import_module(f"lazyastro.frames.hexrd.{_sub}")

from . import core  # noqa: E402

core.imageseries = _facade
imageseries = _facade
