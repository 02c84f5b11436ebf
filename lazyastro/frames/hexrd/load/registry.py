"""Adapter registry: ``format`` name -> adapter class (hexrd ``Registry``).

>>> "array" in Registry.adapter_registry
True
"""

from __future__ import annotations

__all__ = ["Registry"]


class Registry:
    """Registry for image-series adapters, keyed by the adapter's ``format``."""

    adapter_registry: dict = {}

    @classmethod
    def register(cls, acls) -> None:
        """Register an adapter class under ``acls.format`` (the base class itself is skipped)."""
        if acls.__name__ != "ImageSeriesAdapter":
            cls.adapter_registry[acls.format] = acls
