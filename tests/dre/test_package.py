"""The public names of lazyastro.dre are functions even after every submodule was imported."""

import importlib
import pkgutil

import lazyastro.dre as dre


def test_public_names_are_not_hidden_by_submodules():
    for mod in pkgutil.iter_modules(dre.__path__):
        importlib.import_module(f"lazyastro.dre.{mod.name}")
    for name in dre.__all__:
        value = getattr(dre, name)
        assert not isinstance(value, type(dre)), f"lazyastro.dre.{name} is a module"
        assert callable(value), name
