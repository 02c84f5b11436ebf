"""Lazy package exports: public names that import their defining module on first use.

A package ``__init__`` lists its public names and the module each comes from, and gets its
module-level ``__getattr__`` and ``__dir__`` (PEP 562) from :func:`lazy_exports`, so importing
the package imports none of those modules (nor what they need: dask, xarray, TensorFlow, ...)::

    __all__ = ["fit", "run"]
    _LAZY = {"fit": ".pipeline", "run": ".pipeline"}
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    lazy: Mapping[str, str],
    all_names: Iterable[str] = (),
    *,
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package whose public names load lazily.

    On first access, ``name`` in ``lazy`` imports its module, takes the attribute of the same
    name and binds it in the package namespace, so later look-ups are plain attribute reads.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    lazy : mapping of str to str
        Public name -> module defining it: relative to ``package`` (``".stats"``) or absolute
        (``"lazyastro.io.fits"``).
    all_names : iterable of str
        The package's ``__all__`` (listed by ``dir()`` before they are loaded).
    submodules : iterable of str, optional
        Subpackage names that ``package.<name>`` imports on first use (not bound here: the
        import system binds a loaded submodule on its parent itself).

    Returns
    -------
    (callable, callable)
        ``__getattr__(name)`` (raises ``AttributeError`` for an unknown name, as for any
        module) and ``__dir__()``.

    Examples
    --------
    >>> import sys, types
    >>> pkg = types.ModuleType("demo_pkg")
    >>> sys.modules["demo_pkg"] = pkg
    >>> pkg.__getattr__, pkg.__dir__ = lazy_exports("demo_pkg", {"sqrt": "math"}, ["sqrt"])
    >>> "sqrt" in vars(pkg), "sqrt" in dir(pkg)
    (False, True)
    >>> pkg.sqrt(9.0), "sqrt" in vars(pkg)
    (3.0, True)
    >>> pkg.nope
    Traceback (most recent call last):
    ...
    AttributeError: module 'demo_pkg' has no attribute 'nope'
    >>> del sys.modules["demo_pkg"]
    """
    lazy = dict(lazy)
    listed = frozenset(all_names)
    subpackages = tuple(submodules)

    def __getattr__(name: str) -> Any:
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name], package), name)
            setattr(sys.modules[package], name, value)
            return value
        if name in subpackages:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | listed | set(subpackages))

    return __getattr__, __dir__
