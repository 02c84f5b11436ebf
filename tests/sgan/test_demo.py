"""The sgan step of ``lazyastro demo`` (small size, built-in model)."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import numpy as np
import pytest

from lazyastro.cli.demo import StepTable, demo_steps


def test_the_step_is_collected_by_lazyastro_demo():
    assert "sgan mosaic" in [label for label, _ in demo_steps()]


def test_small_demo_step_writes_a_mosaic_and_its_statistics(tmp_path, capsys):
    import lazyastro
    from lazyastro.sgan.demo import mosaic_size, mosaic_step
    from lazyastro.sgan.model import builtin_model_path

    if not builtin_model_path().exists():
        pytest.skip("built-in model not shipped in this checkout")
    table = StepTable()
    ctx = SimpleNamespace(out=tmp_path, seed=0, table=table, args=argparse.Namespace(size="small"))
    outputs = mosaic_step(ctx)
    side = mosaic_size("small")
    m = lazyastro.open_zarr(outputs[0])
    assert m.dims == ("band", "y", "x") and m.shape[1:] == (side, side)
    assert np.isfinite(m.values).all() and float(m.values.std()) > 0
    assert len(table.rows) == 2 and all(r[1] > 0 and r[3] > 0 for r in table.rows)
    assert "PSD peak" in capsys.readouterr().err
    from PIL import Image

    assert outputs[1].endswith("mosaic.png") and np.asarray(Image.open(outputs[1])).shape == (side, side, 3)


def test_the_step_skips_cleanly_without_keras(tmp_path, capsys, monkeypatch):
    from lazyastro.sgan import demo, tiling

    def needs_keras(*a, **k):
        raise ModuleNotFoundError("No module named 'keras'", name="keras")

    monkeypatch.setattr(tiling, "tessellate", needs_keras)
    ctx = SimpleNamespace(out=tmp_path, seed=0, table=StepTable(), args=argparse.Namespace(size="small"))
    assert demo.mosaic_step(ctx) == [] and "skipped" in capsys.readouterr().err
