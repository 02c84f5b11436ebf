"""Test shim package ``hexrd.core`` (see ``hexrd/__init__.py``)."""
