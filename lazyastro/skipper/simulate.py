"""Simulated skipper images with known truth (for tests, benchmarks and demos).

Each pixel collects ``n ~ Poisson(dark_current)`` electrons; every skip measures
``baseline + polarity * gain * n + Normal(0, read_noise)`` ADU (rounded). The file is
written in the legacy layout (``NAXIS1 = ncols * nskips``, header ``NDCMS``), row band
by row band, so files larger than memory can be made.

Randomness comes from :mod:`lazyastro.core.random` on a fixed grid of one image row per
block (``block_rng(seed, (row, 0, 0))``), so a file's values depend only on the seed and
the shape: not on the band size, the memory budget or the scheduler.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from ..core.errors import ParameterError
from ..core.random import check_seed, grid_random

__all__ = ["simulate", "simulate_block"]


def _draw_rows(rng: np.random.Generator, shape: tuple, *, read_noise: float, dark_current: float,
               gain: float, baseline: float, polarity: int) -> np.ndarray:
    """Values of one grid block ``(rows, ncols, nskips)`` from its generator."""
    electrons = rng.poisson(dark_current, size=(shape[0], shape[1], 1))
    return baseline + polarity * gain * electrons + rng.normal(0.0, read_noise, shape)


def simulate_block(
    rows: tuple[int, int], shape: tuple[int, int, int], *, read_noise: float, dark_current: float,
    gain: float, baseline: float, polarity: int, seed: int, dtype: str,
) -> np.ndarray:
    """Rows ``rows[0]:rows[1]`` of a simulated file in the raw layout ``(rows, ncols * nskips)``.

    Parameters
    ----------
    rows : (int, int)
        First and end row of the band.
    shape : (int, int, int)
        ``(nrows, ncols, nskips)`` of the whole file.
    read_noise, dark_current, gain, baseline, polarity
        See :func:`simulate`.
    seed : int
        Seed of the file (each row has its own generator on the ``core.random`` grid).
    dtype : str
        Output dtype (integer dtypes are rounded and clipped).

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> kw = dict(read_noise=2.0, dark_current=0.1, gain=5.0, baseline=100.0, polarity=-1, seed=1, dtype="uint16")
    >>> a = simulate_block((0, 4), (4, 3, 2), **kw)
    >>> bool((a[2:] == simulate_block((2, 4), (4, 3, 2), **kw)).all()), a.shape
    (True, (4, 6))
    """
    nrows, ncols, nskips = shape
    draw = functools.partial(_draw_rows, read_noise=read_noise, dark_current=dark_current, gain=gain,
                             baseline=baseline, polarity=polarity)
    values = grid_random(seed, shape, (1, ncols, nskips), draw, (slice(rows[0], rows[1]), slice(None), slice(None)))
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dt).reshape(rows[1] - rows[0], ncols * nskips)


def simulate(
    path: str | os.PathLike,
    nrows: int = 50,
    ncols: int = 60,
    nskips: int = 100,
    read_noise: float = 20.0,
    dark_current: float = 0.3,
    gain: float = 8.0,
    baseline: float = 5000.0,
    polarity: int = -1,
    seed: int = 0,
    dtype: str = "uint16",
    write_nskips: bool = True,
    header: dict | None = None,
    overwrite: bool = True,
    scheduler: str | None = None,
) -> dict[str, Any]:
    """Write a simulated skipper FITS file and return its truth.

    ``read_noise`` is per skip (ADU); the average image has ``read_noise / sqrt(nskips)``.
    ``write_nskips=False`` omits ``NDCMS`` (like legacy average images).

    >>> truth = simulate("/tmp/Img_01.fits", nskips=25, seed=1)  # doctest: +SKIP
    >>> truth["gain"]  # doctest: +SKIP
    8.0
    """
    if min(nrows, ncols, nskips) < 1:
        raise ParameterError(f"nrows, ncols, nskips must be >= 1, got {(nrows, ncols, nskips)}")
    if polarity not in (1, -1):
        raise ParameterError(f"polarity must be +1 or -1, got {polarity}")
    seed = check_seed(seed)
    import dask.array as da

    from ..io.fits import to_fits

    row_bytes = ncols * nskips * np.dtype(dtype).itemsize * 8  # float64 temporaries
    band = int(max(1, min(nrows, (16 * 2**20) // row_bytes)))
    starts = list(range(0, nrows, band))
    kw = {"read_noise": read_noise, "dark_current": dark_current, "gain": gain, "baseline": baseline,
          "polarity": polarity, "seed": seed, "dtype": dtype}
    blocks = [
        da.from_delayed(
            _delayed_block((r0, min(nrows, r0 + band)), (nrows, ncols, nskips), kw),
            shape=(min(band, nrows - r0), ncols * nskips), dtype=dtype,
        )
        for r0 in starts
    ]
    data = da.concatenate(blocks, axis=0)
    from astropy.io.fits import Header

    hdr = Header()
    if write_nskips:
        hdr["NDCMS"] = (nskips, "number of skipper samples per pixel")
    for key, value in (header or {}).items():
        hdr[key] = value
    to_fits(data, path, header=hdr, overwrite=overwrite, scheduler=scheduler, progress=False)
    return {
        "path": os.fspath(path), "nrows": nrows, "ncols": ncols, "nskips": nskips,
        "read_noise": read_noise, "avg_noise": read_noise / np.sqrt(nskips),
        "dark_current": dark_current, "gain": gain, "baseline": baseline, "polarity": polarity,
        "seed": seed,
    }


def _delayed_block(rows, shape, kw):
    import dask

    return dask.delayed(functools.partial(simulate_block, **kw), pure=True)(rows, shape)
