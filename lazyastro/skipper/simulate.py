"""Simulated skipper images with known truth (for tests, benchmarks and demos).

Each pixel collects ``n ~ Poisson(dark_current)`` electrons; every skip measures
``baseline + polarity * gain * n + Normal(0, read_noise)`` ADU (rounded). The file is
written in the legacy layout (``NAXIS1 = ncols * nskips``, header ``NDCMS``), row band
by row band, so files larger than memory can be made.
"""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np

from ..core.errors import ParameterError
from ..io.fits import to_fits

__all__ = ["simulate", "simulate_block"]


def simulate_block(
    nrows: int, ncols: int, nskips: int, read_noise: float, dark_current: float, gain: float,
    baseline: float, polarity: int, seed: int, block: int, dtype: str,
) -> np.ndarray:
    """One row band as ``(nrows, ncols * nskips)`` raw layout (pure numpy, seeded per band)."""
    rng = np.random.default_rng([seed, block])
    electrons = rng.poisson(dark_current, size=(nrows, ncols, 1))
    values = baseline + polarity * gain * electrons + rng.normal(0.0, read_noise, (nrows, ncols, nskips))
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        values = np.clip(np.rint(values), info.min, info.max)
    return values.astype(dt).reshape(nrows, ncols * nskips)


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
    row_bytes = ncols * nskips * np.dtype(dtype).itemsize * 8  # float64 temporaries
    band = int(max(1, min(nrows, (16 * 2**20) // row_bytes)))
    starts = list(range(0, nrows, band))
    blocks = [
        da.from_delayed(
            _delayed_block(min(band, nrows - r0), ncols, nskips, read_noise, dark_current, gain,
                           baseline, polarity, seed, i, dtype),
            shape=(min(band, nrows - r0), ncols * nskips), dtype=dtype,
        )
        for i, r0 in enumerate(starts)
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


def _delayed_block(*args):
    import dask

    return dask.delayed(simulate_block, pure=True)(*args)
