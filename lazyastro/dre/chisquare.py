"""The chi^2 of every object of a cuts Dataset against every convolved model, lazily.

:func:`chi2` wires the compiled kernel (:func:`lazyastro.dre.kernels.chi2_block`) into one
dask task per block of objects. The formula, the ``"legacy"``/``"default"`` modes and the
``"model"``/``"psf"`` variances are described in :mod:`lazyastro.dre.kernels`.

>>> import numpy as np, xarray as xr
>>> models = xr.DataArray(np.random.default_rng(0).random((1, 2, 1, 3, 16, 16), dtype="f4"),
...                       dims=("n", "q", "theta", "log_r", "y", "x"),
...                       coords={"n": [4.0], "q": [0.5, 1.0], "theta": [0.0], "log_r": [0.0, 0.5, 1.0]})
>>> cuts = xr.Dataset({"obj": (("object", "y", "x"), 3 * models.values[0, 1, 0, 2][None]),
...                    "seg": (("object", "y", "x"), np.ones((1, 16, 16), bool)),
...                    "rms": (("object", "y", "x"), np.ones((1, 16, 16), "f4"))},
...                   coords={"object": ["00_0001"]})
>>> chi = chi2(models, cuts)
>>> chi.dims, chi.shape
(('object', 'n', 'q', 'theta', 'log_r'), (1, 1, 2, 1, 3))
>>> [int(i) for i in np.unravel_index(np.nanargmin(chi.values), chi.shape)]
[0, 0, 1, 0, 2]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.backend import array_namespace, meta_like
from ..core.errors import ParameterError
from . import kernels as K

__all__ = ["chi2", "GRID_DIMS", "EXTRA_COORDS"]

#: the model-grid dims of a convolved cube and of the chi^2 cube (after ``object``)
GRID_DIMS = ("n", "q", "theta", "log_r")
#: per-object coords :func:`chi2` adds (the kernel's by-products)
EXTRA_COORDS = ("flux", "npix", "n_excluded")
_DEFAULT_BLOCK = 64


def _single(x):
    """The one block of a contracted blockwise index (given as nested lists, never concatenated:
    concatenating a single block would copy it, and the cube must be read in place)."""
    while isinstance(x, list):
        if len(x) != 1:
            raise ValueError("expected a single block")  # chi2 rechunks so this cannot happen
        x = x[0]
    return x


def _block(obj, seg, rms, cube, extremes, *, mode, variance, psf_sum_sq, exposure, ddof):
    """One block of objects -> (N, K + 3) float64: chi^2 columns, then flux, npix, n_excluded."""
    obj, seg, rms, cube, extremes = (_single(x) for x in (obj, seg, rms, cube, extremes))
    cube = cube.reshape(cube.shape[0], *obj.shape[-2:])  # a view
    res = K.chi2_block(obj, seg, rms, cube, mode=mode, variance=variance, psf_sum_sq=psf_sum_sq,
                       exposure=exposure, ddof=ddof, model_range=(extremes[:, 0], extremes[:, 1]))
    xp = array_namespace(res.chi)
    n = res.chi.shape[0]
    out = xp.empty((n, res.chi.shape[1] + 3), xp.float64)
    out[:, :-3] = res.chi
    out[:, -3] = res.flux
    out[:, -2] = res.npix
    out[:, -1] = res.n_excluded
    return out


def _read_only(block):
    """A read-only view of the cube block: no task can change the shared cube."""
    if isinstance(block, np.ndarray):
        view = block.view()
        view.flags.writeable = False
        return view
    return block


def _extremes(block):
    """(K, 2) per-model minimum and maximum of the cube (one task per cube)."""
    lo, hi = K.model_extremes(block)
    xp = array_namespace(block)
    return xp.stack([lo, hi], axis=1)


def _check_inputs(convolved, cuts):
    if not (hasattr(convolved, "dims") and hasattr(convolved, "variable")):
        raise ParameterError("convolved must be an xarray.DataArray (n, q, theta, log_r, y, x)")
    missing = [d for d in (*GRID_DIMS, "y", "x") if d not in convolved.dims]
    if missing or convolved.ndim != 6:
        raise ParameterError(f"convolved: dims must be (n, q, theta, log_r, y, x), got {convolved.dims}")
    if not hasattr(cuts, "data_vars"):
        raise ParameterError("cuts must be an xarray.Dataset with obj, seg, rms on (object, y, x)")
    box = (convolved.sizes["y"], convolved.sizes["x"])
    for name in ("obj", "seg", "rms"):
        if name not in cuts.data_vars:
            raise ParameterError(f"cuts: no variable {name!r} (need obj, seg, rms)")
        var = cuts[name]
        if set(var.dims) != {"object", "y", "x"}:
            raise ParameterError(f"cuts.{name}: dims must be (object, y, x), got {var.dims}")
        shape = (var.sizes["y"], var.sizes["x"])
        if shape != box:
            raise ParameterError(f"cuts.{name}: cut size {shape} differs from the model box {box}")
    return box


def _in_place(arr, prefix: str):
    """A one-chunk dask array whose single block *is* ``arr`` (no copy, no hashing).

    ``dask.array.from_array`` copies in-memory arrays (and hashes them for the name); a
    graph holding the array itself as its one key keeps the cube in place (the name is
    unique per call, ``uuid``-based).
    """
    import uuid

    import dask.array as da

    name = f"{prefix}-{uuid.uuid4().hex}"
    return da.Array({(name,) + (0,) * arr.ndim: arr}, name, chunks=tuple((n,) for n in arr.shape),
                    dtype=arr.dtype, meta=meta_like(arr, ndim=arr.ndim, dtype=arr.dtype))


def _as_blocks(var, block: int):
    import dask.array as da

    data = var.transpose("object", "y", "x").data
    if not isinstance(data, da.Array):
        xp = array_namespace(data)
        data = _in_place(xp.asarray(data), "dre-cuts")
    return data.rechunk((block, -1, -1))


def chi2(convolved: Any, cuts: Any, *, mode: str = "default", variance: str = "model",
         exposure: float = 1.0, ddof: int = 0, objects_per_block: int | None = None):
    """The reduced chi^2 of every object against every convolved model (lazy).

    One dask task per block of objects runs the compiled kernel over (model, mask pixel)
    (:func:`lazyastro.dre.kernels.chi2_block`; CuPy blocks run the CUDA form).

    **The cube is shared, not copied.** The convolved cube enters the graph once, as a
    single-chunk dask array (in-memory input is wrapped once; a lazy one is computed once),
    and every object task depends on that one key. Under the threaded scheduler all tasks
    read the same read-only float32 array in place (the kernel releases the GIL). Under
    ``distributed`` the key is computed (or scattered) once and each worker fetches it once
    and keeps it while its tasks run. The local *processes* scheduler ships the
    dependencies of each task to the worker process with the task, so there the cube
    (179 MB for the legacy grid) is pickled per task: prefer threads (the kernel is
    ``nogil``) or ``distributed`` for many blocks.

    Parameters
    ----------
    convolved : xarray.DataArray
        Convolved models, dims ``(n, q, theta, log_r, y, x)`` (any order), numpy, CuPy or
        dask backed; ``attrs["psf_sum_sq"]`` is needed by ``variance="psf"``.
    cuts : xarray.Dataset
        ``obj`` (float), ``seg`` (bool mask), ``rms`` (float) on ``(object, y, x)`` with the
        model box as ``(y, x)``; coords along ``object`` (``object``, ``ext_number``,
        ``number``, ...) are kept. NaN pixels are handled (see the modes).
    mode : {"default", "legacy"}
        ``"legacy"``: the legacy formula (flux over the mask with ``nansum``, ``nanmean``
        of the terms). ``"default"``: only mask pixels with finite data and rms count (in the
        fluxes too), terms with a non-positive variance are left out and counted.
    variance : {"model", "psf"}
        ``s m + rms^2`` (legacy) or the fork's ``s m sum(PSF^2) / exposure + rms^2``.
    exposure : float
        ``t_exp`` of ``variance="psf"``.
    ddof : int
        Default mode only: the mean divides by ``count - ddof``.
    objects_per_block : int, optional
        Objects per task (default: the cuts' chunks along ``object`` if dask backed, else 64).

    Returns
    -------
    xarray.DataArray
        ``chi2``, dims ``(object, n, q, theta, log_r)``, float32, lazy (dask), with the
        grid coords of ``convolved``, the per-object coords of ``cuts`` and three more
        per-object coords: ``flux`` (``F_d``, float64; its sign gives ``FLAG_NEG_FLUX``),
        ``npix`` (pixels in the mean) and ``n_excluded`` ((model, pixel) terms left out for
        a non-positive variance, default mode). An all-NaN object gives an all-NaN row.
        ``attrs``: ``mode``, ``variance``, ``exposure``, ``ddof`` (and ``psf_sum_sq``).

    Raises
    ------
    ParameterError
        Wrong dims, a missing cuts variable, a cut size that is not the model box (naming
        the variable), an unknown mode/variance, ``variance="psf"`` without
        ``psf_sum_sq``, a bad ``exposure``/``ddof``/``objects_per_block``.

    Examples
    --------
    See the module docstring.
    """
    import dask.array as da
    import xarray as xr

    K.check_mode(mode)
    K.check_variance(variance)
    box = _check_inputs(convolved, cuts)
    psf_sum_sq = convolved.attrs.get("psf_sum_sq")
    psf_sum_sq = None if psf_sum_sq is None else float(np.asarray(psf_sum_sq))
    K._variance_factor(variance, psf_sum_sq, float(exposure))  # validates
    if int(ddof) != ddof or ddof < 0 or (mode == "legacy" and ddof):
        raise ParameterError(f"ddof must be 0 in legacy mode and a non-negative integer otherwise, got {ddof!r}")
    conv = convolved.transpose(*GRID_DIMS, "y", "x")
    grid = tuple(conv.sizes[d] for d in GRID_DIMS)
    nmod = int(np.prod(grid))
    npix = box[0] * box[1]

    data = conv.data
    if isinstance(data, da.Array):
        cube = data.astype(np.float32).reshape(nmod, npix).rechunk((nmod, npix))
    else:
        xp = array_namespace(data)
        arr = xp.ascontiguousarray(xp.asarray(data, dtype=xp.float32).reshape(nmod, npix))
        cube = _in_place(arr, "dre-cube")
    cube = cube.map_blocks(_read_only, dtype=np.float32, meta=cube._meta)
    extremes = cube.map_blocks(_extremes, chunks=((nmod,), (2,)), dtype=np.float64,
                               meta=meta_like(cube, ndim=2, dtype=np.float64))

    nobj = cuts.sizes["object"]
    if objects_per_block is None:
        odata = cuts["obj"].data
        if isinstance(odata, da.Array) and nobj:
            block = int(odata.chunks[cuts["obj"].dims.index("object")][0])
        else:
            block = _DEFAULT_BLOCK
    else:
        block = int(objects_per_block)
        if block < 1 or block != objects_per_block:
            raise ParameterError(f"objects_per_block must be a positive integer, got {objects_per_block!r}")
    block = max(1, min(block, max(nobj, 1)))
    obj, seg, rms = (_as_blocks(cuts[name], block) for name in ("obj", "seg", "rms"))

    out = da.blockwise(
        _block, "oc", obj, "oyx", seg, "oyx", rms, "oyx", cube, "kp", extremes, "ke",
        new_axes={"c": nmod + 3}, concatenate=False, dtype=np.float64,
        meta=meta_like(cube, ndim=2, dtype=np.float64),
        mode=mode, variance=variance, psf_sum_sq=psf_sum_sq, exposure=float(exposure),
        ddof=int(ddof))
    chi = out[:, :nmod].astype(np.float32).reshape((nobj, *grid))

    coords: dict[str, Any] = {d: conv.coords[d] for d in GRID_DIMS if d in conv.coords}
    for name, c in cuts.coords.items():
        if c.dims == ("object",):
            coords[name] = c
    if "object" not in coords:
        coords["object"] = ("object", np.arange(nobj))
    coords["flux"] = ("object", out[:, nmod])
    coords["npix"] = ("object", out[:, nmod + 1].astype(np.int64))
    coords["n_excluded"] = ("object", out[:, nmod + 2].astype(np.int64))
    attrs = {"mode": mode, "variance": variance, "exposure": float(exposure), "ddof": int(ddof)}
    if psf_sum_sq is not None:
        attrs["psf_sum_sq"] = psf_sum_sq
    return xr.DataArray(chi, dims=("object", *GRID_DIMS), coords=coords, name="chi2", attrs=attrs)
