"""Run-time options: memory budget and default scheduler.

Options come, in order of precedence, from :func:`set_options` (a context
manager), the environment (``LAZYASTRO_MEMORY_BUDGET``, ``LAZYASTRO_SCHEDULER``,
``LAZYASTRO_PROGRESS``) and built-in defaults.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from typing import Any

from .errors import ParameterError

__all__ = ["DEFAULT_MEMORY_BUDGET", "parse_bytes", "format_bytes", "memory_budget", "get_option", "set_options"]

DEFAULT_MEMORY_BUDGET = 512 * 2**20
_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12, "tb": 10**12,
    "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30, "gib": 2**30, "ti": 2**40, "tib": 2**40,
}
_options: dict[str, Any] = {}


def parse_bytes(value: int | float | str) -> int:
    """Parse ``"512MiB"``, ``"2GB"``, ``"1e9"`` or a number into a byte count.

    >>> parse_bytes("512MiB")
    536870912
    """
    if isinstance(value, int | float):
        n = int(value)
    else:
        m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(value))
        if not m or m.group(2).lower() not in _UNITS:
            raise ParameterError(f"cannot parse byte size {value!r} (use e.g. '512MiB' or '2GB')")
        try:
            n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
        except ValueError:
            raise ParameterError(f"cannot parse byte size {value!r}") from None
    if n <= 0:
        raise ParameterError(f"byte size must be positive, got {value!r}")
    return n


def format_bytes(n: float) -> str:
    """Human-readable binary size, e.g. ``"1.50 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def get_option(name: str) -> Any:
    """Current value of ``memory_budget``, ``scheduler`` or ``progress``."""
    if name in _options and _options[name] is not None:
        return _options[name]
    env = os.environ.get(f"LAZYASTRO_{name.upper()}")
    if name == "memory_budget":
        return parse_bytes(env) if env else DEFAULT_MEMORY_BUDGET
    if name == "scheduler":
        return env or "threads"
    if name == "progress":
        return env.lower() not in ("0", "false", "no", "off") if env else True
    raise ParameterError(f"unknown option {name!r}")


def memory_budget() -> int:
    """Memory budget in bytes that chunk sizes are derived from (default 512 MiB)."""
    return int(get_option("memory_budget"))


@contextlib.contextmanager
def set_options(**kwargs: Any) -> Iterator[None]:
    """Temporarily set options::

        with lazyastro.set_options(memory_budget="256MiB", scheduler="sync"):
            ...
    """
    unknown = set(kwargs) - {"memory_budget", "scheduler", "progress"}
    if unknown:
        raise ParameterError(f"unknown option(s) {sorted(unknown)}")
    if kwargs.get("memory_budget") is not None:
        kwargs["memory_budget"] = parse_bytes(kwargs["memory_budget"])
    old = dict(_options)
    _options.update(kwargs)
    try:
        yield
    finally:
        _options.clear()
        _options.update(old)
