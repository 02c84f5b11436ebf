"""``lazyastro gan`` commands and the comparison plots."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from lazyastro.cli.main import main
from lazyastro.gan import cache as C
from lazyastro.gan import imageset as I
from lazyastro.gan import plot as P
from lazyastro.gan.simulate import simulate_set


@pytest.fixture
def sets(tmp_path):
    I.write_imageset(simulate_set(12, 32, seed=1), tmp_path / "real.h5", progress=False)
    I.write_imageset(simulate_set(12, 32, seed=2, slope=-2.2), tmp_path / "fake.h5", progress=False)
    return tmp_path


def test_cli_workflow(sets, capsys):
    t = sets
    assert main(["--no-progress", "gan", "denormprep", str(t / "real.h5")]) == 0
    assert main(["gan", "denormprep", str(t / "real.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "denormprep ran before" in err and str(t / "real.h5") in err
    with h5py.File(t / "real.h5") as f:
        ln = ",".join(str(v) for v in f["lognorminfo"][()])
    assert main(["--no-progress", "gan", "stats", str(t / "real.h5"), str(t / "rc.h5"), "--batch-size", "4"]) == 0
    assert main(["--no-progress", "gan", "stats", str(t / "fake.h5"), str(t / "fc.h5"), "--batch-size", "4",
                 f"--lognorminfo={ln}"]) == 0
    assert main(["gan", "stats", str(t / "real.h5"), str(t / "rc.h5"), "--batch-size", "5"]) == 1
    assert "batch_size = 4, this run has 5" in capsys.readouterr().err
    assert main(["gan", "stats", str(t / "fake.h5"), str(t / "x.h5")]) == 1  # no lognorminfo
    assert "lognorminfo not found" in capsys.readouterr().err
    assert main(["--no-progress", "gan", "split-at", str(t / "real.h5"), "5", str(t / "a.h5"), str(t / "b.h5")]) == 0
    assert I.open_imageset(t / "b.h5").shape[0] == 6
    assert main(["--no-progress", "gan", "odd-even", str(t / "real.h5"), str(t / "e.h5"), str(t / "o.h5")]) == 0
    assert I.open_imageset(t / "e.h5").attrs["lognorminfo"] == I.open_imageset(t / "real.h5").attrs["lognorminfo"]
    assert main(["gan", "plot", str(t / "rc.h5"), str(t / "fc.h5"), "--out", str(t / "plots"),
                 "--names", "real,generated", "--k", "2,5,12"]) == 0
    pngs = sorted(p.name for p in (t / "plots").glob("*.png"))
    assert pngs == ["intensity_histograms.png", "ks_pvalues.png", "log_power_spectra.png", "minkowski.png",
                    "spectrum_histograms.png"]
    for p in (t / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10000


def test_plot_errors_and_pdf(sets):
    I.denormprep(sets / "real.h5")
    c = C.compute_statistics(sets / "real.h5", sets / "rc.h5", progress=False)
    with pytest.raises(Exception, match="at least two"):
        P.plot_ks_pvalues([c])
    out = P.save_figure(P.plot_minkowski([c]), sets / "mf.pdf")
    assert open(out, "rb").read(4) == b"%PDF"
    with pytest.raises(Exception, match="png or .pdf"):
        P.save_figure(P.plot_log_spectra([c]), sets / "mf.jpg")
    assert np.isfinite(C.aggregate(c).logpsd_mean).all()
