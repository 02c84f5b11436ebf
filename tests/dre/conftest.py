"""Shared DRE fixtures (session-scoped, built once): a small simulated tile and its products.

- ``dre_tile``: dict ``name``, ``tile``, ``truth``, ``psf`` (paths), ``workdir`` (Path) of one
  512 x 512 tile (14 De Vaucouleurs galaxies on the default grid, 3 neighbours, 8 stars; Moffat PSF
  FWHM 3 px; noise 1, gain 1).
- ``dre_truth``: its truth table (astropy Table; ``x``, ``y`` 1-based).
- ``dre_sextracted``: the four sep-engine products (``catalog``, ``nb``, ``rms``, ``seg`` paths,
  ``engine``) in ``workdir/Sextracted`` (sep is deterministic and always there with the dre extra).
- ``dre_cuts``: ``workdir/Cuts/<name>_cuts.h5`` made from them with the default selection.
- ``dre_psf``: ``workdir/PSF/<name>.psf`` (the empirical PSF from the sep products; PSFEx layout).
"""

from __future__ import annotations

import pytest

DRE_TILE = dict(shape=(512, 512), n_galaxies=14, n_stars=8, seed=11)


@pytest.fixture(scope="session")
def dre_tile(tmp_path_factory):
    from lazyastro.dre.simulate import write_tiles

    work = tmp_path_factory.mktemp("dre_field")
    (info,) = write_tiles(work, **DRE_TILE)
    return {**info, "workdir": work}


@pytest.fixture(scope="session")
def dre_truth(dre_tile):
    from astropy.table import Table

    return Table.read(dre_tile["truth"])


@pytest.fixture(scope="session")
def dre_sextracted(dre_tile):
    pytest.importorskip("sep")
    from lazyastro.dre.extraction import sextract

    return sextract(dre_tile["tile"], dre_tile["workdir"] / "Sextracted", engine="sep", gain="counts")


@pytest.fixture(scope="session")
def dre_cuts(dre_tile, dre_sextracted):
    from lazyastro.dre.cuts import make_cuts

    return make_cuts(dre_tile["tile"], dre_sextracted, dre_tile["workdir"] / "Cuts" / f"{dre_tile['name']}_cuts.h5")


@pytest.fixture(scope="session")
def dre_psf(dre_tile, dre_sextracted):
    from lazyastro.dre.psf import make_psf

    return make_psf(dre_sextracted["catalog"], dre_tile["workdir"] / "PSF", engine="empirical")
