"""``argparse`` helpers: ``type=`` factories for numeric options, built on
:mod:`lazyastro.core.validate`, and :func:`add_command_group` for a task package's subcommands.

A value is refused as typed, with the option's name, by argparse itself::

    p.add_argument("--nframes", type=int_option(min=0), default=0)
    # lazyastro frames convert a.npz b.zarr --nframes -3
    # -> "... error: argument --nframes: must be >= 0, got -3"
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterable

from ..core.validate import float_problem, int_problem, parse_number

__all__ = ["int_option", "float_option", "add_command_group"]


def int_option(*, min: int | None = None, max: int | None = None) -> Callable[[str], int]:
    """An ``argparse`` ``type=`` that parses an integer within ``[min, max]``.

    Parameters
    ----------
    min, max : int, optional
        Inclusive bounds.

    Returns
    -------
    callable
        ``str -> int``; raises ``argparse.ArgumentTypeError`` with the reason.

    Examples
    --------
    >>> int_option(min=0)("12")
    12
    >>> int_option(min=0)("-3")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be >= 0, got -3
    """

    def parse(text: str) -> int:
        value, problem = parse_number(text, integer=True)
        if problem is None:
            value, problem = int_problem(value, min=min, max=max)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value  # type: ignore[return-value]

    parse.__name__ = "integer"
    return parse


def float_option(
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_nan: bool = False,
    allow_inf: bool = False,
) -> Callable[[str], float]:
    """An ``argparse`` ``type=`` that parses a number within the bounds (finite by default).

    Parameters
    ----------
    min, max : float, optional
        Bounds, inclusive unless ``min_open`` / ``max_open``.
    min_open, max_open : bool
        Make the bound exclusive.
    allow_nan, allow_inf : bool
        Accept ``nan`` / ``inf``.

    Returns
    -------
    callable
        ``str -> float``; raises ``argparse.ArgumentTypeError`` with the reason.

    Examples
    --------
    >>> float_option()("20")
    20.0
    >>> float_option()("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number, got nan
    """

    def parse(text: str) -> float:
        value, problem = parse_number(text, integer=False)
        if problem is None:
            value, problem = float_problem(value, min=min, max=max, min_open=min_open, max_open=max_open,
                                           allow_nan=allow_nan, allow_inf=allow_inf)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value  # type: ignore[return-value]

    parse.__name__ = "number"
    return parse


def add_command_group(subparsers, name: str, *, help: str, description: str, dest: str,  # noqa: A002
                      modules: Iterable[str]) -> argparse.ArgumentParser:
    """Add the subcommand ``name`` whose own subcommands come from ``modules``.

    Each module is imported and its ``register(subparsers)`` adds its subcommands, in the
    order given (the order of ``name --help``). A module that does not exist is an error.

    Parameters
    ----------
    subparsers
        What ``ArgumentParser.add_subparsers()`` returned.
    name : str
        The subcommand (``"dre"``).
    help, description : str
        Its one-line help (in the parent's list) and the description of ``name --help``.
    dest : str
        Where the chosen sub-subcommand is stored (``"dre_command"``); one is required.
    modules : iterable of str
        Absolute names of the modules defining ``register(subparsers)``.

    Returns
    -------
    argparse.ArgumentParser
        The parser of ``name``.

    Raises
    ------
    ModuleNotFoundError
        A module of ``modules`` does not exist.

    Examples
    --------
    >>> import argparse
    >>> top = argparse.ArgumentParser(prog="lazyastro")
    >>> p = add_command_group(top.add_subparsers(dest="command"), "sgan", help="Spatial GAN",
    ...                       description="Spatial GAN deep fields.", dest="sgan_command",
    ...                       modules=["lazyastro.sgan.cli_train"])
    >>> top.parse_args(["sgan", "preprocess", "field.png", "cube.zarr"]).sgan_command
    'preprocess'
    """
    parser = subparsers.add_parser(name, help=help, description=description)
    sub = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)
    for module in modules:
        importlib.import_module(module).register(sub)
    return parser
