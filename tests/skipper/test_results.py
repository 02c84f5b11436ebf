"""Lazy Dataset results, units, the directory job as a library function, seeded simulation."""

import os
import shutil
import warnings

import dask
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lazyastro import skipper
from lazyastro.core.errors import FormatError, InputNotFoundError
from lazyastro.skipper.units import UNITS, enabled_units


def test_statistics_is_a_lazy_dataset_with_units(sim_dir):
    d, _ = sim_dir
    paths = [d / "Img_02.fits", d / "Img_03.fits"]
    ds = skipper.statistics(paths, seed=3)
    assert ds.sizes == {"image": 2} and dask.is_dask_collection(ds)
    assert list(ds.image.values) == [str(p.resolve()) for p in paths]
    for name, unit in UNITS.items():
        assert ds[name].attrs["units"] == unit, name
    for name in ("skNoise_err", "darkCurrent_err", "aduConversion_err", "dSdskip_err"):
        assert ds[name].attrs["units"] == ds[name[:-4]].attrs["units"]
    assert ds.pixVar.attrs["units"] == "adu2" and ds.aveImgS.attrs["units"] == "nat"
    computed = ds.compute(scheduler="sync")
    rows = skipper.compute_statistics(paths, seed=3, scheduler="sync", progress=False)
    for i, row in enumerate(rows):  # the eager rows are the same numbers
        for key in ("nskips", "aveImgS", "imgNoise", "skNoise", "pixVar", "clustVar", "tailRatio", "darkCurrent"):
            a, b = computed[key].values[i], row[key]
            assert a == b or (np.isnan(a) and np.isnan(b)), key
        assert computed.skNoise_method.values[i] == row["skNoise_method"]
    assert skipper.to_rows(computed)[1]["nskips"] == 1


def test_statistics_selection_reads_only_what_it_needs(sim_dir):
    d, _ = sim_dir
    ds = skipper.statistics([d / "Img_02.fits", d / "Img_03.fits"])
    one = ds.nskips.isel(image=1).compute(scheduler="sync")
    assert int(one) == 1


def test_statistics_errors(tmp_path, sim_dir):
    d, _ = sim_dir
    with pytest.raises(InputNotFoundError, match="missing.fits"):
        skipper.statistics([tmp_path / "missing.fits"])
    data = np.random.default_rng(0).normal(100, 5, (6, 20)).astype(np.float32)
    data[1, 1] = np.nan
    hdu = fits.PrimaryHDU(data)
    hdu.header["NDCMS"] = 4
    hdu.writeto(tmp_path / "nan.fits")
    ds = skipper.statistics([tmp_path / "nan.fits", d / "Img_02.fits"])
    with pytest.raises(FormatError, match=r"nan\.fits.*NaN"):
        ds.compute(scheduler="sync")
    ds = skipper.statistics([tmp_path / "nan.fits", d / "Img_02.fits"], errors="return").compute(scheduler="sync")
    assert "NaN" in ds.error.values[0] and ds.error.values[1] == ""
    assert np.isnan(ds.skNoise.values[0]) and ds.nskips.values[1] == 25


def test_table_units_survive_ecsv(sim_dir, tmp_path):
    d, _ = sim_dir
    rows = skipper.compute_statistics([d / "Img_02.fits"], scheduler="sync", progress=False)
    out = tmp_path / "t.ecsv"
    skipper.write_rows(out, rows, "ecsv")
    text = out.read_text()
    assert "unit: adu" in text and "unit: electron / pix" in text and "unit: mnat / skip" in text
    with enabled_units():
        t = Table.read(out)
    assert str(t["skNoise"].unit) == "adu" and str(t["aduConversion"].unit) == "adu / electron"
    assert str(t["aveImgS"].unit) == "nat" and t["skNoise"].description
    ds = skipper.to_dataset(rows)
    assert ds.darkCurrent.attrs["units"] == "electron / pix"


def test_run_directory_library_function(sim_dir, tmp_path):
    src, _ = sim_dir
    for name in ("Img_02.fits", "Img_03.fits"):
        shutil.copy2(src / name, tmp_path / name)
    run = skipper.run_directory(tmp_path, scheduler="sync", progress=False)
    assert len(run.rows) == 2 and run.tables == [tmp_path / "img_preproc_out.ecsv"] and not run.errors
    mtime = run.tables[0].stat().st_mtime_ns
    again = skipper.run_directory(tmp_path, scheduler="sync", progress=False)
    assert again.rows == [] and again.up_to_date == 2 and again.tables == []
    assert run.tables[0].stat().st_mtime_ns == mtime  # nothing to do: the table is not touched
    printed = skipper.run_directory(tmp_path, write=False, patterns=["Img_03"], scheduler="sync", progress=False)
    assert [r["nskips"] for r in printed.rows] == [1] and printed.tables == []
    with pytest.raises(InputNotFoundError, match="no files match"):
        skipper.run_directory(tmp_path, patterns=["nothing"], scheduler="sync", progress=False)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_loop_is_skipped_with_a_warning(sim_dir, tmp_path, capsys):
    src, _ = sim_dir
    shutil.copy2(src / "Img_02.fits", tmp_path / "Img_02.fits")
    os.symlink(tmp_path / "Img_05.fits", tmp_path / "Img_05.fits")  # points at itself
    os.symlink(tmp_path / "Img_07.fits", tmp_path / "Img_06.fits")  # a two-link loop
    os.symlink(tmp_path / "Img_06.fits", tmp_path / "Img_07.fits")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = skipper.select_files(tmp_path, ["Img_"])
    assert names == ["Img_02.fits"]
    assert sorted(str(w.message).split(":")[0] for w in caught) == [
        str(tmp_path / f"Img_0{i}.fits") for i in (5, 6, 7)]
    assert all("symlink loop" in str(w.message) for w in caught)
    from lazyastro.cli.main import main

    assert main(["--no-progress", "--scheduler", "sync", "skipper", "-d", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "lazyastro: warning: " in err and "Img_05.fits: symlink loop; skipped" in err
    assert len(Table.read(tmp_path / "img_preproc_out.ecsv")) == 1


def test_simulate_is_seeded_on_a_fixed_grid(tmp_path):
    from lazyastro.skipper.simulate import simulate_block

    kw = dict(read_noise=5.0, dark_current=0.4, gain=7.0, baseline=900.0, polarity=-1, seed=11, dtype="int32")
    whole = simulate_block((0, 9), (9, 4, 3), **kw)
    parts = np.concatenate([simulate_block((a, b), (9, 4, 3), **kw) for a, b in ((0, 2), (2, 7), (7, 9))])
    np.testing.assert_array_equal(whole, parts)  # bands of any size give the same file
    a = skipper.simulate(tmp_path / "a.fits", nrows=9, ncols=4, nskips=3, seed=11, scheduler="sync")
    b = skipper.simulate(tmp_path / "b.fits", nrows=9, ncols=4, nskips=3, seed=11, scheduler="threads")
    assert a["seed"] == b["seed"] == 11
    np.testing.assert_array_equal(fits.getdata(tmp_path / "a.fits"), fits.getdata(tmp_path / "b.fits"))
    c = skipper.simulate(tmp_path / "c.fits", nrows=9, ncols=4, nskips=3, seed=12)
    assert c and not np.array_equal(fits.getdata(tmp_path / "a.fits"), fits.getdata(tmp_path / "c.fits"))


def test_plots_have_units_log_counts_and_reasons(sim_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from lazyastro.skipper.plot import figure, plot_fit

    d, _ = sim_dir
    fitted, failed = skipper.compute_statistics([d / "Img_01.fits", d / "Img_02.fits"], version="2019",
                                                legacy=True, scheduler="sync", progress=False)
    assert np.isfinite(fitted["skNoise"]) and np.isnan(failed["skNoise"])
    for row in (fitted, failed):
        ax = figure(row).axes[0]
        assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0  # no negative-counts region
        assert "[ADU]" in ax.get_xlabel() and "ADU" in ax.get_ylabel()
        assert ("ADU" in ax.get_title()) == (row is fitted)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        if row is fitted:
            assert any("σ = " in t and "ADU" in t for t in legend)
        else:
            assert any(t.startswith("no fit: ") and "minima" in t for t in legend)
            assert failed["skNoise_reason"] in " ".join(t.replace("\n", " ") for t in legend)
    png = plot_fit(failed, tmp_path / "p" / "x.png")
    assert open(png, "rb").read(4) == b"\x89PNG"
