"""``lazyastro sgan``: train a Spatial GAN, generate images, tessellate mosaics (thin CLI).

Each group of subcommands lives in its own module with a ``register(subparsers)`` function.
"""

from __future__ import annotations

import argparse

from ..cli.options import add_command_group

__all__ = ["register"]

_COMMAND_MODULES = ("lazyastro.sgan.cli_train", "lazyastro.sgan.cli_generate")


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``sgan`` subcommand and its subcommands."""
    return add_command_group(
        subparsers, "sgan", help="Spatial GAN deep fields: train, generate, tessellate",
        description="Generative deep fields (XDF-GAN): a fully convolutional GAN that makes survey images of "
        "any size, seam-free and seeded.", dest="sgan_command", modules=_COMMAND_MODULES)
