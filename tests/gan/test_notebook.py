"""The GAN notebook runs top to bottom (its code cells, in order, in one namespace)."""

import importlib.util
import json
import sys
from pathlib import Path

import h5py
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "gan_statistics.ipynb"
# Keras' own model.save converts TF tensors through a deprecated __array__ (not lazyastro code)
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _run(cells, ns=None) -> dict:
    ns = {} if ns is None else ns
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), ns)
    return ns


def test_gan_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = _run(json.loads(NOTEBOOK.read_text())["cells"])
    assert len(ns["paths"]) == 5 and all(Path(p).exists() for p in ns["paths"])
    assert ns["frac_psd"] > 0.5  # the generated set has another spectrum: the tests see it
    if importlib.util.find_spec("keras") is not None:  # the set came from the generator built in the notebook
        assert (tmp_path / "generator.keras").exists()
        with h5py.File(tmp_path / "generated.h5") as f:
            assert int(f.attrs["seed"]) == 2 and f.attrs["generator"] == "generator.keras"


def test_gan_notebook_without_keras(tmp_path, monkeypatch, capsys):
    """Without Keras the generated set is simulated, with a note saying so."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras -> ImportError
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c.get("id") in ("c1", "c3")]
    ns = _run(cells)
    assert "Keras is not installed" in capsys.readouterr().out
    assert ns["generated"].shape == (24, 64, 64) and not (tmp_path / "generator.keras").exists()
