"""The DRE notebook runs top to bottom (its code cells, in order, in one namespace)."""

import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "dre.ipynb"


def test_dre_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("sep")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    ns: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), ns)
    import matplotlib.pyplot as plt

    plt.close("all")
    assert len(ns["mosaics"]) == 3 and all(Path(p).exists() for p in ns["mosaics"])
    assert ns["rec"]["n"] >= 8 and ns["rec"]["exact"] >= 0.75, ns["rec"]
