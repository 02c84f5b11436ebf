"""Simulated fields for DRE: PSF-convolved De Vaucouleurs galaxies, stars, neighbours and noise.

:func:`simulate_field` returns one image, its PSF and the truth table; :func:`write_tiles` writes a
working directory in the legacy layout (``Tiles/<name>.fits``) plus the truth
(``Truth/<name>_truth.ecsv``, ``Truth/<name>_psf.fits``) for tests, the demo and the notebook.

Conventions (shared with :mod:`lazyastro.dre.models` and the cutouts):

- x = column, y = row; truth ``x``, ``y`` are **1-based** (SExtractor ``X_IMAGE``/``Y_IMAGE``), so
  the object sits at 0-based pixel ``(y - 1, x - 1)``. Galaxies are at integer pixel positions by
  default (``subpixel=False``), which makes the 128 x 128 cut put them exactly at index (64, 64).
- Profile ``I(R) = exp(-b_n [(R / r_e)^(1/n) - 1])`` with ``R^2 = x'^2 + (y'/q)^2``,
  ``x' = dx cos(theta) + dy sin(theta)``, ``y' = -dx sin(theta) + dy cos(theta)``: ``theta`` in
  degrees counter-clockwise from +x (SExtractor ``THETA_IMAGE``), ``q`` = minor/major axis ratio,
  ``log_r = log10(r_e)`` with ``r_e`` the half-light radius along the major axis, in pixels.
- Each galaxy is rendered pixel-integrated (sub-sampled, finer near the centre) in a 128 x 128
  stamp (the models' truncation), normalised to sum 1, scaled by ``flux`` and convolved with the
  PSF (``fftconvolve(..., 'same')``); so ``flux * convolve(model, psf)`` is exactly what the fit
  assumes. Stars are the pixel-integrated PSF profile at sub-pixel positions.
- Noise: Gaussian with variance ``noise**2 + source / gain`` (the Gaussian limit of Poisson noise
  on the sources; with ``gain=1`` this is the DRE variance ``s m + sigma^2``), plus a flat sky
  level ``sky`` (which source extraction subtracts).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..core.errors import ParameterError
from ..core.random import block_rng, check_seed

__all__ = ["simulate_field", "write_tiles", "sersic_stamp", "psf_stamp", "default_grid",
           "fftconvolve_same"]

BOXSIZE = 128


def default_grid() -> dict[str, np.ndarray]:
    """The default DRE model grid (the legacy cube's): n, q, theta, log_r.

    Returns
    -------
    dict
        ``n=[4.0]``, ``q=0.1..1.0`` step 0.1, ``theta=0..180`` step 15, ``log_r`` = 21 values
        log-spaced from 0.25 to 50 px.

    Examples
    --------
    >>> g = default_grid()
    >>> len(g["q"]), len(g["theta"]), len(g["log_r"])
    (10, 13, 21)
    """
    return {
        "n": np.array([4.0]),
        "q": np.round(np.arange(1, 11) * 0.1, 10),
        "theta": np.arange(0.0, 181.0, 15.0),
        "log_r": np.linspace(np.log10(0.25), np.log10(50.0), 21),
    }


def _b_n(n: float) -> float:
    from scipy.special import gammaincinv

    return float(gammaincinv(2.0 * n, 0.5))


def _sersic_values(dy, dx, r_e, q, theta, n, bn):
    t = math.radians(theta)
    c, s = math.cos(t), math.sin(t)
    xp = dx * c + dy * s
    yp = (-dx * s + dy * c) / q
    r = np.sqrt(xp * xp + yp * yp) / r_e
    return np.exp(-bn * (r ** (1.0 / n) - 1.0))


def _integrate(func, size: int, cy: float, cx: float, oversample: int, rows=None, cols=None):
    """Mean of ``func(dy, dx)`` over ``oversample**2`` sub-pixels of each pixel (pixels rows x cols)."""
    rows = np.arange(size) if rows is None else rows
    cols = np.arange(size) if cols is None else cols
    sub = (np.arange(oversample) + 0.5) / oversample - 0.5
    ys = (rows[:, None] + sub[None, :]).ravel() - cy
    xs = (cols[:, None] + sub[None, :]).ravel() - cx
    v = func(ys[:, None], xs[None, :])
    return v.reshape(len(rows), oversample, len(cols), oversample).mean(axis=(1, 3))


def sersic_stamp(r_e: float, q: float, theta: float, *, n: float = 4.0, size: int = BOXSIZE,
                 offset: tuple[float, float] = (0.0, 0.0), oversample: int = 3,
                 inner_oversample: int = 41, inner: int = 3) -> np.ndarray:
    """A pixel-integrated Sérsic stamp centred at ``(size//2 + dy, size//2 + dx)``, sum 1.

    Parameters
    ----------
    r_e : float
        Half-light radius along the major axis (pixels).
    q, theta : float
        Axis ratio (0, 1] and position angle in degrees (CCW from +x).
    n : float, optional
        Sérsic index (4 = De Vaucouleurs).
    size : int, optional
        Stamp side (the profile is truncated to the stamp).
    offset : (float, float), optional
        Sub-pixel offset (dy, dx) of the centre.
    oversample, inner_oversample, inner : int, optional
        Sub-pixels per axis everywhere, and within ``inner`` pixels of the centre (9 per axis
        within 10 pixels, ``5 * inner_oversample`` in the central pixel: the n = 4 cusp).

    Returns
    -------
    numpy.ndarray
        float64 ``(size, size)``, sum 1.

    Examples
    --------
    >>> s = sersic_stamp(3.0, 0.5, 30.0, size=64)
    >>> s.shape, round(float(s.sum()), 6), np.unravel_index(s.argmax(), s.shape)
    ((64, 64), 1.0, (np.int64(32), np.int64(32)))
    """
    if not r_e > 0 or not 0 < q <= 1 or not n > 0:
        raise ParameterError(f"need r_e > 0, 0 < q <= 1, n > 0; got r_e={r_e}, q={q}, n={n}")
    bn = _b_n(n)
    cy, cx = size // 2 + offset[0], size // 2 + offset[1]

    def f(dy, dx):
        return _sersic_values(dy, dx, r_e, q, theta, n, bn)

    img = _integrate(f, size, cy, cx, oversample)
    iy, ix = int(round(cy)), int(round(cx))
    tiers = ((max(inner, 10), max(oversample, 9)), (inner, inner_oversample), (0, 5 * inner_oversample))
    for half, over in tiers:
        rows = np.arange(max(0, iy - half), min(size, iy + half + 1))
        cols = np.arange(max(0, ix - half), min(size, ix + half + 1))
        img[np.ix_(rows, cols)] = _integrate(f, size, cy, cx, over, rows, cols)
    return img / img.sum()


def _psf_values(dy, dx, fwhm, profile, beta):
    r2 = dy * dy + dx * dx
    if profile == "gaussian":
        sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        return np.exp(-0.5 * r2 / sigma**2)
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    return (1.0 + r2 / alpha**2) ** (-beta)


def psf_stamp(fwhm: float = 3.0, *, size: int = 25, profile: str = "moffat", beta: float = 3.0,
              offset: tuple[float, float] = (0.0, 0.0), oversample: int = 9) -> np.ndarray:
    """A pixel-integrated Gaussian or Moffat PSF centred at ``(size//2 + dy, size//2 + dx)``, sum 1.

    Parameters
    ----------
    fwhm : float, optional
        Full width at half maximum (pixels).
    size : int, optional
        Stamp side (odd keeps the centre on a pixel).
    profile : {"moffat", "gaussian"}, optional
    beta : float, optional
        Moffat index.
    offset : (float, float), optional
        Sub-pixel offset (dy, dx).
    oversample : int, optional
        Sub-pixels per axis.

    Returns
    -------
    numpy.ndarray
        float64 ``(size, size)``, sum 1.

    Examples
    --------
    >>> p = psf_stamp(3.0, size=15, profile="gaussian")
    >>> p.shape, round(float(p.sum()), 6), float(p[7, 7]) == float(p.max())
    ((15, 15), 1.0, True)
    """
    if profile not in ("moffat", "gaussian"):
        raise ParameterError(f"psf profile must be 'moffat' or 'gaussian', got {profile!r}")
    if not fwhm > 0 or size < 3:
        raise ParameterError(f"need fwhm > 0 and size >= 3; got fwhm={fwhm}, size={size}")
    img = _integrate(lambda dy, dx: _psf_values(dy, dx, fwhm, profile, beta), size,
                     size // 2 + offset[0], size // 2 + offset[1], oversample)
    return img / img.sum()


def fftconvolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``scipy.signal.fftconvolve(image, kernel, mode="same")`` for 2-D real arrays (numpy FFT only).

    Examples
    --------
    >>> a = np.zeros((9, 9)); a[4, 4] = 1.0
    >>> k = np.arange(9.0).reshape(3, 3)
    >>> bool(np.allclose(fftconvolve_same(a, k)[3:6, 3:6], k))
    True
    """
    s1, s2 = np.array(image.shape), np.array(kernel.shape)
    full = s1 + s2 - 1
    shape = [int(2 ** math.ceil(math.log2(f))) if f > 64 else int(f) for f in full]
    out = np.fft.irfft2(np.fft.rfft2(image, shape) * np.fft.rfft2(kernel, shape), shape)
    start = (s2 - 1) // 2
    return out[start[0]:start[0] + s1[0], start[1]:start[1] + s1[1]]


def _add(image: np.ndarray, stamp: np.ndarray, y0: int, x0: int) -> None:
    """Add ``stamp`` with its index (s//2, s//2) at image pixel (y0, x0), clipped to the image."""
    sy, sx = stamp.shape
    top, left = y0 - sy // 2, x0 - sx // 2
    ny, nx = image.shape
    a0, b0 = max(top, 0), max(left, 0)
    a1, b1 = min(top + sy, ny), min(left + sx, nx)
    if a1 <= a0 or b1 <= b0:
        return
    image[a0:a1, b0:b1] += stamp[a0 - top:a1 - top, b0 - left:b1 - left]


def _draw_params(rng, grid, on_grid, q_range, log_r_range):
    """(q, theta, log_r, q_idx, theta_idx, log_r_idx) of one galaxy."""
    if on_grid:
        qs = np.flatnonzero((grid["q"] >= q_range[0] - 1e-9) & (grid["q"] <= q_range[1] + 1e-9))
        rs = np.flatnonzero((grid["log_r"] >= log_r_range[0] - 1e-9) & (grid["log_r"] <= log_r_range[1] + 1e-9))
        ts = np.arange(len(grid["theta"]) - 1)  # 180 duplicates 0
        if len(qs) == 0 or len(rs) == 0:
            raise ParameterError(f"no grid point within q_range={q_range} / log_r_range={log_r_range}")
        iq, it, ir = int(rng.choice(qs)), int(rng.choice(ts)), int(rng.choice(rs))
        return float(grid["q"][iq]), float(grid["theta"][it]), float(grid["log_r"][ir]), iq, it, ir
    q = float(rng.uniform(*q_range))
    theta = float(rng.uniform(0.0, 180.0))
    log_r = float(rng.uniform(*log_r_range))
    return q, theta, log_r, -1, -1, -1


def simulate_field(*, shape: tuple[int, int] = (1024, 1024), n_galaxies: int = 40, n_stars: int = 15,
                   n_neighbours: int | None = None, psf_fwhm: float = 3.0, psf_profile: str = "moffat",
                   psf_beta: float = 3.0, psf_size: int = 25, noise: float = 1.0, sky: float = 10.0,
                   gain: float = 1.0, galaxy_flux: tuple[float, float] = (5e3, 5e4),
                   star_flux: tuple[float, float] = (5e3, 3e4), q_range: tuple[float, float] = (0.2, 1.0),
                   log_r_range: tuple[float, float] = (0.0, 1.0), on_grid: bool = True,
                   subpixel: bool = False, margin: int = 96, min_separation: float = 40.0,
                   neighbours: bool = True, n: float = 4.0, seed: int = 0, grid: dict | None = None):
    """Simulate one field of PSF-convolved Sérsic galaxies, stars and (optionally) close neighbours.

    Parameters
    ----------
    shape : (int, int), optional
        Image shape (ny, nx).
    n_galaxies, n_stars : int, optional
        Number of (primary) galaxies and of stars. Primary galaxies lie at least ``margin`` pixels
        inside the image, at least ``min_separation`` pixels from each other and from stars.
    n_neighbours : int, optional
        Number of fainter, smaller companion galaxies put 14-30 px from a random primary galaxy
        (default ``n_galaxies // 4`` when ``neighbours`` is true, else 0).
    psf_fwhm, psf_profile, psf_beta, psf_size : optional
        The PSF (:func:`psf_stamp`).
    noise : float, optional
        Standard deviation of the sky noise (counts).
    sky : float, optional
        Flat sky level added to the image (counts).
    gain : float, optional
        e-/count: source noise variance is ``source / gain``; ``0`` or ``inf`` disables it. Written
        to the header as ``GAIN``.
    galaxy_flux, star_flux : (float, float), optional
        Log-uniform flux ranges (counts).
    q_range, log_r_range : (float, float), optional
        Range of axis ratios and of log10 half-light radius (pixels) of primary galaxies.
    on_grid : bool, optional
        Draw q, theta and log_r from the grid values (``grid`` or :func:`default_grid`; theta never
        180) and record the grid indices, else uniformly (indices -1).
    subpixel : bool, optional
        Put galaxies at random sub-pixel positions (default: integer pixels). Stars always are.
    margin : int, optional
        Minimum distance of primary galaxies to the image edge.
    min_separation : float, optional
        Minimum distance between primary galaxies and stars.
    neighbours : bool, optional
        Add companion galaxies (see ``n_neighbours``).
    n : float, optional
        Sérsic index of all galaxies (4 = De Vaucouleurs).
    seed : int, optional
        Everything depends only on the seed (:func:`lazyastro.core.random.block_rng`).
    grid : dict, optional
        Grid of ``q``, ``theta``, ``log_r`` values for ``on_grid``.

    Returns
    -------
    image : numpy.ndarray
        float32 ``shape``.
    psf : numpy.ndarray
        float64 ``(psf_size, psf_size)``, sum 1, centred at ``psf_size // 2``.
    truth : astropy.table.Table
        One row per source: ``id``, ``x``, ``y`` (1-based), ``flux``, ``n``, ``q``, ``theta``,
        ``log_r``, ``r_e``, ``q_idx``, ``theta_idx``, ``log_r_idx``, ``is_star``, ``is_neighbour``;
        ``meta`` holds the simulation parameters.

    Raises
    ------
    ParameterError
        For invalid parameters or a field too small for the requested sources.

    Examples
    --------
    >>> img, psf, truth = simulate_field(shape=(256, 256), n_galaxies=2, n_stars=2, seed=1)
    >>> img.dtype, img.shape, len(truth), int(truth["is_star"].sum())
    (dtype('float32'), (256, 256), 4, 2)
    """
    from astropy.table import Table

    seed = check_seed(seed)
    ny, nx = (int(s) for s in shape)
    for name, v in (("n_galaxies", n_galaxies), ("n_stars", n_stars)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise ParameterError(f"{name} must be a non-negative integer, got {v!r}")
    if n_neighbours is None:
        n_neighbours = n_galaxies // 4 if neighbours else 0
    if not neighbours:
        n_neighbours = 0
    if ny < 2 * margin + 1 or nx < 2 * margin + 1:
        raise ParameterError(f"shape {shape} too small for margin {margin}")
    if noise < 0 or not np.isfinite(noise):
        raise ParameterError(f"noise must be >= 0, got {noise}")
    grid = default_grid() if grid is None else {k: np.asarray(v, float) for k, v in grid.items()}
    rng = block_rng(seed, 0, stream=0)
    noise_rng = block_rng(seed, 0, stream=1)
    psf = psf_stamp(psf_fwhm, size=psf_size, profile=psf_profile, beta=psf_beta)

    # positions: primaries inside the margin, stars anywhere but 15 px from the edge
    placed: list[tuple[float, float]] = []

    def place(lo_y, hi_y, lo_x, hi_x, integer):
        for _ in range(2000):
            y, x = rng.uniform(lo_y, hi_y), rng.uniform(lo_x, hi_x)
            if integer:
                y, x = float(round(y)), float(round(x))
            if all((y - py) ** 2 + (x - px) ** 2 >= min_separation**2 for py, px in placed):
                placed.append((y, x))
                return y, x
        raise ParameterError(f"cannot place {n_galaxies} galaxies and {n_stars} stars {min_separation} px "
                             f"apart in a {ny}x{nx} field (margin {margin}); use a larger shape")

    rows = []
    image = np.zeros((ny, nx), dtype=np.float64)
    size = BOXSIZE
    for _ in range(n_galaxies):
        y0, x0 = place(margin, ny - 1 - margin, margin, nx - 1 - margin, not subpixel)
        q, theta, log_r, iq, it, ir = _draw_params(rng, grid, on_grid, q_range, log_r_range)
        flux = float(np.exp(rng.uniform(np.log(galaxy_flux[0]), np.log(galaxy_flux[1]))))
        rows.append(dict(x=x0 + 1.0, y=y0 + 1.0, flux=flux, n=n, q=q, theta=theta, log_r=log_r,
                         q_idx=iq, theta_idx=it, log_r_idx=ir, is_star=False, is_neighbour=False))
    for _ in range(n_stars):
        y0, x0 = place(15, ny - 16, 15, nx - 16, False)
        flux = float(np.exp(rng.uniform(np.log(star_flux[0]), np.log(star_flux[1]))))
        rows.append(dict(x=x0 + 1.0, y=y0 + 1.0, flux=flux, n=0.0, q=1.0, theta=0.0, log_r=np.nan,
                         q_idx=-1, theta_idx=-1, log_r_idx=-1, is_star=True, is_neighbour=False))
    primaries = [r for r in rows if not r["is_star"]]
    for _ in range(n_neighbours if primaries else 0):
        host = primaries[int(rng.integers(len(primaries)))]
        d, ang = rng.uniform(14.0, 30.0), rng.uniform(0, 2 * np.pi)
        y0 = float(np.clip(round(host["y"] - 1 + d * np.sin(ang)), 0, ny - 1))
        x0 = float(np.clip(round(host["x"] - 1 + d * np.cos(ang)), 0, nx - 1))
        q, theta, log_r, _, _, _ = _draw_params(rng, grid, False, (0.3, 1.0), (-0.3, 0.5))
        flux = host["flux"] * float(rng.uniform(0.1, 0.5))
        rows.append(dict(x=x0 + 1.0, y=y0 + 1.0, flux=flux, n=n, q=q, theta=theta, log_r=log_r,
                         q_idx=-1, theta_idx=-1, log_r_idx=-1, is_star=False, is_neighbour=True))

    for r in rows:
        y0, x0 = r["y"] - 1.0, r["x"] - 1.0
        iy, ix = int(round(y0)), int(round(x0))
        off = (y0 - iy, x0 - ix)
        if r["is_star"]:
            stamp = r["flux"] * psf_stamp(psf_fwhm, size=psf_size, profile=psf_profile, beta=psf_beta,
                                          offset=off)
        else:
            model = sersic_stamp(10.0 ** r["log_r"], r["q"], r["theta"], n=r["n"], size=size, offset=off)
            stamp = r["flux"] * fftconvolve_same(model, psf)
        _add(image, stamp, iy, ix)

    var = np.full(image.shape, float(noise) ** 2)
    if gain and np.isfinite(gain) and gain > 0:
        var += np.clip(image, 0, None) / gain
    image += sky + np.sqrt(var) * noise_rng.standard_normal(image.shape)

    truth = Table(rows=rows, names=list(rows[0]) if rows else
                  ["x", "y", "flux", "n", "q", "theta", "log_r", "q_idx", "theta_idx", "log_r_idx",
                   "is_star", "is_neighbour"])
    truth.add_column(np.arange(1, len(truth) + 1), name="id", index=0)
    truth.add_column(10.0 ** np.asarray(truth["log_r"], float), name="r_e", index=9)
    truth.meta.update(dict(shape=[ny, nx], psf_fwhm=psf_fwhm, psf_profile=psf_profile, psf_beta=psf_beta,
                           noise=noise, sky=sky, gain=gain, seed=seed, on_grid=on_grid, boxsize=size,
                           centre="1-based x, y (SExtractor); 0-based pixel (y-1, x-1)"))
    return image.astype(np.float32), psf, truth


def write_tiles(directory: str | os.PathLike, *, n_tiles: int = 1, prefix: str = "tile", seed: int = 0,
                exptime: float = 1.0, overwrite: bool = True, **kwargs) -> list[dict[str, str]]:
    """Write simulated tiles in the legacy working-directory layout.

    Writes ``<directory>/Tiles/<name>.fits`` (float32 primary HDU, header ``GAIN``, ``EXPTIME``,
    ``PSF_FWHM``, ``SKYNOISE``), ``<directory>/Truth/<name>_truth.ecsv`` and
    ``<directory>/Truth/<name>_psf.fits`` (the true PSF). Tile ``i`` is named
    ``<prefix><i:02d>`` and uses seed ``block_rng(seed, i)``-derived draws, so tiles are independent.

    Parameters
    ----------
    directory : str or os.PathLike
        Working directory (created).
    n_tiles : int, optional
    prefix : str, optional
    seed : int, optional
    exptime : float, optional
        ``EXPTIME`` header value (the image stays in counts).
    overwrite : bool, optional
        Replace existing files (default true).
    **kwargs
        Passed to :func:`simulate_field`.

    Returns
    -------
    list of dict
        Per tile: ``name``, ``tile``, ``truth``, ``psf`` paths.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> out = write_tiles(d, shape=(256, 256), n_galaxies=1, n_stars=1)
    >>> Path(out[0]["tile"]).name
    'tile00.fits'
    """
    from astropy.io import fits

    from ..core.atomic import atomic_output

    seed = check_seed(seed)
    if isinstance(n_tiles, bool) or not isinstance(n_tiles, int | np.integer) or n_tiles < 1:
        raise ParameterError(f"n_tiles must be a positive integer, got {n_tiles!r}")
    root = Path(directory)
    (root / "Tiles").mkdir(parents=True, exist_ok=True)
    (root / "Truth").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_tiles):
        name = f"{prefix}{i:02d}"
        tile_seed = int(block_rng(seed, i, stream=2).integers(2**62))
        image, psf, truth = simulate_field(seed=tile_seed, **kwargs)
        hdr = fits.Header()
        hdr["GAIN"] = (float(truth.meta["gain"]), "e-/count (simulated)")
        hdr["EXPTIME"] = (float(exptime), "s")
        hdr["PSF_FWHM"] = (float(truth.meta["psf_fwhm"]), "PSF FWHM (pixels)")
        hdr["SKYNOISE"] = (float(truth.meta["noise"]), "sky noise rms (counts)")
        hdr["SIMSEED"] = (tile_seed, "lazyastro.dre.simulate seed")
        paths = {"name": name, "tile": str(root / "Tiles" / f"{name}.fits"),
                 "truth": str(root / "Truth" / f"{name}_truth.ecsv"),
                 "psf": str(root / "Truth" / f"{name}_psf.fits")}
        with atomic_output(paths["tile"], overwrite) as tmp:
            fits.PrimaryHDU(image, header=hdr).writeto(tmp, output_verify="silentfix")
        with atomic_output(paths["psf"], overwrite) as tmp:
            fits.PrimaryHDU(psf.astype(np.float32)).writeto(tmp)
        truth.meta["name"] = name
        with atomic_output(paths["truth"], overwrite) as tmp:
            truth.write(tmp, format="ascii.ecsv")
        out.append(paths)
    return out
