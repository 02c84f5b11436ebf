"""``argparse`` ``type=`` factories for numeric options, built on :mod:`lazyastro.core.validate`.

A value is refused as typed, with the option's name, by argparse itself::

    p.add_argument("--nframes", type=int_option(min=0), default=0)
    # lazyastro frames convert a.npz b.zarr --nframes -3
    # -> "... error: argument --nframes: must be >= 0, got -3"
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..core.validate import float_problem, int_problem, parse_number

__all__ = ["int_option", "float_option"]


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
