"""Simulated lognormal dust-like image sets (for tests, the demo and the notebook)."""

from __future__ import annotations

import numpy as np

from ..core.errors import ParameterError
from ..core.random import block_rng, check_seed

__all__ = ["lognormal_field", "simulate_set"]


def lognormal_field(rng: np.random.Generator, size: int, *, slope: float = -2.8, sigma: float = 1.0,
                    mean: float = 3.0) -> np.ndarray:
    """One ``size x size`` lognormal field whose log has a power-law spectrum ``P(k) ~ k**slope``.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
    slope : float, optional
        Power-law index of the Gaussian field's spectrum.
    sigma, mean : float, optional
        Standard deviation and mean of the log (natural) field.

    Returns
    -------
    numpy.ndarray
        float64, all positive.

    Examples
    --------
    >>> f = lognormal_field(np.random.default_rng(0), 32)
    >>> f.shape, bool((f > 0).all())
    ((32, 32), True)
    """
    k = np.hypot(np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :])
    k[0, 0] = np.inf
    amp = k ** (slope / 2)
    g = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * amp))
    g = (g - g.mean()) / g.std()
    return np.exp(mean + sigma * g)


def simulate_set(n: int, size: int = 64, *, seed: int = 0, slope: float = -2.8, sigma: float = 1.0,
                 mean: float = 3.0) -> np.ndarray:
    """``n`` independent lognormal fields; image ``i`` depends only on ``(seed, i)`` (:func:`block_rng`).

    Parameters
    ----------
    n, size : int
    seed : int, optional
    slope, sigma, mean : float, optional
        See :func:`lognormal_field`.

    Returns
    -------
    numpy.ndarray (n, size, size)

    Examples
    --------
    >>> a = simulate_set(3, 16, seed=1)
    >>> bool(np.array_equal(a[2], simulate_set(3, 16, seed=1)[2]))
    True
    """
    if n < 1 or size < 4:
        raise ParameterError(f"need n >= 1 images of size >= 4, got n={n}, size={size}")
    seed = check_seed(seed)
    return np.stack([lognormal_field(block_rng(seed, i), size, slope=slope, sigma=sigma, mean=mean)
                     for i in range(n)])
