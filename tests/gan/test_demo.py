"""The GAN step of ``lazyastro demo`` (run directly with a minimal context)."""

from __future__ import annotations

from types import SimpleNamespace

from lazyastro.cli.demo import demo_steps
from lazyastro.gan.demo import statistics_step


class _Table:
    def run(self, label, nbytes, fn):
        return fn()


def test_demo_step_writes_plots(tmp_path):
    assert "gan statistics" in [label for label, _ in demo_steps()]
    paths = statistics_step(SimpleNamespace(out=tmp_path, table=_Table(), seed=3))
    assert len(paths) == 5
    for p in paths:
        assert open(p, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
