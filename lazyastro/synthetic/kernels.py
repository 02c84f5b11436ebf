"""Kernels that draw deep-field-like images, one block at a time (numpy or CuPy).

Every random number comes from :mod:`lazyastro.core.random`: the source
catalogue from one generator of the seed, the noise of frame ``f`` from the
generators of a fixed ``(1, 256, 256)`` grid over ``(frame, y, x)``. A block's
values therefore depend only on the seed, the series shape and the block's
position, never on chunking, scheduler or the order blocks run in. The array
module is taken from the catalogue (:func:`lazyastro.core.backend.array_namespace`);
random numbers are drawn on the host, so a CuPy block has the same noise.

>>> import numpy as np
>>> cat = source_catalogue(64, 64, seed=1)
>>> a = render_frames(cat, range(2), 0, 64, 0, 64, shape=(2, 64, 64), seed=1)
>>> b = render_frames(cat, range(1, 2), 16, 40, 8, 64, shape=(2, 64, 64), seed=1)
>>> bool(np.array_equal(a[1:, 16:40, 8:64], b))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.backend import array_namespace, to_numpy
from ..core.random import block_rng, grid_random, standard_normal

__all__ = ["STRIP", "NOISE_GRID", "source_catalogue", "render_scene", "render_frames"]

# Rows of one noise grid block; chunks of whole strips draw each grid block once.
STRIP = 256
#: Grid of the noise generators over (frame, y, x).
NOISE_GRID = (1, STRIP, 256)
_CATALOGUE_STREAM = 0
_NOISE_STREAM = 1


def source_catalogue(ny: int, nx: int, seed: int, density: float = 1.2e-4) -> np.ndarray:
    """Random sources: columns ``y, x, flux, sigma_major, axis_ratio, angle`` (galaxies and stars).

    Parameters
    ----------
    ny, nx : int
        Field shape in pixels.
    seed : int
        Non-negative seed.
    density : float, optional
        Sources per pixel.

    Returns
    -------
    numpy.ndarray
        ``(n, 6)`` float64 catalogue.

    Examples
    --------
    >>> source_catalogue(100, 100, seed=0).shape
    (1, 6)
    """
    rng = block_rng(seed, 0, stream=_CATALOGUE_STREAM)
    n = max(1, int(density * ny * nx))
    y = rng.uniform(0, ny, n)
    x = rng.uniform(0, nx, n)
    flux = 20.0 * (rng.pareto(1.3, n) + 1.0)  # many faint, few bright: a deep-field count slope
    star = rng.random(n) < 0.15
    sigma = np.where(star, 1.2, rng.lognormal(np.log(2.0), 0.5, n))
    q = np.where(star, 1.0, rng.uniform(0.3, 1.0, n))
    angle = rng.uniform(0, np.pi, n)
    return np.stack([y, x, flux, sigma, q, angle], axis=1)


def render_scene(catalogue, y0: int, y1: int, x0: int, x1: int):
    """Noise-free sky of elliptical Gaussian sources on the window ``[y0:y1, x0:x1]``.

    The result is in the array module of ``catalogue`` (numpy or CuPy); the
    sources overlapping the window are selected on the host.

    Parameters
    ----------
    catalogue : array
        ``(n, 6)`` catalogue from :func:`source_catalogue` (numpy or CuPy).
    y0, y1, x0, x1 : int
        Window in pixels.

    Returns
    -------
    array
        ``(y1 - y0, x1 - x0)`` float32 image.

    Examples
    --------
    >>> cat = np.array([[2.0, 2.0, 100.0, 1.0, 1.0, 0.0]])
    >>> img = render_scene(cat, 0, 5, 0, 5)
    >>> img.dtype.name, bool(img.argmax() == 12)
    ('float32', True)
    """
    xp = array_namespace(catalogue)
    cat = to_numpy(catalogue)
    out = xp.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    rad = np.ceil(5 * cat[:, 3]).astype(int)
    keep = (
        (cat[:, 0] + rad >= y0) & (cat[:, 0] - rad < y1)
        & (cat[:, 1] + rad >= x0) & (cat[:, 1] - rad < x1)
    )
    for (yc, xc, flux, sig, q, ang), r in zip(cat[keep], rad[keep]):
        ya, yb = max(int(yc) - r, y0), min(int(yc) + r + 1, y1)
        xa, xb = max(int(xc) - r, x0), min(int(xc) + r + 1, x1)
        yy, xx = xp.mgrid[ya:yb, xa:xb].astype(np.float32)
        dy, dx = yy - yc, xx - xc
        c, s = np.cos(ang), np.sin(ang)
        u, v = dx * c + dy * s, (-dx * s + dy * c) / q
        norm = flux / (2 * np.pi * sig * sig * q)
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] += norm * xp.exp(-(u * u + v * v) / (2 * sig * sig))
    return out


def render_frames(
    catalogue, frames: Sequence[int], y0: int, y1: int, x0: int, x1: int, *,
    shape: Sequence[int], seed: int, sky: float = 100.0, noise: float = 5.0,
):
    """Frames ``frames`` of the window ``[y0:y1, x0:x1]`` of a series of ``shape``.

    The same field in every frame, a slowly varying sky level and independent
    Gaussian noise per frame drawn on the fixed :data:`NOISE_GRID`: identical
    for any chunking.

    Parameters
    ----------
    catalogue : array
        Catalogue from :func:`source_catalogue`; its array module (numpy or
        CuPy) is the one of the result.
    frames : sequence of int
        Frame indices to draw.
    y0, y1, x0, x1 : int
        Window in pixels.
    shape : sequence of int
        ``(nframes, ny, nx)`` of the whole series.
    seed : int
        Non-negative seed.
    sky, noise : float, optional
        Mean sky level and noise standard deviation.

    Returns
    -------
    array
        ``(len(frames), y1 - y0, x1 - x0)`` float32.

    Examples
    --------
    >>> cat = source_catalogue(32, 32, seed=0)
    >>> render_frames(cat, [3], 0, 32, 0, 32, shape=(4, 32, 32), seed=0).shape
    (1, 32, 32)
    """
    xp = array_namespace(catalogue)
    shape = tuple(int(s) for s in shape)
    frames = [int(f) for f in frames]
    host = np.empty((len(frames), y1 - y0, x1 - x0), dtype=np.float32)
    for k, f in enumerate(frames):
        grid_random(seed, shape, NOISE_GRID, standard_normal, (slice(f, f + 1), slice(y0, y1), slice(x0, x1)),
                    stream=_NOISE_STREAM, out=host[k : k + 1])
    host *= np.float32(noise)
    levels = (sky * (1 + 0.02 * np.sin(np.asarray(frames, dtype=np.float64)))).astype(np.float32)  # slowly varying sky
    host += levels[:, None, None]
    out = xp.asarray(host)
    out += render_scene(catalogue, y0, y1, x0, x1)[None]
    return out
