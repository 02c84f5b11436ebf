"""RGB previews of mosaics of any size (lazyastro.sgan.display, ``lazyastro sgan preview``)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from PIL import Image

import lazyastro
from lazyastro.cli.main import main
from lazyastro.core.errors import ParameterError
from lazyastro.sgan.display import parse_region, preview, stretch, write_preview


def _mosaic(shape=(3, 90, 70), chunks=(3, 32, 32)):
    data = np.random.default_rng(1).gamma(2.0, 1.0, shape).astype(np.float32)
    return data, xr.DataArray(da.from_array(data, chunks=chunks), dims=("band", "y", "x"))


def test_preview_is_the_block_mean_then_one_stretch_for_all_bands():
    data, m = _mosaic()
    got = preview(m, max_side=30)  # 90 px -> blocks of 3; 70 -> 23 blocks (1 px trimmed)
    means = data[:, :90, :69].reshape(3, 30, 3, 23, 3).mean(axis=(2, 4))
    assert got.shape == (30, 23, 3) and got.dtype == np.uint8
    assert np.array_equal(got, stretch(np.moveaxis(means, 0, -1), limits=None))
    # one stretch for all bands: a band twice as bright is brighter in the image
    m2 = m.copy(data=m.data * da.from_array(np.array([1, 1, 2], "f4")[:, None, None]))
    img = preview(m2, max_side=30)
    assert img[..., 2].mean() > img[..., 0].mean() + 20


def test_region_bands_and_grey():
    data, m = _mosaic()
    full = preview(m, max_side=1000, region="10:40,5:", bands=[2, 1, 0], limits=(0.0, 5.0))
    assert np.array_equal(full, stretch(np.moveaxis(data[::-1, 10:40, 5:], 0, -1), limits=(0.0, 5.0)))
    grey = preview(m.isel(band=0).drop_vars([], errors="ignore"), max_side=1000, limits=(0.0, 5.0))
    assert grey.shape == (90, 70) and np.array_equal(grey, stretch(data[0], limits=(0.0, 5.0)))
    assert parse_region(":,3:9") == (slice(None), slice(3, 9))


@pytest.mark.parametrize("kwargs,match", [
    ({"max_side": 0}, "max_side"), ({"bands": [0, 5, 1]}, "bands"), ({"region": "50:50,0:10"}, "empty"),
    ({"region": "x"}, "Y0:Y1"), ({"softening": 0.0}, "softening"),
])
def test_bad_options_are_clear_errors(kwargs, match):
    _, m = _mosaic()
    with pytest.raises(ParameterError, match=match):
        preview(m, **kwargs)


def test_non_finite_pixels_are_black():
    img = stretch(np.array([[np.nan, 0.0, 1.0]]), limits=None)
    assert img[0, 0] == 0 and img[0, 2] == 255


def test_cli_preview_of_a_zarr_mosaic(tmp_path, capsys):
    data, m = _mosaic()
    lazyastro.to_zarr(m.rename("mosaic"), tmp_path / "m.zarr", progress=False)
    out = tmp_path / "m.png"
    assert main(["sgan", "preview", str(tmp_path / "m.zarr"), str(out), "--max-side", "45"]) == 0
    img = np.asarray(Image.open(out))
    assert img.shape == (45, 35, 3)
    assert "preview of" in capsys.readouterr().out
    # an existing PNG is not replaced without --overwrite; a missing input is one line, exit 1
    assert main(["sgan", "preview", str(tmp_path / "m.zarr"), str(out)]) == 1
    assert main(["sgan", "preview", str(tmp_path / "none.zarr"), str(tmp_path / "n.png")]) == 1
    assert not (tmp_path / "n.png").exists()
    assert "none.zarr" in capsys.readouterr().err
    assert main(["sgan", "preview", str(tmp_path / "m.zarr"), str(tmp_path / "b.png"), "--bands", "r,g"]) == 1
    assert "--bands" in capsys.readouterr().err and not (tmp_path / "b.png").exists()
    write_preview(m, out, overwrite=True, max_side=10)
    assert np.asarray(Image.open(out)).shape == (10, 7, 3)


def test_generate_png_adds_an_rgb_composite_for_three_bands(tmp_path):
    out = tmp_path / "imgs"
    assert main(["--no-progress", "sgan", "generate", "-z", "4", "-n", "1", "--seed", "3", "--format", "png",
                 "--out", str(out)]) == 0  # the built-in model: R, G, B
    rgb = np.asarray(Image.open(out / "0-rgb.png"))
    assert rgb.shape == (64, 64, 3) and rgb.std() > 0
    assert sorted(p.name for p in out.iterdir()) == ["0-0.png", "0-1.png", "0-2.png", "0-rgb.png"]
