"""Best-fit parameters from chi^2 cubes (spec section 6): the legacy summary columns and flags.

:func:`parameters` turns a chi^2 cube ``(object, n, q, theta, log_r)`` (from
:func:`lazyastro.dre.chi2` or a chi store) into a Dataset over ``object``; a dask-backed
cube gives a lazy Dataset (one task per block of objects), an in-memory one an eager
Dataset. The per-block kernel is :func:`parameters_block`.

>>> import numpy as np, xarray as xr
>>> c = np.full((1, 1, 2, 1, 5), 9.0); c[0, 0, 1, 0] = [5.0, 3.0, 2.0, 3.0, 5.0]
>>> chi = xr.DataArray(c, dims=("object", "n", "q", "theta", "log_r"),
...                    coords={"object": ["01_0007"], "n": [4.0], "q": [0.5, 1.0], "theta": [0.0],
...                            "log_r": np.linspace(0.0, 1.0, 5)})
>>> p = parameters(chi)
>>> p.MODEL_IDX.values.tolist(), float(p.LOGR[0]), int(p.NUMBER[0]), int(p.EXT_NUMBER[0])
([[0, 1, 0, 2]], 0.5, 7, 1)
>>> round(float(p.LOGR_PARAB[0]), 6), bool(p.FLAG_EDGE[0])
(0.5, True)
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..core.errors import ParameterError

__all__ = ["parameters", "parameters_block", "parabola", "FLOAT_COLUMNS", "FLAG_COLUMNS", "COLUMNS"]

GRID_DIMS = ("n", "q", "theta", "log_r")
#: float columns, in the legacy summary order (MODEL_IDX, EXT_NUMBER, NUMBER are integers)
FLOAT_COLUMNS = ("INDEX", "AX_RATIO", "ANGLE", "LOGR", "CHI", "CHI_STD", "LOGR_CHI", "LOGR_VAR",
                 "LOGR_CHI_VAR", "LOGR_PARAB", "LOGR_STD")
FLAG_COLUMNS = ("FLAG_EDGE", "FLAG_NEG_FLUX", "FLAG_ALL_NAN")
COLUMNS = ("MODEL_IDX", *FLOAT_COLUMNS, "EXT_NUMBER", "NUMBER", *FLAG_COLUMNS)
_KEY = re.compile(r"^(\d+)_(\d+)$")
#: packed kernel output: 4 indices, the float columns, FLAG_EDGE, FLAG_ALL_NAN
_NCOL = 4 + len(FLOAT_COLUMNS) + 2


def parabola(x: Any, y: Any) -> tuple[float, float, float]:
    """Exact parabola ``y = c + b x + a x^2`` through three points: ``(a, b, c)``.

    Examples
    --------
    >>> parabola([0.0, 1.0, 2.0], [1.0, 0.0, 1.0])
    (1.0, -2.0, 1.0)
    """
    x0, x1, x2 = (np.float64(v) for v in x)
    y0, y1, y2 = (np.float64(v) for v in y)
    with np.errstate(invalid="ignore", divide="ignore"):
        d01 = (y1 - y0) / (x1 - x0)
        d12 = (y2 - y1) / (x2 - x1)
        a = (d12 - d01) / (x2 - x0)
        b = d01 - a * (x0 + x1)
        c = y0 - b * x0 - a * x0 * x0
    return float(a), float(b), float(c)


def _parab(profile: np.ndarray, log_r: np.ndarray, r_min: int, *, log: bool) -> tuple[float, float]:
    """LOGR_PARAB, LOGR_STD from the chi^2 along log_r at the argmin's (n, q, theta).

    Spec section 6 with window 3: centre = the argmin's radius index clamped to
    [1, NLOGH - 2]; exact parabola on ln(chi^2) (``log=True``; the fork fits chi^2) of the
    three radii around it; ``x* = -b / (2a)``; x* not finite, outside the full log_r range
    or ``a < 0`` -> (NaN, NaN); x* outside the 3-point window -> (log_r[argmin], NaN)
    (the argmin, not the clamped centre: spec 12); else ``(x*, 1 / sqrt(2a))``. "Outside"
    is strict (a vertex on the boundary is inside).
    """
    nr = log_r.shape[0]
    if nr < 3:
        return np.nan, np.nan
    c = min(max(r_min, 1), nr - 2)
    xs = log_r[c - 1:c + 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        ys = np.log(profile[c - 1:c + 2]) if log else profile[c - 1:c + 2]
        a, b, _ = parabola(xs, ys)
        xv = np.float64(-b) / np.float64(2.0 * a)
    lo, hi = min(log_r[0], log_r[-1]), max(log_r[0], log_r[-1])
    if not np.isfinite(xv) or not (a >= 0.0) or xv < lo or xv > hi:
        return np.nan, np.nan
    if xv < min(xs[0], xs[2]) or xv > max(xs[0], xs[2]):
        return float(log_r[r_min]), np.nan
    with np.errstate(divide="ignore"):
        return float(xv), float(1.0 / np.sqrt(2.0 * a))


def _edge_axes(grid: dict[str, np.ndarray]) -> tuple[bool, ...]:
    """Which grid axes have edges: size > 1, and theta only if it does not cover 180 degrees."""
    out = []
    for name in GRID_DIMS:
        vals = np.asarray(grid[name], dtype=float)
        has = vals.size > 1
        if name == "theta" and has:
            step = abs(vals[1] - vals[0])
            span = abs(vals[-1] - vals[0])
            has = span + step < 180.0 - 1e-6 * max(step, 1.0)
        out.append(has)
    return tuple(out)


def parameters_block(chi: Any, grid: dict[str, Any], *, mode: str = "default",
                     parabola_on: str = "log") -> np.ndarray:
    """The parameter columns of a block of chi^2 cubes, packed as float64.

    Parameters
    ----------
    chi : array (N, n, q, theta, log_r)
        The chi^2 cubes (numpy; CuPy is copied to the host).
    grid : dict
        ``n``, ``q``, ``theta``, ``log_r`` grid values.
    mode : {"default", "legacy"}
        ``"legacy"``: ``CHI_STD`` is ``std`` and the weighted radii plain sums (any NaN
        propagates). ``"default"``: ``nanstd``, and the weighted radii sum over the
        finite, non-zero chi^2 only.
    parabola_on : {"log", "chi"}
        Fit the parabola on ln chi^2 (legacy) or on chi^2 (the fork).

    Returns
    -------
    ndarray (N, 17) float64
        MODEL_IDX (4, -1 for an all-NaN cube), the :data:`FLOAT_COLUMNS`, FLAG_EDGE,
        FLAG_ALL_NAN.

    Examples
    --------
    >>> g = {"n": [4.0], "q": [1.0], "theta": [0.0], "log_r": [0.0, 1.0, 2.0]}
    >>> row = parameters_block(np.array([[[[[2.0, 1.0, 2.0]]]]]), g)[0]
    >>> row[:4].tolist(), float(row[7])
    ([0.0, 0.0, 0.0, 1.0], 1.0)
    """
    from ..core.backend import to_numpy

    if mode not in ("default", "legacy"):
        raise ParameterError(f"mode must be 'default' or 'legacy', got {mode!r}")
    if parabola_on not in ("log", "chi"):
        raise ParameterError(f"parabola_on must be 'log' or 'chi', got {parabola_on!r}")
    c = np.asarray(to_numpy(chi), dtype=np.float64)
    if c.ndim != 5:
        raise ParameterError(f"chi must be (object, n, q, theta, log_r), got shape {c.shape}")
    vals = [np.asarray(grid[d], dtype=np.float64) for d in GRID_DIMS]
    shape = c.shape[1:]
    if tuple(v.size for v in vals) != shape:
        raise ParameterError(f"grid sizes {[v.size for v in vals]} do not match the chi cube {shape}")
    log_r = vals[3]
    edges = _edge_axes(dict(zip(GRID_DIMS, vals)))
    radius = 10.0 ** log_r  # broadcast on the last axis
    out = np.full((c.shape[0], _NCOL), np.nan)
    for j in range(c.shape[0]):
        cj = c[j]
        finite = ~np.isnan(cj)
        if not finite.any():
            out[j, :4] = -1
            out[j, -2] = 0.0
            out[j, -1] = 1.0
            continue
        flat = int(np.nanargmin(cj))
        idx = np.unravel_index(flat, shape)
        gvals = [vals[a][idx[a]] for a in range(4)]
        chi_min = cj[idx]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if mode == "legacy":
                chi_std = np.std(cj)
                w = 1.0 / cj
                rr = np.broadcast_to(radius, cj.shape)
                sw = np.sum(w)
                logr_chi = np.log10(np.sum(rr * w) / sw)
                rmin = 10.0 ** gvals[3]
                logr_var = np.log10(np.sum((rr - rmin) ** 2 * w) / sw)
                rchi = 10.0 ** logr_chi
                logr_chi_var = np.log10(np.sum((rr - rchi) ** 2 * w) / sw)
            else:
                chi_std = np.nanstd(cj)
                w = 1.0 / cj
                ok = np.isfinite(w)
                w = np.where(ok, w, 0.0)
                rr = np.broadcast_to(radius, cj.shape)
                sw = np.sum(w)
                logr_chi = np.log10(np.sum(rr * w) / sw)
                rmin = 10.0 ** gvals[3]
                logr_var = np.log10(np.sum((rr - rmin) ** 2 * w) / sw)
                rchi = 10.0 ** logr_chi
                logr_chi_var = np.log10(np.sum((rr - rchi) ** 2 * w) / sw)
        parab, std = _parab(cj[idx[0], idx[1], idx[2], :], log_r, int(idx[3]),
                            log=parabola_on == "log")
        edge = any(has and (i == 0 or i == n - 1) for has, i, n in zip(edges, idx, shape))
        out[j, :4] = idx
        out[j, 4:4 + len(FLOAT_COLUMNS)] = [*gvals, chi_min, chi_std, logr_chi, logr_var,
                                            logr_chi_var, parab, std]
        out[j, -2] = float(edge)
        out[j, -1] = 0.0
    return out


def _numbers(chi) -> tuple[np.ndarray, np.ndarray]:
    """EXT_NUMBER, NUMBER from the coords, else parsed from the ``EE_NNNN`` object keys."""
    if "number" in chi.coords:
        num = np.asarray(chi.coords["number"].values, dtype=np.int64)
        ext = (np.asarray(chi.coords["ext_number"].values, dtype=np.int64)
               if "ext_number" in chi.coords else np.zeros_like(num))
        return ext, num
    if "object" not in chi.coords:
        raise ParameterError("chi: no number/ext_number coords and no object keys to parse")
    ext, num = [], []
    for key in np.asarray(chi.coords["object"].values):
        m = _KEY.match(str(key))
        if m is None:
            raise ParameterError(f"chi: object key {key!r} is not EE_NNNN (and no number coord)")
        ext.append(int(m.group(1)))
        num.append(int(m.group(2)))
    return np.asarray(ext, np.int64), np.asarray(num, np.int64)


def parameters(chi: Any, *, mode: str = "default", parabola_on: str = "log"):
    """The legacy summary columns and the flags of every object's chi^2 cube.

    Parameters
    ----------
    chi : xarray.DataArray
        Dims ``(object, n, q, theta, log_r)`` with the grid coords (as from
        :func:`lazyastro.dre.chi2`); dask-backed gives a lazy result. A coord ``flux`` along
        ``object`` (the data flux ``F_d``, added by :func:`~lazyastro.dre.chi2`) gives
        ``FLAG_NEG_FLUX``; without it the flag is False.
    mode : {"default", "legacy"}
        ``"legacy"``: plain ``std`` and sums (a NaN anywhere in the cube makes ``CHI_STD``
        and the ``LOGR_*`` weighted radii NaN, as the legacy tool). ``"default"``: nan-aware
        (``nanstd``; weighted radii over the finite, non-zero chi^2).
    parabola_on : {"log", "chi"}
        Parabola on ln chi^2 (legacy) or on chi^2 (the fork variant).

    Returns
    -------
    xarray.Dataset
        Over ``object``: ``MODEL_IDX`` (object, 4) int64 (n, q, theta, log_r indices of
        ``nanargmin``; -1 for an all-NaN cube), ``INDEX``, ``AX_RATIO``, ``ANGLE``, ``LOGR``
        (grid values there), ``CHI`` (``nanmin``), ``CHI_STD``, ``LOGR_CHI``, ``LOGR_VAR``,
        ``LOGR_CHI_VAR``, ``LOGR_PARAB``, ``LOGR_STD`` (float64), ``EXT_NUMBER``,
        ``NUMBER`` (int64, from the coords or the ``EE_NNNN`` keys) and the bool flags
        ``FLAG_EDGE`` (argmin on an edge of any grid axis of more than one value; theta
        only when the grid does not cover 180 degrees, which is periodic),
        ``FLAG_NEG_FLUX`` (``flux < 0``), ``FLAG_ALL_NAN`` (all-NaN cube; its other columns
        are NaN).

    Raises
    ------
    ParameterError
        Wrong dims, missing grid coords, keys that are not ``EE_NNNN`` without number
        coords, an unknown mode.

    Examples
    --------
    See the module docstring.
    """
    import dask.array as da
    import xarray as xr

    if mode not in ("default", "legacy"):
        raise ParameterError(f"mode must be 'default' or 'legacy', got {mode!r}")
    if not (hasattr(chi, "dims") and hasattr(chi, "variable")):
        raise ParameterError("chi must be an xarray.DataArray (object, n, q, theta, log_r)")
    if set(chi.dims) != {"object", *GRID_DIMS}:
        raise ParameterError(f"chi: dims must be (object, n, q, theta, log_r), got {chi.dims}")
    missing = [d for d in GRID_DIMS if d not in chi.coords]
    if missing:
        raise ParameterError(f"chi: no grid coords {missing}")
    chi = chi.transpose("object", *GRID_DIMS)
    grid = {d: np.asarray(chi.coords[d].values, dtype=np.float64) for d in GRID_DIMS}
    ext, num = _numbers(chi)
    nobj = chi.sizes["object"]
    data = chi.data
    if isinstance(data, da.Array):
        data = data.rechunk({1: -1, 2: -1, 3: -1, 4: -1})
        packed = data.map_blocks(parameters_block, grid, mode=mode, parabola_on=parabola_on,
                                 drop_axis=[2, 3, 4], chunks=(data.chunks[0], (_NCOL,)),
                                 dtype=np.float64, meta=np.empty((0, 0), np.float64))
    else:
        packed = parameters_block(data, grid, mode=mode, parabola_on=parabola_on)
    nf = len(FLOAT_COLUMNS)
    variables: dict[str, Any] = {"MODEL_IDX": (("object", "model_axis"), packed[:, :4].astype(np.int64))}
    for i, name in enumerate(FLOAT_COLUMNS):
        variables[name] = ("object", packed[:, 4 + i])
    variables["EXT_NUMBER"] = ("object", ext)
    variables["NUMBER"] = ("object", num)
    variables["FLAG_EDGE"] = ("object", packed[:, 4 + nf] > 0)
    if "flux" in chi.coords:
        flux = chi.coords["flux"].data
        variables["FLAG_NEG_FLUX"] = ("object", flux < 0)
    else:
        variables["FLAG_NEG_FLUX"] = ("object", np.zeros(nobj, bool))
    variables["FLAG_ALL_NAN"] = ("object", packed[:, 5 + nf] > 0)
    coords: dict[str, Any] = {"model_axis": list(GRID_DIMS)}
    if "object" in chi.coords:
        coords["object"] = chi.coords["object"].values
    return xr.Dataset(variables, coords=coords, attrs={"mode": mode, "parabola_on": parabola_on})
