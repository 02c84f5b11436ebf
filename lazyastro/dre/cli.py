"""``lazyastro dre``: source extraction, PSF, cutouts, model cubes and the chi^2 fit (thin CLI).

Each group of subcommands lives in its own module with a ``register(subparsers)`` function; the
legacy command names (``sex_dre``, ``psfex_dre``, ``make_cuts``, ``dre``) are aliases.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

_COMMAND_MODULES = ("lazyastro.dre.cli_models", "lazyastro.dre.cli_extract", "lazyastro.dre.cli_fit")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``dre`` subcommand and its subcommands."""
    p = subparsers.add_parser("dre", help="DRE galaxy fitting: sextract, psfex, cuts, models, fit, run",
                              description="Fit every object of a tile against a cube of PSF-convolved "
                              "Sérsic models (the DRE pipeline).")
    sub = p.add_subparsers(dest="dre_command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not built yet
            raise
        mod.register(sub)
    return p
