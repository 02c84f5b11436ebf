"""The public names of lazyastro.sgan are functions even after every submodule was imported."""

import importlib
import pkgutil

import lazyastro.sgan as sgan


def test_public_names_are_not_hidden_by_submodules():
    for mod in pkgutil.iter_modules(sgan.__path__):
        importlib.import_module(f"lazyastro.sgan.{mod.name}")
    for name in sgan.__all__:
        value = getattr(sgan, name)
        assert not isinstance(value, type(sgan)), f"lazyastro.sgan.{name} is a module"
        assert callable(value), name
