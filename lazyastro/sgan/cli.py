"""``lazyastro sgan``: train a Spatial GAN, generate images, tessellate mosaics (thin CLI).

Each group of subcommands lives in its own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["register"]

_COMMAND_MODULES = ("lazyastro.sgan.cli_train", "lazyastro.sgan.cli_generate")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``sgan`` subcommand and its subcommands."""
    p = subparsers.add_parser("sgan", help="Spatial GAN deep fields: train, generate, tessellate",
                              description="Generative deep fields (XDF-GAN): a fully convolutional GAN "
                              "that makes survey images of any size, seam-free and seeded.")
    sub = p.add_subparsers(dest="sgan_command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue  # not built yet
            raise
        mod.register(sub)
    return p
