"""The statistics cache of an image set (legacy ``StatMaker`` layout), resumable and checked.

Layout (legacy, HDF5; the same paths in a Zarr group for a ``.zarr`` cache), ``<b>`` the
batch number:

=============================  ==================  =======================================
``spectra/<b>``                (n_b, R) float64    power spectrum per image
``logspectra/<b>``             (n_b, R) float64    ``log10(max(psd, 1))`` (legacy clip)
``logintensityhistograms/<b>`` (bins,) int64       log10 pixel histogram of the batch
``droppedpixels/<b>``          (5,) int64          non-positive, NaN, below, above, total
``mf2d/<b>``                   (3, n_b, T) float64 F, U, chi per image and threshold
=============================  ==================  =======================================

Root attributes record what the numbers depend on (batch size, image count and shape,
``lognorminfo``, mode, thresholds, histogram bins); :func:`compute_statistics` refuses a
cache written with other values instead of mixing them (the legacy tool did not check).

Resume: batches are computed in parallel by the scheduler; each finished batch is saved
atomically beside the cache (``<cache>.partial.batches/``) and recorded in a
:class:`~lazyastro.core.stream.RegionRecord`; the cache file itself is only ever
replaced by an atomic rename once every batch is there. A ``kill -9`` at any moment and a
rerun therefore give the same final contents, recomputing only unfinished batches.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from . import kernels as K

__all__ = ["StatCache", "compute_statistics", "aggregate", "ks_tests", "spectrum_histograms",
           "CacheMismatchError", "STATISTICS", "GROUPS"]

#: statistics names (legacy ``update-statmaker-cache.py``) -> the cache groups they fill
STATISTICS = {"psd": ("spectra", "logspectra"), "intensityhistogram": ("logintensityhistograms", "droppedpixels"),
              "mf2d": ("mf2d",)}
GROUPS = tuple(g for gs in STATISTICS.values() for g in gs)
_LAYOUT_VERSION = 1


class CacheMismatchError(LazyAstroError):
    """The cache was written for another image set, batch size or parameters."""


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" or (path.is_dir() and (path / "zarr.json").exists())


# --------------------------------------------------------------------------- cache file I/O


def _read(path: Path) -> tuple[dict, dict[str, dict[int, np.ndarray]]]:
    """``(attrs, {group: {batch: array}})`` of an existing cache (empty when absent)."""
    groups: dict[str, dict[int, np.ndarray]] = {g: {} for g in GROUPS}
    if not path.exists():
        return {}, groups
    try:
        if _is_zarr(path):
            import zarr

            root = zarr.open_group(str(path), mode="r")
            attrs = dict(root.attrs)
            for g in GROUPS:
                if g in root:
                    for k, arr in root[g].arrays():
                        groups[g][int(k)] = np.asarray(arr[...])
        else:
            from ..io.hdf5 import open_h5file

            with open_h5file(path) as f:
                attrs = {k: json.loads(v) if isinstance(v, str) else v for k, v in f.attrs.items()}
                for g in GROUPS:
                    if g in f:
                        for k in f[g]:
                            groups[g][int(k)] = f[g][k][()]
    except LazyAstroError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise FormatError(f"not a readable statistics cache ({exc})", path) from None
    params = attrs.get("lazyastro_params")
    if isinstance(params, str):
        params = json.loads(params)
    return ({"params": params} if params else {}), groups


def _write(path: Path, params: dict, groups: dict[str, dict[int, np.ndarray]]) -> None:
    """Write the whole cache under a temporary name and rename it into place."""
    from ..core.atomic import atomic_output

    with atomic_output(path, overwrite=True) as tmp:
        if _is_zarr(path):
            import zarr

            root = zarr.open_group(str(tmp), mode="w")
            root.attrs["lazyastro_params"] = params
            for g in GROUPS:
                grp = root.require_group(g)
                for b in sorted(groups[g]):
                    grp.create_array(str(b), data=groups[g][b])
        else:
            from ..io.hdf5_write import new_file

            with new_file(tmp) as f:  # no object times: the same statistics give the same bytes
                f.attrs["lazyastro_params"] = json.dumps(params, sort_keys=True)
                for k in ("batch_size", "n_images"):
                    f.attrs[k] = params[k]
                for g in GROUPS:
                    grp = f.create_group(g, track_order=False)  # never time-stamped (h5py's global track_order)
                    for b in sorted(groups[g]):
                        grp.create_dataset(str(b), data=groups[g][b])
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())


# --------------------------------------------------------------------------- per-batch work


def batch_statistics(block: np.ndarray, which: tuple[str, ...], params: dict) -> dict[str, np.ndarray]:
    """The cache entries of one batch of images (a kernel: numpy or CuPy in, numpy out).

    Examples
    --------
    >>> import numpy as np
    >>> p = {"mode": "legacy", "lognorminfo": [0.0, 1.0], "thresholds": [0.0], "bins": 10,
    ...      "range": [-5.0, 10.0]}
    >>> sorted(batch_statistics(np.ones((2, 8, 8)), ("psd",), p))
    ['logspectra', 'spectra']
    """
    from ..core.backend import array_namespace, to_numpy

    xp = array_namespace(block)
    out: dict[str, np.ndarray] = {}
    mode = params["mode"]
    if "psd" in which:
        psd = K.power_spectrum(block, mode=mode)
        floor = 1.0 if mode == "legacy" else np.finfo(np.float64).tiny
        out["spectra"] = to_numpy(psd)
        out["logspectra"] = to_numpy(xp.log10(xp.maximum(psd, floor)))
    if "intensityhistogram" in which:
        vec = to_numpy(K.histogram_block(block, bins=params["bins"], range=tuple(params["range"])))
        out["logintensityhistograms"] = vec[:-5].astype(np.int64)
        out["droppedpixels"] = vec[-5:].astype(np.int64)
    if "mf2d" in which:
        norm = K.log_normalise(block, params["lognorminfo"])
        if mode != "legacy" and bool(xp.isnan(norm).any()):
            raise ParameterError("images have NaN or negative pixels (cannot be log-normalised)")
        mf = K.minkowski_block(norm, np.asarray(params["thresholds"]), convention=mode)
        out["mf2d"] = np.ascontiguousarray(to_numpy(mf).transpose(1, 0, 2))
    return out


def _stage_task(block, which, params, stage: str, b: int, record) -> int:
    stats = batch_statistics(block, which, params)
    for name, arr in stats.items():
        final = Path(stage) / f"{name}-{b}.npy"
        tmp = final.with_name(f"{final.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    for w in which:
        record.mark_done(f"{w}-{b}")
    return b


# --------------------------------------------------------------------------- the cache object


class StatCache:
    """The statistics of one image set, read from a cache (legacy HDF5 or Zarr).

    Parameters
    ----------
    path : path-like
        The cache file (or ``.zarr`` directory).
    name : str, optional
        Label of the set in plots (default: the file stem).

    Raises
    ------
    InputNotFoundError, FormatError

    Examples
    --------
    >>> StatCache("/nonexistent.h5")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    InputNotFoundError: /nonexistent.h5: no such statistics cache
    """

    def __init__(self, path: str | os.PathLike, *, name: str | None = None):
        self.path = Path(os.fspath(path))
        if not self.path.exists():
            raise InputNotFoundError("no such statistics cache", self.path)
        attrs, self.groups = _read(self.path)
        self.params = attrs.get("params") or {}
        self.name = name or self.path.stem
        self.batches = sorted(self.groups["mf2d"] or self.groups["spectra"] or self.groups["logintensityhistograms"])

    def _stack(self, group: str, axis: int = 0) -> np.ndarray:
        parts = [self.groups[group][b] for b in sorted(self.groups[group])]
        if not parts:
            raise FormatError(f"the cache has no {group!r} statistics", self.path)
        return np.concatenate(parts, axis=axis)

    @property
    def n_images(self) -> int:
        return int(self.params.get("n_images") or self.log_spectra().shape[0])

    def spectra(self) -> np.ndarray:
        """Power spectra ``(image, k)``."""
        return self._stack("spectra")

    def log_spectra(self) -> np.ndarray:
        """``log10`` spectra ``(image, k)`` (legacy: clipped at power 1)."""
        return self._stack("logspectra")

    def minkowski(self) -> np.ndarray:
        """Functionals ``(3, image, threshold)``."""
        return self._stack("mf2d", axis=1)

    def thresholds(self) -> np.ndarray:
        """The Minkowski thresholds (legacy: ``linspace(-1, 1, 100)``)."""
        t = self.params.get("thresholds")
        return np.asarray(t, dtype=np.float64) if t is not None else np.linspace(-1.0, 1.0, 100)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """``(edges, summed counts)`` of the log10 pixel histograms."""
        counts = sum(self.groups["logintensityhistograms"][b] for b in self.batches)
        if isinstance(counts, int):
            raise FormatError("the cache has no intensity histograms", self.path)
        bins = len(counts)
        lo, hi = self.params.get("range", [-5.0, 10.0])
        return np.linspace(lo, hi, bins + 1), np.asarray(counts)

    def dropped(self) -> dict[str, int]:
        """Pixels left out of the histograms, by reason (summed over batches)."""
        from .stats import HIST_TAIL

        tot = sum(self.groups["droppedpixels"][b] for b in self.groups["droppedpixels"])
        return dict(zip(HIST_TAIL, (int(v) for v in np.atleast_1d(tot)))) if not isinstance(tot, int) else {}

    def __repr__(self) -> str:
        return f"<StatCache {self.name!r}: {len(self.batches)} batches, {self.path}>"


# --------------------------------------------------------------------------- computing


def _fingerprint_params(images, *, batch_size, mode, thresholds, bins, range_, lognorminfo, source) -> dict:
    thr = [float(t) for t in np.asarray(thresholds, dtype=np.float64).ravel()]
    return {
        "layout_version": _LAYOUT_VERSION, "batch_size": int(batch_size), "n_images": int(images.shape[0]),
        "shape": [int(n) for n in images.shape[1:]], "mode": mode, "lognorminfo": lognorminfo,
        "thresholds": thr, "bins": int(bins), "range": [float(range_[0]), float(range_[1])],
        "source": source,
    }


def _check_compatible(old: dict, new: dict, groups, path: Path) -> None:
    if not old:
        # a cache without recorded parameters (legacy tool): at least the batch sizes must fit
        for g, batches in groups.items():
            for b, arr in batches.items():
                n = arr.shape[1] if g == "mf2d" else (arr.shape[0] if arr.ndim == 2 else None)
                want = min(new["batch_size"], new["n_images"] - b * new["batch_size"])
                if n is not None and n != want:
                    raise CacheMismatchError(
                        f"{g}/{b} holds {n} images but batch size {new['batch_size']} gives {want} "
                        "(the cache was written with another batch size; use a new cache)", path)
        return
    for key in ("batch_size", "n_images", "shape", "mode", "lognorminfo", "thresholds", "bins", "range",
                "layout_version"):
        if old.get(key) != new.get(key):
            def show(v):
                s = json.dumps(v)
                return s if len(s) < 60 else hashlib.sha1(s.encode()).hexdigest()[:10]
            raise CacheMismatchError(
                f"the cache was written with {key} = {show(old.get(key))}, this run has {show(new.get(key))} "
                "(use another cache file, or --overwrite to recompute it from scratch)", path)


def compute_statistics(
    imageset: Any,
    cache: str | os.PathLike,
    *,
    batch_size: int = 16,
    statistics: str | tuple[str, ...] | list[str] = "missing",
    mode: str = "default",
    thresholds: Any = None,
    bins: int = 100,
    range: tuple[float, float] = (-5.0, 10.0),  # noqa: A002
    lognorminfo: Any = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    progress: bool | None = None,
) -> StatCache:
    """Fill the statistics cache of an image set, computing only what is missing (legacy ``StatMaker``).

    Parameters
    ----------
    imageset : path-like or xarray.DataArray (image, y, x)
        The image set (see :func:`lazyastro.gan.open_imageset`); needs ``lognorminfo``.
    cache : path-like
        Cache file (legacy HDF5 layout) or ``.zarr`` directory.
    batch_size : int, optional
        Images per batch (recorded; a cache written with another batch size is refused).
    statistics : "missing" or sequence of {"psd", "intensityhistogram", "mf2d"}
        ``"missing"`` computes what the cache lacks; names force a recompute of those
        statistics for every batch (legacy ``update-statmaker-cache.py``).
    mode : {"default", "legacy"}
        Kernel conventions (PSD mode and Minkowski saddle convention), recorded; ``"legacy"``
        reproduces the legacy cache numbers.
    thresholds : array-like, optional
        Minkowski thresholds on log-normalised images (default ``linspace(-1, 1, 100)``).
    bins, range
        Log-intensity histogram (legacy: 100 bins over [-5, 10]).
    lognorminfo : array-like of 2 floats, optional
        Override the set's constants (e.g. use the real set's for a generated one).
    overwrite : bool, optional
        Discard an existing cache of other parameters and recompute everything.
    scheduler, progress
        As for :func:`lazyastro.compute`; batches run in parallel.

    Returns
    -------
    StatCache

    Raises
    ------
    CacheMismatchError
        The cache (or an interrupted run) was written with other parameters.
    FormatError
        The image set lacks ``lognorminfo``.

    Examples
    --------
    >>> import numpy as np
    >>> from lazyastro.gan import write_imageset
    >>> _ = write_imageset(np.ones((3, 8, 8)) * 2, "/tmp/_doc_c.h5", lognorminfo=[0, 1], overwrite=True,
    ...                    progress=False)
    >>> compute_statistics("/tmp/_doc_c.h5", "/tmp/_doc_cache.h5", batch_size=2, overwrite=True,
    ...                    progress=False).batches
    [0, 1]
    """
    import dask

    from ..core.atomic import partial_path, remove_path
    from ..core.execution import compute
    from ..core.stream import RegionRecord
    from .imageset import lognorminfo_of, open_imageset
    from .stats import as_images

    K._check_choice(mode, K.PSD_MODES, "mode")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ParameterError(f"batch size must be a positive integer, got {batch_size!r}")
    if isinstance(statistics, str):
        statistics = "missing" if statistics == "missing" else tuple(s.strip() for s in statistics.split(","))
    if statistics != "missing":
        unknown = [s for s in statistics if s not in STATISTICS]
        if unknown or not statistics:
            raise ParameterError(f"unknown statistics {unknown or statistics!r}; use 'missing' or a list of "
                                 f"{', '.join(STATISTICS)}")
    src_path = None
    if isinstance(imageset, str | os.PathLike):
        src_path = Path(os.fspath(imageset))
        imageset = open_imageset(src_path)
    images = as_images(imageset)
    ln = [float(v) for v in np.ravel(lognorminfo)] if lognorminfo is not None else lognorminfo_of(images, src_path)
    if len(ln) != 2 or not ln[1] > ln[0]:
        raise ParameterError(f"lognorminfo must be [Lmin, Lmax] with Lmin < Lmax, got {ln}")
    if mode == "legacy" and images.shape[1] != images.shape[2]:
        raise ParameterError(f"legacy statistics need square images, got {images.shape[1]}x{images.shape[2]}",
                             src_path)
    thr = np.linspace(-1.0, 1.0, 100) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    K.intensity_histogram(np.ones(1), bins=bins, range=range)  # validates bins and range
    cache = Path(os.fspath(cache))
    params = _fingerprint_params(images, batch_size=batch_size, mode=mode, thresholds=thr, bins=bins,
                                 range_=range, lognorminfo=ln,
                                 source=str(src_path.resolve()) if src_path else None)
    old_attrs, groups = _read(cache) if cache.exists() and not overwrite else ({}, {g: {} for g in GROUPS})
    if cache.exists() and not overwrite:
        _check_compatible(old_attrs.get("params") or {}, params, groups, cache)
    n = images.shape[0]
    n_batches = math.ceil(n / batch_size)
    todo: list[tuple[int, tuple[str, ...]]] = []
    for b in builtins.range(n_batches):
        if statistics == "missing":
            which = tuple(s for s, gs in STATISTICS.items() if any(b not in groups[g] for g in gs))
        else:
            which = tuple(s for s in STATISTICS if s in statistics)
        if which:
            todo.append((b, which))
    stage = Path(str(partial_path(cache)) + ".batches")
    record = RegionRecord(stage / "record")
    fingerprint = {"params": params, "todo": [[b, list(w)] for b, w in todo]}
    if record.exists() and not record.matches(fingerprint):
        if not overwrite and stage.exists():
            raise CacheMismatchError(
                f"an interrupted statistics run of other parameters is in the way ({stage.name}); rerun it "
                "with its original options, or pass overwrite=True / --overwrite to discard it", cache)
        remove_path(stage)
    stage.mkdir(parents=True, exist_ok=True)
    record.open(fingerprint)
    done = record.done_keys()
    data = images.data
    if len(data.chunks[0]) != n_batches or any(c != batch_size for c in data.chunks[0][:-1]):
        data = data.rechunk({0: batch_size})
    tasks = []
    for b, which in todo:
        left = tuple(w for w in which if f"{w}-{b}" not in done)
        if left:
            block = data[b * batch_size:(b + 1) * batch_size]
            tasks.append(dask.delayed(_stage_task, pure=False)(block, left, params, str(stage), b, record))
    if tasks:
        compute(*tasks, scheduler=scheduler, progress=progress, desc=f"statistics {cache.name}")
    for b, which in todo:
        for w in which:
            for g in STATISTICS[w]:
                groups[g][b] = np.load(stage / f"{g}-{b}.npy", allow_pickle=False)
    if todo or not cache.exists():
        _write(cache, params, groups)
    remove_path(stage)
    return StatCache(cache)


# --------------------------------------------------------------------------- aggregates and tests


def _doc_cache() -> StatCache:
    """A tiny cache for the examples."""
    from .imageset import write_imageset

    rng = np.random.default_rng(0)
    write_imageset(rng.lognormal(size=(4, 8, 8)), "/tmp/_doc_c2.h5", lognorminfo=[-4.0, 4.0],
                   overwrite=True, progress=False)
    return compute_statistics("/tmp/_doc_c2.h5", "/tmp/_doc_cache2.h5", batch_size=2, overwrite=True,
                              progress=False)


def aggregate(cache: StatCache):
    """Means and population stds (ddof 0) over images of log spectra and functionals; summed histogram.

    Parameters
    ----------
    cache : StatCache

    Returns
    -------
    xarray.Dataset
        ``logpsd_mean/std (k)``, ``mf_mean/std (functional, threshold)``, ``histogram (bin)``,
        ``edges (edge)``.

    Examples
    --------
    >>> aggregate(_doc_cache()).mf_mean.dims
    ('functional', 'threshold')
    """
    import xarray as xr

    ds = xr.Dataset(attrs={"name": cache.name, "n_images": cache.n_images})
    if cache.groups["logspectra"]:
        ls = cache.log_spectra()
        ds["logpsd_mean"] = ("k", ls.mean(axis=0))
        ds["logpsd_std"] = ("k", ls.std(axis=0))
        ds = ds.assign_coords(k=np.arange(ls.shape[1], dtype=np.float64))
    if cache.groups["mf2d"]:
        mf = cache.minkowski()
        ds["mf_mean"] = (("functional", "threshold"), mf.mean(axis=1))
        ds["mf_std"] = (("functional", "threshold"), mf.std(axis=1))
        ds = ds.assign_coords(functional=["F", "U", "chi"], threshold=cache.thresholds())
    if cache.groups["logintensityhistograms"]:
        edges, counts = cache.histogram()
        ds["histogram"] = ("bin", counts)
        ds = ds.assign_coords(edges=("edge", edges), bin_centre=("bin", 0.5 * (edges[1:] + edges[:-1])))
    return ds


def ks_tests(a: StatCache, b: StatCache):
    """Two-sample KS tests between two sets on per-image values (not on histogram bins).

    Parameters
    ----------
    a, b : StatCache

    Returns
    -------
    xarray.Dataset
        ``mf_D``, ``mf_p`` ``(functional, threshold)`` from the per-image F, U, chi; ``logpsd_D``,
        ``logpsd_p`` ``(k)`` from the per-image log spectra.

    Examples
    --------
    >>> c = _doc_cache()
    >>> float(ks_tests(c, c).mf_p.min())
    1.0
    """
    import xarray as xr
    from scipy.stats import ks_2samp

    ds = xr.Dataset(attrs={"a": a.name, "b": b.name})
    with np.errstate(invalid="ignore", divide="ignore"):
        if a.groups["mf2d"] and b.groups["mf2d"]:
            ma, mb = a.minkowski(), b.minkowski()
            res = ks_2samp(ma, mb, axis=1)
            ds["mf_D"] = (("functional", "threshold"), np.asarray(res.statistic))
            ds["mf_p"] = (("functional", "threshold"), np.asarray(res.pvalue))
            ds = ds.assign_coords(functional=["F", "U", "chi"], threshold=a.thresholds())
        if a.groups["logspectra"] and b.groups["logspectra"]:
            la, lb = a.log_spectra(), b.log_spectra()
            r = min(la.shape[1], lb.shape[1])
            res = ks_2samp(la[:, :r], lb[:, :r], axis=0)
            ds["logpsd_D"] = ("k", np.asarray(res.statistic))
            ds["logpsd_p"] = ("k", np.asarray(res.pvalue))
    return ds


def spectrum_histograms(cache: StatCache, kvalues, *, range: tuple[float, float] = (6.0, 16.0),  # noqa: A002
                        bins: int = 32) -> tuple[np.ndarray, list[np.ndarray]]:
    """Histograms over images of ``logpsd[:, k]`` at each chosen ``k`` (legacy ``calcAndGetLogSpectraHistogramsAtKValues``).

    Parameters
    ----------
    cache : StatCache
    kvalues : sequence of int
        Wavenumbers (must be < R).
    range : (float, float), optional
    bins : int, optional

    Returns
    -------
    (numpy.ndarray, list of numpy.ndarray)
        Bin centres and one histogram per k.

    Raises
    ------
    ParameterError
        A k outside the spectrum.

    Examples
    --------
    >>> c, hs = spectrum_histograms(_doc_cache(), [1], range=(0, 1), bins=4)
    >>> len(c), len(hs)
    (4, 1)
    """
    ls = cache.log_spectra()
    edges = np.linspace(float(range[0]), float(range[1]), int(bins) + 1)
    out = []
    for k in kvalues:
        if not 0 <= int(k) < ls.shape[1]:
            raise ParameterError(f"k = {k} is outside the spectrum (0..{ls.shape[1] - 1})", cache.path)
        out.append(np.histogram(ls[:, int(k)], bins=edges)[0])
    return 0.5 * (edges[1:] + edges[:-1]), out
