"""lazyastro.dre.cuts and masks: selection, stamps, mask cleaning, the legacy HDF5 layout, open_cuts."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from lazyastro.cli.main import main
from lazyastro.core.errors import FormatError, InputNotFoundError, ParameterError
from lazyastro.core.execution import compute
from lazyastro.dre.cuts import make_cuts, object_key, open_cuts, select_objects
from lazyastro.dre.extraction import read_catalog, write_ldac
from lazyastro.dre.masks import clean_mask, cut_origin

B = 128
C = B // 2


# ----------------------------------------------------------------------------- mask cleaning kernel

def test_mask_square_with_hole_filled_and_dilated():
    own = np.zeros((B, B), bool)
    own[C - 5:C + 5, C - 5:C + 5] = True
    own[C + 2, C + 2] = False  # a hole
    out = clean_mask(own)
    # 10x10 square grown by a 4-px diamond: 100 + 4 sides * 10 * 4 + 4 corners * (1 + 2 + 3)
    assert out.sum() == 100 + 160 + 24
    assert out[C + 2, C + 2] and out[C - 9, C] and not out[C - 10, C] and not out[C - 9, C - 9 + 4 - 4 - 1]


def test_mask_keeps_only_the_centre_component():
    own = np.zeros((B, B), bool)
    own[C - 3:C + 3, C - 3:C + 3] = True
    own[10:20, 10:20] = True           # detached fragment of the same object: dropped
    own[C + 3, C + 3] = True           # diagonal (8-) neighbour only: not 4-connected, dropped
    out = clean_mask(own, dilation=0)
    assert out.sum() == 36 and not out[15, 15] and not out[C + 3, C + 3]


def test_mask_forces_the_centre_block_and_excludes_neighbours():
    seg = np.zeros((B, B), np.int32)
    seg[C + 6:C + 12, C - 2:C + 2] = 7   # our object, not touching the centre
    seg[C - 20:C - 2, C - 20:C + 20] = 3  # a neighbour
    out = clean_mask(seg == 7, dilation=0)
    block = np.zeros((B, B), bool)
    block[C - 2:C + 2, C - 2:C + 2] = True
    np.testing.assert_array_equal(out, block)  # only the forced 4x4 block (rows/cols 62..65)
    out4 = clean_mask(seg == 7)
    assert out4.sum() == 16 + 4 * 4 * 4 + 4 * 6  # the block grown by the 4-px diamond
    assert out4[C - 3, C] and not (out4 & (seg == 3)).sum() > 4 * 4 * 4  # only the ring touches the neighbour


def test_mask_matches_the_full_stamp_recipe():
    # the kernel works in the component's bounding box; the result equals the recipe on the whole stamp
    from scipy import ndimage

    def recipe(own):
        m = own.copy()
        m[C - 2:C + 2, C - 2:C + 2] = True
        lab, _ = ndimage.label(m, structure=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool))
        m = ndimage.binary_fill_holes(lab == lab[C, C])
        return ndimage.binary_dilation(m, structure=np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool), iterations=4)

    rng = np.random.default_rng(0)
    for i in range(40):
        noise = ndimage.gaussian_filter(rng.random((B, B)), 2 + i % 3)
        own = noise > np.quantile(noise, rng.uniform(0.3, 0.8))
        np.testing.assert_array_equal(clean_mask(own), recipe(own))
    edge = np.zeros((B, B), bool)
    edge[:, C - 5:C + 5] = True
    edge[3, C] = False
    np.testing.assert_array_equal(clean_mask(edge), recipe(edge))


def test_cut_origin_centre_convention():
    cy, cx, y0, x0 = cut_origin(300.0, 200.0)
    assert (cy, cx) == (199, 299) and (cy - y0, cx - x0) == (C, C)
    assert cut_origin(300.4, 200.6)[:2] == (200, 299)


# ----------------------------------------------------------------------------- selection

def test_selection_is_strict():
    t = Table({"X_IMAGE": [80.0, 80.01, 419.99, 420.0, 200.0, 200.0],
               "Y_IMAGE": [200.0, 200.0, 200.0, 200.0, 80.0, 200.0],
               "CLASS_STAR": [0.1, 0.1, 0.1, 0.1, 0.1, 1.0], "FLUX_AUTO": [1, 2, 3, 4, 5, 6]})
    assert select_objects(t, (500, 500)).tolist() == [False, True, True, False, False, False]
    assert select_objects(t, (500, 500), max_stellarity=1.01).tolist()[-1]
    assert select_objects(t, (500, 500), filters=[("FLUX_AUTO", 2, 4)]).tolist() == [False] * 2 + [True] + [False] * 3
    with pytest.raises(FormatError, match="no MAG column"):
        select_objects(t, (500, 500), filters=[("MAG", 0, 1)], path="c.fits")


def test_make_cuts_counts_and_content(dre_tile, dre_sextracted, dre_cuts):
    cat = read_catalog(dre_sextracted["catalog"])
    nb = fits.getdata(dre_sextracted["nb"])
    seg = fits.getdata(dre_sextracted["seg"])
    sel = select_objects(cat, nb.shape)
    ds = open_cuts(dre_cuts)
    a = ds.attrs
    assert a["n_catalog"] == len(cat) and a["n_selected"] == sel.sum() > 10
    assert a["n_written"] + a["n_skipped_nan"] + a["n_skipped_edge"] == a["n_selected"]
    assert a["n_skipped_edge"] == 0 and a["n_written"] == ds.sizes["object"]
    assert list(ds.object.values) == sorted(object_key(e, n) for e, n in cat["EXT_NUMBER", "NUMBER"][sel])
    with h5py.File(dre_cuts) as h5:
        for row in cat[sel][:5]:
            g = h5[object_key(row["EXT_NUMBER"], row["NUMBER"])]
            assert g["obj"].dtype == np.float32 and g["seg"].dtype == bool and g["rms"].dtype == np.float32
            assert g["obj"].shape == (B, B) and g["obj"].compression == "gzip" and g["obj"].compression_opts == 4
            cy, cx, y0, x0 = cut_origin(row["X_IMAGE"], row["Y_IMAGE"])
            np.testing.assert_array_equal(g["obj"][()], nb[y0:y0 + B, x0:x0 + B])
            mask = g["seg"][()]
            assert mask[C, C] and mask[C - 2:C + 2, C - 2:C + 2].all()
            own = seg[y0:y0 + B, x0:x0 + B] == row["NUMBER"]
            assert (own & ~mask).sum() <= (own.sum() * 0.05)  # the mask covers the object's segment


def test_make_cuts_edges_nan_and_options(dre_tile, dre_sextracted, tmp_path):
    p = make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "e.h5", margin=20, compression="none")
    a = open_cuts(p).attrs
    assert a["n_skipped_edge"] > 0 and a["n_written"] + a["n_skipped_edge"] + a["n_skipped_nan"] == a["n_selected"]
    with h5py.File(p) as h5:
        assert next(iter(h5.values()))["obj"].compression is None
    # a NaN in the Tiles image under one selected object: that object is skipped and counted
    cat = read_catalog(dre_sextracted["catalog"])
    row = cat[select_objects(cat, (512, 512))][0]
    data = fits.getdata(dre_tile["tile"]).astype(np.float32)
    data[int(row["Y_IMAGE"]) - 1 + 30, int(row["X_IMAGE"]) - 1] = np.nan
    fits.PrimaryHDU(data).writeto(tmp_path / "tile00.fits")
    with pytest.warns(UserWarning, match="NaN"):
        p = make_cuts(tmp_path / "tile00.fits", dre_sextracted, tmp_path / "n.h5", compression="low", warn=True)
    ds = open_cuts(p)
    assert ds.attrs["n_skipped_nan"] >= 1 and object_key(row["EXT_NUMBER"], row["NUMBER"]) not in ds.object
    with h5py.File(p) as h5:
        assert next(iter(h5.values()))["obj"].compression == "lzf"
    p = make_cuts(None, dre_sextracted, tmp_path / "h.h5", compression="high", filters=[("FLUX_AUTO", 1e4, 1e9)],
                  max_stellarity=0.5)
    ds = open_cuts(p)
    keep = cat[select_objects(cat, (512, 512), max_stellarity=0.5, filters=[("FLUX_AUTO", 1e4, 1e9)])]
    assert ds.sizes["object"] == len(keep) and (np.asarray(keep["FLUX_AUTO"]) > 1e4).all()


@pytest.mark.parametrize("mode,legacy", [("com", False), ("2dg", True)])
def test_recentring(dre_tile, dre_sextracted, tmp_path, mode, legacy):
    pytest.importorskip("photutils")
    from photutils.centroids import centroid_com

    p = make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "c.h5", centroids=mode, legacy=legacy,
                  max_stellarity=0.5)
    ds = open_cuts(p)
    target = 63.5 if legacy else 64.0
    assert ds.attrs["centroid_target"] == target
    obj, seg = ds.obj.values, ds.seg.values
    errs = []
    for o, m in zip(obj, seg):
        cx, cy = centroid_com(np.where(m, o, 0.0))
        errs.append(max(abs(cx - target), abs(cy - target)))
    assert np.median(errs) < (0.3 if mode == "com" else 0.6)


def test_make_cuts_errors(dre_tile, dre_sextracted, tmp_path):
    with pytest.raises(ParameterError, match="compression"):
        make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "x.h5", compression="max")
    with pytest.raises(ParameterError, match="centroids"):
        make_cuts(dre_tile["tile"], dre_sextracted, tmp_path / "x.h5", centroids="peak")
    with pytest.raises(InputNotFoundError, match="tile00_cat.fits: missing SExtractor catalog product"):
        make_cuts(dre_tile["tile"], tmp_path, tmp_path / "x.h5")
    shutil.copy(dre_sextracted["catalog"], tmp_path)
    with pytest.raises(InputNotFoundError, match="tile00_nb.fits: missing SExtractor nb product"):
        make_cuts(dre_tile["tile"], tmp_path, tmp_path / "x.h5")
    (tmp_path / "tile00_cat.fits").unlink()
    prods = {k: dre_sextracted[k] for k in ("nb", "rms", "seg")}
    empty = write_ldac(tmp_path / "e_cat.fits", {"NUMBER": np.zeros(0, np.int32), "X_IMAGE": np.zeros(0),
                                                 "Y_IMAGE": np.zeros(0), "CLASS_STAR": np.zeros(0)})
    with pytest.raises(FormatError, match="e_cat.fits: catalogue is empty"):
        make_cuts(dre_tile["tile"], {**prods, "catalog": empty}, tmp_path / "x.h5")
    cat = read_catalog(dre_sextracted["catalog"])
    cat.remove_column("CLASS_STAR")
    nocls = write_ldac(tmp_path / "n_cat.fits", cat)
    with pytest.raises(FormatError, match="n_cat.fits: catalogue has no CLASS_STAR column"):
        make_cuts(dre_tile["tile"], {**prods, "catalog": nocls}, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists() and not list(tmp_path.glob("*.partial"))


# ----------------------------------------------------------------------------- open_cuts

def test_open_cuts_lazy_dataset(dre_cuts, scheduler):
    ds = open_cuts(dre_cuts, objects_per_chunk=4)
    n = ds.sizes["object"]
    assert ds.obj.dims == ("object", "y", "x") and ds.obj.shape == (n, B, B)
    assert ds.obj.dtype == np.float32 and ds.seg.dtype == bool and ds.rms.dtype == np.float32
    assert ds.obj.chunks[0][0] == 4
    assert ds.ext_number.dtype.kind == "i" and ds.number.dtype.kind == "i"
    assert [object_key(e, k) for e, k in zip(ds.ext_number.values, ds.number.values)] == list(ds.object.values)
    obj, seg = compute(ds.obj, ds.seg.sum(("y", "x")), scheduler=scheduler, progress=False)
    with h5py.File(dre_cuts) as h5:
        k = str(ds.object.values[-1])
        np.testing.assert_array_equal(obj[-1].values, h5[k]["obj"][()])
        assert int(seg[-1]) == int(h5[k]["seg"][()].sum())
    one = ds.isel(object=[1, 3]).rms.values
    assert one.shape == (2, B, B)


def test_open_cuts_bad_files(dre_cuts, tmp_path):
    p = tmp_path / "norms.h5"
    shutil.copy(dre_cuts, p)
    with h5py.File(p, "a") as h5:
        key = sorted(h5)[0]
        del h5[key]["rms"]
    with pytest.raises(FormatError, match=f"norms.h5: group {key} has no dataset 'rms'"):
        open_cuts(p)
    p = tmp_path / "nan.h5"
    shutil.copy(dre_cuts, p)
    with h5py.File(p, "a") as h5:
        key = sorted(h5)[1]
        h5[key]["obj"][5, 5] = np.nan
    ds = open_cuts(p)  # lazy: the error comes when the stamp is read
    with pytest.raises(FormatError, match=f"nan.h5: group {key} obj has 1 NaN"):
        _ = ds.obj.values
    assert np.isnan(open_cuts(p, nan="keep").obj.values).sum() == 1
    (tmp_path / "junk.h5").write_bytes(b"junk" * 100)
    with pytest.raises(FormatError, match="junk.h5"):
        open_cuts(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["data"] = np.zeros(3)
    with pytest.raises(FormatError, match="not a group"):
        open_cuts(tmp_path / "other.h5")


def test_cli_make_cuts(dre_tile, dre_sextracted, tmp_path, capsys):
    code = main(["dre", "make_cuts", "-i", str(dre_tile["workdir"] / "Tiles"), "-s",
                 str(dre_tile["workdir"] / "Sextracted"), "-o", str(tmp_path), "--margin", "30",
                 "-f", "FLUX_AUTO", "0", "1e12", "--compression", "low"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "tile00:" in out.out and "too close to the edge" in out.out
    assert open_cuts(tmp_path / "tile00_cuts.h5").attrs["n_skipped_edge"] > 0


def test_cli_make_cuts_errors(dre_tile, tmp_path, capsys):
    assert main(["dre", "cuts", "-i", str(dre_tile["workdir"] / "Tiles"), "-s", str(tmp_path)]) == 1
    err = capsys.readouterr()
    assert "skipped" in err.out and "no tile was cut" in err.err
    assert main(["dre", "cuts", "-f", "FLUX_AUTO", "a", "b", "-i", str(dre_tile["tile"]), "-s",
                 str(dre_tile["workdir"] / "Sextracted"), "-o", str(tmp_path)]) == 1
    assert "PARAM, MIN, MAX" in capsys.readouterr().err
