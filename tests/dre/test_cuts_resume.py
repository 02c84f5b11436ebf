"""make_cuts meets "no data lost": same bytes on rerun, resume after ``kill -9`` without recutting
finished blocks, never a partial file at the final path, nothing left behind by bad data."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import lazyastro.dre.cuts as C
from lazyastro.cli.main import main
from lazyastro.core.atomic import partial_path
from lazyastro.core.errors import FormatError
from lazyastro.core.stream import record_path
from tests.killing import kill_after_records

pytest.importorskip("h5py")


def _counting(monkeypatch) -> list:
    """Log the first key of every block the cut kernel computes in this process."""
    calls = []
    cut = C._cut_block

    def logged(rows, **kw):
        calls.append(C.object_key(rows["ext"][0], rows["number"][0]) if len(rows) else "")
        return cut(rows, **kw)

    monkeypatch.setattr(C, "_cut_block", logged)
    return calls


def test_reruns_give_the_same_bytes_and_skip_a_finished_file(dre_tile, dre_sextracted, dre_cuts, tmp_path,
                                                               monkeypatch):
    calls = _counting(monkeypatch)
    a = C.make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "a.h5", objects_per_block=3, progress=False)
    n_blocks = len(calls)
    time.sleep(0.01)  # HDF5 would stamp times otherwise; here nothing may depend on when a file was made
    b = C.make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "b.h5", objects_per_block=3, progress=False)
    raw = open(a, "rb").read()
    assert raw == open(b, "rb").read() == open(dre_cuts, "rb").read()  # any block size, same bytes
    assert len(calls) == 2 * n_blocks and n_blocks > 3
    # a finished file of the same inputs and options is kept as it is: nothing is cut again
    mtime = os.stat(a).st_mtime_ns
    assert C.make_cuts(dre_tile["tile"], dre_sextracted, a, objects_per_block=3, progress=False) == str(a)
    assert len(calls) == 2 * n_blocks and os.stat(a).st_mtime_ns == mtime
    # other options: cut again and replaced
    C.make_cuts(dre_tile["tile"], dre_sextracted, a, compression="low", objects_per_block=3, progress=False)
    assert len(calls) == 3 * n_blocks and open(a, "rb").read() != raw
    attrs = C.open_cuts(a).attrs
    assert attrs["compression"] == "low" and attrs["dre_token"] != C.open_cuts(b).attrs["dre_token"]
    assert not list(tmp_path.glob("*.partial*"))


def test_bad_data_mid_run_leaves_nothing(dre_tile, dre_sextracted, tmp_path, monkeypatch):
    cut = C._cut_block
    seen = []

    def failing(rows, **kw):
        seen.append(1)
        if len(seen) == 3:
            raise FormatError("cannot read cut of object 01_0003: truncated", kw["paths"]["obj"])
        return cut(rows, **kw)

    monkeypatch.setattr(C, "_cut_block", failing)
    out = tmp_path / "x.h5"
    with pytest.raises(FormatError, match="truncated"):
        C.make_cuts(dre_tile["tile"], dre_sextracted, out, objects_per_block=2, scheduler="sync", progress=False)
    assert not out.exists() and not partial_path(out).exists() and not record_path(out).exists()


KILLED = textwrap.dedent(
    """
    import os, sys, time
    import lazyastro.dre.cuts as C
    from lazyastro.cli.main import main

    cut = C._cut_block

    def slow(rows, **kw):
        if os.environ.get("SLOW"):
            time.sleep(0.25)
        return cut(rows, **kw)

    C._cut_block = slow
    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    """
)


def test_cli_resumes_after_kill_9_without_recutting_blocks(dre_tile, dre_sextracted, tmp_path, monkeypatch):
    work = dre_tile["workdir"]
    script = tmp_path / "cuts.py"
    script.write_text(KILLED)

    def args(out):
        return ["--scheduler", "sync", "--no-progress", "dre", "cuts", "-i", str(work / "Tiles"), "-s",
                str(work / "Sextracted"), "-o", str(tmp_path / out), "--objects-per-block", "1"]

    out = tmp_path / "kill" / "tile00_cuts.h5"
    # an older, complete output of other options is in place: it must stay whole until replaced
    assert main([*args("kill"), "--compression", "low"]) == 0
    old = out.read_bytes()
    proc = subprocess.Popen([sys.executable, str(script), *args("kill")], env=dict(os.environ, SLOW="1"),
                            stdout=subprocess.DEVNULL)
    assert main(args("ref")) == 0  # the uninterrupted reference, meanwhile, in this process
    ref = (tmp_path / "ref" / "tile00_cuts.h5").read_bytes()
    n_blocks = C.open_cuts(tmp_path / "ref" / "tile00_cuts.h5").attrs["n_selected"]
    record = record_path(out)
    done = kill_after_records(proc, record, 4)
    assert 4 <= done < n_blocks, "the cut job was not interrupted mid-way"
    # nothing at the final path looks complete: the old file is untouched, the new one is partial
    assert out.read_bytes() == old and partial_path(out).exists()
    assert len(list((record / "blocks").glob("*.h5"))) >= done
    # rerun the same command (in this process, logging the blocks it cuts)
    calls = _counting(monkeypatch)
    assert main(args("kill")) == 0
    assert len(calls) == n_blocks - done  # the finished blocks were not cut again
    assert out.read_bytes() == ref
    assert not partial_path(out).exists() and not record.exists()
    ds = C.open_cuts(out)
    assert ds.sizes["object"] == ds.attrs["n_written"] > 0
    np.testing.assert_array_equal(ds.obj.values, C.open_cuts(tmp_path / "ref" / "tile00_cuts.h5").obj.values)


def test_killed_first_run_leaves_no_file_at_the_final_path(dre_tile, dre_sextracted, tmp_path):
    work = dre_tile["workdir"]
    script = tmp_path / "cuts.py"
    script.write_text(KILLED)
    out = tmp_path / "Cuts" / "tile00_cuts.h5"
    proc = subprocess.Popen([sys.executable, str(script), "--scheduler", "sync", "--no-progress", "dre", "cuts",
                             "-i", str(work / "Tiles"), "-s", str(work / "Sextracted"), "-o", str(out.parent),
                             "--objects-per-block", "1"], env=dict(os.environ, SLOW="1"), stdout=subprocess.DEVNULL)
    record = record_path(out)
    assert kill_after_records(proc, record, 2) >= 2
    assert not out.exists() and partial_path(out).exists()
    with pytest.raises(FormatError, match="partial: cannot read cuts file"):  # and no cuts file either
        C.open_cuts(partial_path(out))
