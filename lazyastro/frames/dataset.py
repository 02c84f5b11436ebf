"""Several statistics over frames as one lazy ``xarray.Dataset``.

The variables share the series' reads when computed or written together (one
pass), so ``lazyastro.to_fits(stats(s, [...]), "stats.fits")`` streams every
statistic image to a multi-extension FITS file (a Zarr group, an HDF5 file)
through the resumable writer engine.
"""

from __future__ import annotations

from collections.abc import Sequence

import xarray as xr

from ..core.errors import ParameterError
from .reductions import stat_by_name
from .series import as_series

__all__ = ["stats", "stat_variable_name", "parse_stat_list"]


def stat_variable_name(spec: str) -> str:
    """Variable name of a stat spec: ``percentile:99.5`` -> ``percentile_99.5``.

    >>> stat_variable_name(" Percentile:99.5 ")
    'percentile_99.5'
    """
    return spec.strip().lower().replace(":", "_")


def parse_stat_list(text: str | Sequence[str]) -> list[str]:
    """Stat specs from ``"max,mean,percentile:99"`` or a list; refuses empty and repeated names.

    >>> parse_stat_list("max, percentile:99")
    ['max', 'percentile:99']
    """
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise ParameterError("give at least one statistic, e.g. max,mean,percentile:99.5")
    keys = [stat_variable_name(n) for n in names]
    if len(set(keys)) != len(keys):
        raise ParameterError(f"a statistic is listed twice: {', '.join(names)}")
    return names


def stats(series, names: str | Sequence[str], *, nframes: int = 0, legacy: bool = False) -> xr.Dataset:
    """Lazy Dataset of statistics over frames, one variable per statistic.

    Parameters
    ----------
    series : DataArray, dask or NumPy array
        A ``(frame, y, x)`` series (see :func:`lazyastro.frames.open`).
    names : str or list of str
        Stat specs: ``max``, ``min``, ``sum``, ``mean``, ``std``, ``median``,
        ``percentile:Q``, and the ``nan*`` variants; a comma-separated string works.
    nframes : int, optional
        Use only the first ``nframes`` frames (0 = all).
    legacy : bool, optional
        Legacy float32 mean accumulation.

    Returns
    -------
    xarray.Dataset
        Variables named like ``max``, ``percentile_99.5`` on ``(y, x)``; the
        Dataset attrs carry the series' header (WCS included), ``nframes`` and
        ``legacy``. Nothing is computed.

    Raises
    ------
    ParameterError
        For an unknown, malformed or repeated statistic.

    Examples
    --------
    >>> import numpy as np
    >>> ds = stats(np.arange(24.0).reshape(4, 2, 3), "max,median")
    >>> sorted(ds.data_vars), ds["max"].values[1, 2]
    (['max', 'median'], np.float64(23.0))
    """
    specs = parse_stat_list(names)
    s = as_series(series, nframes)
    variables = {}
    for spec in specs:
        image = stat_by_name(s, spec, 0, legacy)
        name = stat_variable_name(spec)
        variables[name] = image.variable.copy()
        variables[name].attrs = {**image.attrs, "stat": name}
    attrs = {k: v for k, v in s.attrs.items() if k in ("header", "wcs", "source", "format")}
    attrs.update({"nframes": int(s.shape[0]), "legacy": int(bool(legacy))})
    return xr.Dataset(variables, attrs=attrs)
