"""The GAN notebook runs top to bottom (its code cells, in order, in one namespace)."""

import json
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "gan_statistics.ipynb"


def test_gan_notebook_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    ns: dict = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name}:{cell['id']}", "exec"), ns)
    assert len(ns["paths"]) == 5 and all(Path(p).exists() for p in ns["paths"])
    assert ns["frac_psd"] > 0.5  # the generated set has another spectrum: the tests see it
