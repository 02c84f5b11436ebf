"""Pure-numpy kernels that draw deep-field-like images, one block at a time."""

from __future__ import annotations

import numpy as np

# Rows per noise strip: noise is drawn per (frame, strip) so it does not depend on chunking.
STRIP = 256


def source_catalogue(ny: int, nx: int, seed: int, density: float = 1.2e-4) -> np.ndarray:
    """Random sources: columns ``y, x, flux, sigma_major, axis_ratio, angle`` (galaxies and stars)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA7]))
    n = max(1, int(density * ny * nx))
    y = rng.uniform(0, ny, n)
    x = rng.uniform(0, nx, n)
    flux = 20.0 * (rng.pareto(1.3, n) + 1.0)  # many faint, few bright: a deep-field count slope
    star = rng.random(n) < 0.15
    sigma = np.where(star, 1.2, rng.lognormal(np.log(2.0), 0.5, n))
    q = np.where(star, 1.0, rng.uniform(0.3, 1.0, n))
    angle = rng.uniform(0, np.pi, n)
    return np.stack([y, x, flux, sigma, q, angle], axis=1)


def render_scene(catalogue: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Noise-free sky of elliptical Gaussian sources on the window ``[y0:y1, x0:x1]``."""
    out = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    rad = np.ceil(5 * catalogue[:, 3]).astype(int)
    keep = (
        (catalogue[:, 0] + rad >= y0) & (catalogue[:, 0] - rad < y1)
        & (catalogue[:, 1] + rad >= x0) & (catalogue[:, 1] - rad < x1)
    )
    for (yc, xc, flux, sig, q, ang), r in zip(catalogue[keep], rad[keep]):
        ya, yb = max(int(yc) - r, y0), min(int(yc) + r + 1, y1)
        xa, xb = max(int(xc) - r, x0), min(int(xc) + r + 1, x1)
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
        dy, dx = yy - yc, xx - xc
        c, s = np.cos(ang), np.sin(ang)
        u, v = dx * c + dy * s, (-dx * s + dy * c) / q
        norm = flux / (2 * np.pi * sig * sig * q)
        out[ya - y0 : yb - y0, xa - x0 : xb - x0] += norm * np.exp(-(u * u + v * v) / (2 * sig * sig))
    return out


def render_frames(
    catalogue: np.ndarray, frames: range, y0: int, y1: int, x0: int, x1: int, nx: int,
    seed: int, sky: float = 100.0, noise: float = 5.0,
) -> np.ndarray:
    """Frames of the same field with independent noise; identical for any chunking."""
    scene = render_scene(catalogue, y0, y1, x0, x1)
    out = np.empty((len(frames), y1 - y0, x1 - x0), dtype=np.float32)
    for k, f in enumerate(frames):
        level = sky * (1 + 0.02 * np.sin(f))  # slowly varying sky
        for s in range(y0 // STRIP, (y1 - 1) // STRIP + 1):
            rng = np.random.default_rng(np.random.SeedSequence([seed, f, s]))
            strip = rng.standard_normal((STRIP, nx), dtype=np.float32)
            a, b = max(y0, s * STRIP), min(y1, (s + 1) * STRIP)
            out[k, a - y0 : b - y0] = strip[a - s * STRIP : b - s * STRIP, x0:x1] * noise
        out[k] += scene + np.float32(level)
    return out
