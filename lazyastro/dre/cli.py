"""``lazyastro dre``: source extraction, PSF, cutouts, model cubes and the chi^2 fit (thin CLI).

Each group of subcommands lives in its own module with a ``register(subparsers)`` function; the
legacy command names (``sex_dre``, ``psfex_dre``, ``make_cuts``, ``dre``) are aliases.
"""

from __future__ import annotations

import argparse

from ..cli.options import add_command_group

__all__ = ["register"]

_COMMAND_MODULES = ("lazyastro.dre.cli_models", "lazyastro.dre.cli_extract", "lazyastro.dre.cli_fit")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``dre`` subcommand and its subcommands."""
    return add_command_group(
        subparsers, "dre", help="DRE galaxy fitting: sextract, psfex, cuts, models, fit, run",
        description="Fit every object of a tile against a cube of PSF-convolved Sérsic models (the DRE pipeline).",
        dest="dre_command", modules=_COMMAND_MODULES)
