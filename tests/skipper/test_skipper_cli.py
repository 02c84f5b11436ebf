import os
import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lazyastro.cli.main import main
from lazyastro.skipper import directory as skipper_job
from lazyastro.skipper import simulate
from lazyastro.skipper.directory import human_key, select_files
from tests.conftest import run_cli


@pytest.fixture
def run_dir(sim_dir, tmp_path):
    src, _ = sim_dir
    for name in ("Img_02.fits", "Img_03.fits"):
        shutil.copy2(src / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def _main(*args):
    return main(["--no-progress", "--scheduler", "sync", "skipper", *map(str, args)])


def test_selection_rules(tmp_path):
    for n in ("Img_10.fits", "Img_2.fits", "Img_1.fits.bak", "xImg_3.fits", "Img_a.fits"):
        (tmp_path / n).write_bytes(b"")
    # legacy regex semantics: anchored at the start only, human sort
    assert select_files(tmp_path, [r"Img_[0-9]+.fits"]) == ["Img_1.fits.bak", "Img_2.fits", "Img_10.fits"]
    assert select_files(tmp_path, ["Img_*.fits"], glob=True) == ["Img_2.fits", "Img_10.fits", "Img_a.fits"]
    assert sorted(["a10", "a9", "a1"], key=human_key) == ["a1", "a9", "a10"]


def test_incremental_and_columns(run_dir):
    assert _main("-d", run_dir) == 0
    out = run_dir / "img_preproc_out.ecsv"
    t = Table.read(out)
    assert list(t["filename"]) == [str(run_dir / "Img_02.fits"), str(run_dir / "Img_03.fits")]
    for col in ("nskips", "aveImgS", "dSdskip", "dSdskip_err", "imgNoise", "skNoise", "skNoise_err",
                "pixVar", "clustVar", "tailRatio", "darkCurrent", "darkCurrent_err",
                "aduConversion", "aduConversion_err", "seed"):
        assert col in t.colnames
    assert np.isnan(t["pixVar"][1]) and t["nskips"][1] == 1  # 1-skip file: not applicable
    before = out.read_bytes()
    # a new file: only it is processed and appended; old rows are kept byte-identical in value
    simulate(run_dir / "Img_10.fits", nrows=6, ncols=8, nskips=5, seed=9)
    assert _main("-d", run_dir) == 0
    t2 = Table.read(out)
    assert len(t2) == 3 and t2["filename"][-1].endswith("Img_10.fits")
    assert Table.read(before.decode(), format="ascii.ecsv")["aveImgS"][0] == t2["aveImgS"][0]
    mtime = out.stat().st_mtime_ns
    assert _main("-d", run_dir) == 0  # nothing to do
    assert out.stat().st_mtime_ns == mtime
    # a changed file (size/mtime) is recomputed and its row replaced
    simulate(run_dir / "Img_10.fits", nrows=6, ncols=8, nskips=7, seed=9)
    assert _main("-d", run_dir) == 0
    t3 = Table.read(out)
    assert len(t3) == 3 and t3["nskips"][-1] == 7
    # -a rewrites with a new seed
    assert _main("-d", run_dir, "-a", "--seed", "5") == 0
    assert set(Table.read(out)["seed"]) == {5}


def test_legacy_text_format(run_dir, capsys):
    assert _main("-d", run_dir, "--format", "legacy", "--variables", "2019", "-o", "out.txt") == 0
    lines = (run_dir / "out.txt").read_text().splitlines()
    assert lines[0].split() == ["filename", "nskips", "aveImgS", "dSdskip", "imgNoise", "skNoise",
                                "pixVar", "clustVar", "tailRatio"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[3].split()[0] == str(run_dir / "Img_03.fits")
    assert "-1 +/- -1" in lines[3]  # dSdskip of a 1-skip image
    simulate(run_dir / "Img_11.fits", nrows=6, ncols=8, nskips=5, seed=9)
    assert _main("-d", run_dir, "--format", "legacy", "-o", "out.txt") == 0
    lines2 = (run_dir / "out.txt").read_text().splitlines()
    assert lines2[:4] == lines and len(lines2) == 5  # appended without a new header
    assert _main("-d", run_dir, "-p", "--format", "csv", "-a") == 0
    printed = capsys.readouterr().out
    assert printed.startswith("filename,nskips,") and printed.count("\n") == 4
    assert not (run_dir / "img_preproc_out.csv").exists()


def test_crash_keeps_old_table(run_dir, monkeypatch):
    assert _main("-d", run_dir, "-f", "Img_02") == 0
    out = run_dir / "img_preproc_out.ecsv"
    before = out.read_bytes()
    simulate(run_dir / "Img_04.fits", nrows=6, ncols=8, nskips=5, seed=4)

    def boom(*a, **k):
        raise RuntimeError("worker died")

    monkeypatch.setattr(skipper_job, "compute_statistics", boom)
    assert _main("-d", run_dir) == 3
    assert out.read_bytes() == before
    monkeypatch.undo()
    import astropy.table

    monkeypatch.setattr(astropy.table.Table, "write", boom)
    assert _main("-d", run_dir) == 3  # crash while writing the new table
    assert out.read_bytes() == before
    assert not [p for p in os.listdir(run_dir) if p.endswith(".partial")]


def test_batches_are_committed(run_dir, monkeypatch):
    simulate(run_dir / "Img_04.fits", nrows=6, ncols=8, nskips=5, seed=4)
    real = skipper_job.compute_statistics
    calls = []

    def second_batch_fails(paths, **kw):
        calls.append(paths)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(paths, **kw)

    monkeypatch.setattr(skipper_job, "compute_statistics", second_batch_fails)
    assert _main("-d", run_dir, "--batch", "2") == 3
    t = Table.read(run_dir / "img_preproc_out.ecsv")
    assert len(t) == 2  # the first batch survived; a rerun only does the rest
    monkeypatch.setattr(skipper_job, "compute_statistics", real)
    assert _main("-d", run_dir, "--batch", "2") == 0
    assert len(Table.read(run_dir / "img_preproc_out.ecsv")) == 3


def test_bad_files_and_dirs(run_dir, tmp_path_factory, capsys):
    empty = tmp_path_factory.mktemp("empty")
    assert _main("-d", empty) == 1
    assert "no files match" in capsys.readouterr().err
    assert _main("-d", run_dir / "missing") == 1
    assert "no such directory" in capsys.readouterr().err
    hdu = fits.PrimaryHDU(np.zeros((3, 10), np.int16))
    hdu.header["NDCMS"] = 3
    hdu.writeto(run_dir / "Img_07.fits")
    (run_dir / "Img_08.fits").write_text("garbage")
    assert _main("-d", run_dir) == 1  # good files are still written
    err = capsys.readouterr().err
    assert "Img_07.fits: NAXIS1 = 10 is not divisible by NDCMS = 3" in err and "Img_08.fits" in err
    assert len(Table.read(run_dir / "img_preproc_out.ecsv")) == 2


def test_recursive_plot_and_subprocess(run_dir, tmp_path):
    sub = run_dir / "night2"
    sub.mkdir()
    simulate(sub / "Img_1.fits", nrows=6, ncols=8, nskips=5, seed=4)
    res = run_cli("skipper", "-d", str(run_dir), "-r", "--plot", str(tmp_path / "plots"), "--scheduler", "threads")
    assert res.returncode == 0, res.stderr
    assert (sub / "img_preproc_out.ecsv").exists() and (run_dir / "img_preproc_out.ecsv").exists()
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert pngs == ["Img_02.png", "Img_03.png", "Img_1.png"]
    assert (tmp_path / "plots" / "Img_02.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_kill_mid_run_then_resume(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    for i in range(6):
        simulate(tmp_path / f"Img_{i}.fits", nrows=40, ncols=50, nskips=400, seed=i)
    out = tmp_path / "img_preproc_out.ecsv"
    cmd = [sys.executable, "-m", "lazyastro", "--no-progress", "--scheduler", "sync", "skipper",
           "-d", str(tmp_path), "--batch", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    first = Table.read(out)  # the table is complete and readable after kill -9
    assert 1 <= len(first) < 6
    assert subprocess.run(cmd, check=False).returncode == 0
    final = Table.read(out)
    assert sorted(final["filename"]) == sorted(str(tmp_path / f"Img_{i}.fits") for i in range(6))
    assert list(final["filename"][: len(first)]) == list(first["filename"])  # old rows kept
