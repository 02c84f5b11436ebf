"""One parser for numeric options, shared by the Python API and the command line.

The API calls :func:`check_int` / :func:`check_float` / :func:`check_choice`,
which raise :class:`~lazyastro.core.errors.ParameterError` with a message naming
the Python argument (``nframes must be >= 0, got -3``); the CLI builds its
``argparse`` ``type=`` callables from the same rules
(:mod:`lazyastro.cli.options`), so an option is refused as typed, with the
option's name (``argument --nframes: must be >= 0, got -3``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

from .errors import ParameterError

__all__ = ["check_int", "check_float", "check_choice", "int_problem", "float_problem", "parse_number"]


def _bounds(min: float | None, max: float | None, *, min_open: bool = False, max_open: bool = False) -> str:
    lo = None if min is None else (">" if min_open else ">=") + f" {min}"
    hi = None if max is None else ("<" if max_open else "<=") + f" {max}"
    if lo and hi:
        return f"in {'(' if min_open else '['}{min}, {max}{')' if max_open else ']'}"
    return lo or hi or ""


def int_problem(value: Any, *, min: int | None = None, max: int | None = None) -> tuple[int | None, str | None]:
    """``(int_value, None)`` if ``value`` is an acceptable integer, else ``(None, problem)``.

    Integral floats (``3.0``) and NumPy integers are accepted; booleans,
    fractional numbers and non-numbers are not.

    Parameters
    ----------
    value : Any
        The value to check.
    min, max : int, optional
        Inclusive bounds.

    Returns
    -------
    tuple
        The integer and ``None``, or ``None`` and a phrase such as ``"must be >= 0, got -3"``.

    Examples
    --------
    >>> int_problem(-3, min=0)
    (None, 'must be >= 0, got -3')
    >>> int_problem(4.0, min=0)
    (4, None)
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"must be an integer, got {value!r}"
    if isinstance(value, numbers.Integral):
        number = int(value)
    else:
        fv = float(value)
        if not math.isfinite(fv) or not fv.is_integer():
            return None, f"must be an integer, got {value!r}"
        number = int(fv)
    if (min is not None and number < min) or (max is not None and number > max):
        return None, f"must be {_bounds(min, max)}, got {number}"
    return number, None


def float_problem(
    value: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_nan: bool = False,
    allow_inf: bool = False,
) -> tuple[float | None, str | None]:
    """``(float_value, None)`` if ``value`` is an acceptable number, else ``(None, problem)``.

    Parameters
    ----------
    value : Any
        The value to check.
    min, max : float, optional
        Bounds, inclusive unless ``min_open`` / ``max_open``.
    min_open, max_open : bool
        Make the bound exclusive.
    allow_nan, allow_inf : bool
        Accept NaN / infinities (refused by default).

    Returns
    -------
    tuple
        The float and ``None``, or ``None`` and a phrase such as ``"must be finite, got nan"``.

    Examples
    --------
    >>> float_problem(float("nan"))
    (None, 'must be a finite number, got nan')
    >>> float_problem(0, min=0, min_open=True)
    (None, 'must be > 0, got 0.0')
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None, f"must be a number, got {value!r}"
    number = float(value)
    if math.isnan(number) and not allow_nan:
        return None, f"must be a finite number, got {number}"
    if math.isinf(number) and not allow_inf:
        return None, f"must be a finite number, got {number}"
    if not math.isnan(number):
        if min is not None and (number < min or (min_open and number == min)):
            return None, f"must be {_bounds(min, max, min_open=min_open, max_open=max_open)}, got {number}"
        if max is not None and (number > max or (max_open and number == max)):
            return None, f"must be {_bounds(min, max, min_open=min_open, max_open=max_open)}, got {number}"
    return number, None


def parse_number(text: str, *, integer: bool) -> tuple[float | int | None, str | None]:
    """Parse a command-line word as an integer or float: ``(value, None)`` or ``(None, problem)``.

    Parameters
    ----------
    text : str
        The word as typed.
    integer : bool
        Parse an integer (``"3"``; ``"3.0"`` and ``"1e3"`` are accepted when integral).

    Returns
    -------
    tuple
        The number and ``None``, or ``None`` and a phrase.

    Examples
    --------
    >>> parse_number("12", integer=True)
    (12, None)
    >>> parse_number("x", integer=False)
    (None, "must be a number, got 'x'")
    """
    word = str(text).strip()
    try:
        return (int(word), None) if integer else (float(word), None)
    except ValueError:
        pass
    try:
        number = float(word)
    except ValueError:
        return None, f"must be {'an integer' if integer else 'a number'}, got {text!r}"
    return number, None  # e.g. "1e3" for an integer: the range check decides


def check_int(value: Any, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer within ``[min, max]``.

    Parameters
    ----------
    value : Any
        The argument value.
    name : str
        The argument's name, for the message.
    min, max : int, optional
        Inclusive bounds.

    Returns
    -------
    int
        The value.

    Raises
    ------
    ParameterError
        If ``value`` is not an integer (booleans are not) or is out of range.

    Examples
    --------
    >>> check_int(4, "nframes", min=0)
    4
    >>> check_int(-3, "nframes", min=0)
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.ParameterError: nframes must be >= 0, got -3
    """
    number, problem = int_problem(value, min=min, max=max)
    if problem:
        raise ParameterError(f"{name} {problem}")
    return number  # type: ignore[return-value]


def check_float(
    value: Any,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_open: bool = False,
    max_open: bool = False,
    allow_nan: bool = False,
    allow_inf: bool = False,
) -> float:
    """Return ``value`` as a ``float`` if it is a number within the bounds.

    Parameters
    ----------
    value : Any
        The argument value.
    name : str
        The argument's name, for the message.
    min, max : float, optional
        Bounds, inclusive unless ``min_open`` / ``max_open``.
    min_open, max_open : bool
        Make the bound exclusive.
    allow_nan, allow_inf : bool
        Accept NaN / infinities (refused by default).

    Returns
    -------
    float
        The value.

    Raises
    ------
    ParameterError
        If ``value`` is not a number or is out of range.

    Examples
    --------
    >>> check_float(99.5, "q", min=0, max=100)
    99.5
    >>> check_float(101, "q", min=0, max=100)
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.ParameterError: q must be in [0, 100], got 101.0
    """
    number, problem = float_problem(
        value, min=min, max=max, min_open=min_open, max_open=max_open, allow_nan=allow_nan, allow_inf=allow_inf
    )
    if problem:
        raise ParameterError(f"{name} {problem}")
    return number  # type: ignore[return-value]


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Parameters
    ----------
    value : Any
        The argument value.
    name : str
        The argument's name, for the message.
    choices : iterable
        The allowed values.

    Returns
    -------
    Any
        The value.

    Raises
    ------
    ParameterError
        If ``value`` is not one of ``choices``.

    Examples
    --------
    >>> check_choice("npz", "style", ("npz", "fch5"))
    'npz'
    >>> check_choice("zip", "style", ("npz", "fch5"))
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.ParameterError: style must be one of 'npz', 'fch5', got 'zip'
    """
    options = tuple(choices)
    if value not in options:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value
