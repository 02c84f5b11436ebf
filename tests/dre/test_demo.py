"""The DRE step of ``lazyastro demo`` (run directly with a minimal context)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lazyastro.cli.demo import demo_steps


class _Table:
    def run(self, label, nbytes, fn):
        return fn()


def test_demo_step_runs_the_pipeline(tmp_path, capsys):
    pytest.importorskip("sep")
    from lazyastro.dre.demo import pipeline_step

    assert "dre pipeline" in [label for label, _ in demo_steps()]
    paths = pipeline_step(SimpleNamespace(out=tmp_path, table=_Table(), seed=2))
    assert paths[0].endswith("Summary/tile00_dre.fits")
    assert len(paths) == 3
    for p in paths[1:]:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert "simulated galaxies fitted" in capsys.readouterr().err
