import pytest

from lazyastro.skipper import simulate


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory):
    """Small simulated files shared by the skipper tests (truth dicts by name)."""
    d = tmp_path_factory.mktemp("skipper")
    truth = {
        # resolved single-electron peaks: avg noise 1 ADU, gain 8 ADU/e
        "Img_01.fits": simulate(d / "Img_01.fits", nrows=40, ncols=50, nskips=400, read_noise=20.0,
                                dark_current=0.3, gain=8.0, seed=1),
        "Img_02.fits": simulate(d / "Img_02.fits", nrows=12, ncols=15, nskips=25, read_noise=10.0,
                                dark_current=0.2, gain=6.0, seed=2),
        "Img_03.fits": simulate(d / "Img_03.fits", nrows=20, ncols=25, nskips=1, read_noise=3.0,
                                dark_current=0.2, gain=10.0, seed=3, write_nskips=False),
    }
    return d, truth
