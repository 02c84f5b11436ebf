"""The DRE fit of whole tiles (:func:`fit`) and the whole pipeline from images (:func:`run`).

:func:`fit` takes cut files (``Cuts/<name>_cuts.h5``, one file or a directory of them), a model
cube and a PSF, and per tile

1. convolves the cube with the tile's PSF once (a PSF *file* is convolved once for all tiles; a
   PSF *directory* gives ``<PSF>/<name>.psf`` (or ``<name>.fits``) per tile; a missing one is a
   warning and the tile is skipped);
2. computes the chi^2 cube of every object (:func:`lazyastro.dre.chi2`, one dask task per block
   of objects) and streams it to ``Chi/<name>_chi.zarr`` through the core engine: **resumable per
   block of objects** -- after an interruption (even ``kill -9``) a rerun with the same inputs
   computes only the missing blocks and ends with the same outputs;
3. derives the parameters (:func:`lazyastro.dre.parameters`) from the finished chi store and
   writes ``Chi/<name>_chi.h5`` (legacy layout), ``Summary/<name>_dre.fits`` (joined with the
   SExtractor catalogue) and, on request, ``Mosaics/<name>/`` (see :mod:`lazyastro.dre.outputs`).

Objects whose chi^2 cube is all NaN (the legacy failures) get no chi dataset and no summary row.
Every input is checked before anything is written; bad input (a PSF of the wrong shape or
without positive pixels, an empty catalogue or one without ``NUMBER``, a cut file without
``rms``, NaN or infinite pixels in a cut's mask) is a one-line :class:`LazyAstroError` naming the
file, and leaves no output behind.

:func:`run` is the whole pipeline on a directory of tiles, in the legacy working-directory
layout: ``Tiles -> Sextracted -> PSF -> Cuts -> Chi / Summary / Mosaics``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import partial_path, remove_path
from ..core.errors import FormatError, InputNotFoundError, LazyAstroError, ParameterError
from . import outputs

__all__ = ["fit", "run", "fit_tiles", "TileResult", "MODES", "VARIANCES"]

MODES = ("default", "legacy")
VARIANCES = ("model", "psf")
_PSF_SUFFIXES = (".psf", ".fits", ".fit")


@dataclass
class TileResult:
    """What :func:`fit_tiles` did for one tile."""

    name: str
    summary: str
    chi_h5: str
    chi_zarr: str
    n_objects: int
    n_fitted: int
    n_joined: int
    seconds: float
    resumed_blocks: int = 0
    mosaics: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Objects per second."""
        return self.n_objects / self.seconds if self.seconds > 0 else float("nan")


# --------------------------------------------------------------------------- inputs


def tile_name(cuts_path: str | os.PathLike) -> str:
    """The tile name of a cut file: ``Cuts/<name>_cuts.h5`` -> ``<name>``.

    >>> tile_name("Cuts/field01_cuts.h5")
    'field01'
    """
    stem = Path(cuts_path).name
    for suffix in (".h5", ".hdf5", ".hdf"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return stem[: -len("_cuts")] if stem.endswith("_cuts") else stem


def cut_files(cuts_path: str | os.PathLike) -> list[Path]:
    """The cut files of ``cuts_path``: the file itself, or a directory's ``*_cuts.h5`` in sorted order."""
    path = Path(cuts_path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(("_cuts.h5", "_cuts.hdf5")))
        if not files:
            raise InputNotFoundError("no cut files (<name>_cuts.h5) in the directory", path)
        return files
    if not path.exists():
        raise InputNotFoundError("no such cut file or directory", path)
    return [path]


def check_psf(psf: Any, path: str | os.PathLike | None = None, *, boxsize: int = 128) -> np.ndarray:
    """A PSF array checked and cleaned as the fit uses it: 2-D, finite, negatives -> 0, sum 1.

    Parameters
    ----------
    psf : array-like
    path : path-like, optional
        Named in errors.
    boxsize : int
        The model stamp size; the PSF may not be larger.

    Returns
    -------
    numpy.ndarray
        float64, sum 1.

    Raises
    ------
    FormatError
        Not 2-D, larger than the stamps, non-finite values, or no positive pixel.

    Examples
    --------
    >>> check_psf([[0.0, 1.0], [-1.0, 3.0]]).tolist()
    [[0.0, 0.25], [0.0, 0.75]]
    """
    arr = np.asarray(psf, dtype="float64")
    where = "PSF" if path is None else "PSF"
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise FormatError(f"{where} must be a 2-D image, got shape {arr.shape}", path)
    if max(arr.shape) > boxsize:
        raise FormatError(f"{where} of shape {arr.shape} is larger than the {boxsize}x{boxsize} model stamps", path)
    if not np.all(np.isfinite(arr)):
        raise FormatError(f"{where} has {int((~np.isfinite(arr)).sum())} NaN or infinite pixels", path)
    arr = np.clip(arr, 0.0, None)
    total = float(arr.sum())
    if not total > 0:
        raise FormatError(f"{where} has no positive pixel (all zero or negative)", path)
    return arr / total


def _load_psf(path: Path, boxsize: int) -> np.ndarray:
    from .psf import read_psf

    return check_psf(read_psf(path), path, boxsize=boxsize)


def _psf_for_tile(psf_dir: Path, name: str) -> Path | None:
    for suffix in _PSF_SUFFIXES:
        cand = psf_dir / f"{name}{suffix}"
        if cand.is_file():
            return cand
    return None


def _load_models(models):
    import xarray as xr

    from .models import default_models, open_models

    if models is None:
        models = default_models()
    if isinstance(models, xr.DataArray):
        return models
    return open_models(models)


def _open_cuts(path: Path):
    from .cuts import open_cuts

    cuts = open_cuts(path)
    missing = [v for v in ("obj", "seg", "rms") if v not in cuts]
    if missing:
        raise FormatError(f"cut file has no {', '.join(missing)} (needs obj, seg and rms per object)", path)
    if cuts.sizes.get("object", 0) == 0:
        raise FormatError("cut file holds no objects", path)
    return cuts


def _check_block(obj, seg, rms, keys, *, path: str):
    """A cut block's obj, after checking that obj and rms are finite inside the masks."""
    inside = np.asarray(seg, bool)
    keys = np.asarray(keys).ravel()
    for name, arr in (("obj", obj), ("rms", rms)):
        bad = inside & ~np.isfinite(np.asarray(arr))
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(len(bad), -1).any(axis=1))[0])
            raise FormatError(f"object {keys[i]}: {int(bad[i].sum())} NaN or infinite {name} pixels inside its mask",
                              path)
    return obj


def _checked_cuts(cuts, path: Path):
    """The cuts with ``obj`` replaced by a lazily checked copy (checked in the fit's own tasks)."""
    import dask.array as da

    obj, seg, rms = cuts["obj"].data, cuts["seg"].data, cuts["rms"].data
    if not isinstance(obj, da.Array):
        _check_block(obj, seg, rms, np.asarray(cuts["object"].values).astype(str), path=str(path))
        return cuts
    seg = seg.rechunk(obj.chunks)
    rms = rms.rechunk(obj.chunks)
    keys = da.from_array(np.asarray(cuts["object"].values).astype(str), chunks=(obj.chunks[0],))
    checked = da.map_blocks(_check_block, obj, seg, rms, keys[:, None, None], path=str(path), dtype=obj.dtype,
                            meta=np.empty((0, 0, 0), obj.dtype))
    return cuts.assign(obj=(cuts["obj"].dims, checked, cuts["obj"].attrs))


def _file_identity(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), int(st.st_size), int(st.st_mtime_ns)]


def _fit_token(cuts_path: Path, conv, conv_id: str, psf: np.ndarray, params: dict) -> str:
    from dask.base import tokenize

    import lazyastro

    coords = {k: np.asarray(conv.coords[k].values).tolist() for k in ("n", "q", "theta", "log_r")}
    return tokenize(_file_identity(cuts_path), conv_id, tokenize(psf), coords, sorted(params.items()),
                    lazyastro.__version__)


def _conv_id(conv) -> str:
    """A token of the convolved cube's inputs: its graph name (hash of the values when in memory)."""
    from dask.base import tokenize

    name = getattr(conv.data, "name", None)
    return str(name) if name else tokenize(np.asarray(conv.values))


def _materialise(conv, scheduler):
    """Compute the convolved cube once (shared read-only by every chi^2 task and the mosaics)."""
    import dask.array as da
    import xarray as xr

    from ..core.execution import compute

    if not isinstance(conv.data, da.Array):
        return conv
    (values,) = compute(conv.data, scheduler=scheduler, progress=False)
    values = np.asarray(values, dtype="float32")
    return xr.DataArray(values, dims=conv.dims, coords=conv.coords, attrs=conv.attrs, name=conv.name)


# --------------------------------------------------------------------------- fit


def _chi2(conv, cuts, *, mode, variance, exposure, objects_per_block):
    from .chisquare import chi2

    kwargs: dict[str, Any] = {"mode": mode, "variance": variance}
    if exposure is not None:
        kwargs["exposure"] = exposure
    if objects_per_block is not None:
        kwargs["objects_per_block"] = objects_per_block
    return chi2(conv, cuts, **kwargs)


def _object_coords(chi, cuts) -> None:
    """Make sure the chi cube carries ext_number / number along object (from the cuts if needed)."""
    for name in ("ext_number", "number"):
        if name not in chi.coords and name in cuts.coords:
            chi.coords[name] = ("object", np.asarray(cuts.coords[name].values))
    if "number" not in chi.coords:
        keys = [outputs.parse_key(k) for k in np.asarray(chi["object"].values)]
        chi.coords["ext_number"] = ("object", np.array([k[0] for k in keys]))
        chi.coords["number"] = ("object", np.array([k[1] for k in keys]))


def _extra_variables(chi) -> dict:
    """Per-object coords of the chi cube (e.g. the data flux) to store beside it."""
    import dask.array as da

    block = chi.data.chunks[0] if isinstance(chi.data, da.Array) else -1
    extra = {}
    for name, coord in chi.coords.items():
        if name in ("object", "ext_number", "number") or coord.dims != ("object",):
            continue
        if coord.dtype.kind not in "biuf":
            continue
        data = coord.data if isinstance(coord.data, da.Array) else da.from_array(np.asarray(coord.values),
                                                                                 chunks=(block,))
        extra[name] = (("object",), data.rechunk((block,)))
    return extra


def _drop_outputs(*paths: Path) -> None:
    """Remove the unfinished output (and record) of a failed fit; tasks still running may add files."""
    import shutil

    from ..core.stream import record_path

    for p in paths:
        for q in (partial_path(p), record_path(p)):
            for _ in range(50):
                if not (q.exists() or q.is_symlink()):
                    break
                try:
                    remove_path(q)
                except OSError:
                    shutil.rmtree(q, ignore_errors=True)
                    time.sleep(0.05)


class _Convolved:
    """The convolved cube of one PSF: lazy for the fingerprint, computed once on first real use."""

    def __init__(self, lazy, psf: np.ndarray, scheduler):
        self.lazy, self.psf, self.scheduler, self.done = lazy, psf, scheduler, None
        self.id = _conv_id(lazy)

    def get(self):
        if self.done is None:
            self.done = _materialise(self.lazy, self.scheduler)
        return self.done


def _fit_one(cuts_path: Path, cuts, shared: _Convolved, psf: np.ndarray, catalog, *, name: str, chi_dir: Path,
             summary_dir: Path, mosaics: Path | None, mode: str, variance: str, compression: str,
             exposure, objects_per_block, scheduler, progress) -> TileResult:
    from ..core.stream import record_path
    from .bestfit import parameters

    t0 = time.perf_counter()
    zpath = chi_dir / f"{name}_chi.zarr"
    h5path = chi_dir / f"{name}_chi.h5"
    spath = summary_dir / f"{name}_dre.fits"
    checked = _checked_cuts(cuts, cuts_path)
    kw = dict(mode=mode, variance=variance, exposure=exposure, objects_per_block=objects_per_block)
    # the fingerprint needs only the graph: a finished tile is not convolved again
    chi = _chi2(shared.lazy, checked, **kw)
    token = _fit_token(cuts_path, shared.lazy, shared.id, psf, {"mode": mode, "variance": variance, "exposure": exposure,
                                              "objects_per_block": objects_per_block,
                                              "chunks": [list(c) for c in getattr(chi.data, "chunks", ())]})
    record = record_path(zpath)
    resumed = len(list(record.glob("*.done"))) if record.is_dir() else 0
    created = [d for d in (chi_dir, summary_dir) if not d.exists()]
    if not (zpath.is_dir() and outputs.chi_zarr_token(zpath) == token):
        chi = _chi2(shared.get(), checked, **kw)
        _object_coords(chi, cuts)
        try:
            outputs.write_chi_zarr(chi, zpath, token=token, scheduler=scheduler, progress=progress,
                                   variables=_extra_variables(chi))
        except LazyAstroError:
            # bad data, not an interruption: nothing to resume, leave nothing behind
            _drop_outputs(zpath)
            for d in created:
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
            raise
    stored = outputs.open_chi(zpath)
    params = parameters(stored, mode=mode)
    if hasattr(params, "compute"):
        from ..core.execution import compute

        (params,) = compute(params, scheduler=scheduler, progress=False)
    failed = np.asarray(params["FLAG_ALL_NAN"].values, bool) if "FLAG_ALL_NAN" in params else np.zeros(
        stored.sizes["object"], bool)
    keep = ~failed
    table = outputs.summary_table(params, keep=keep)
    joined = table if catalog is None else outputs.join_catalog(table, catalog)  # fit_tiles warned
    keys = np.asarray(stored["object"].values)

    def cubes():
        step = int(stored.data.chunks[0][0]) if hasattr(stored.data, "chunks") else 256
        for start in range(0, stored.sizes["object"], step):
            block = np.asarray(stored.data[start : start + step])
            for i, cube in enumerate(block):
                if keep[start + i]:
                    yield str(keys[start + i]), cube

    outputs.write_chi_h5(h5path, cubes(), compression=compression)
    outputs.write_summary(joined, spath)
    written: list[str] = []
    if mosaics is not None:
        written = _write_mosaics(mosaics, name, cuts, shared.get(), params, keep, keys, mode=mode)
    seconds = time.perf_counter() - t0
    return TileResult(name=name, summary=str(spath), chi_h5=str(h5path), chi_zarr=str(zpath),
                      n_objects=int(stored.sizes["object"]), n_fitted=int(keep.sum()), n_joined=len(joined),
                      seconds=seconds, resumed_blocks=resumed, mosaics=written)


def _write_mosaics(directory: Path, name: str, cuts, conv, params, keep, keys, *, mode: str) -> list[str]:
    values = np.asarray(conv.values) if not isinstance(conv.values, np.ndarray) else conv.values
    idx = np.asarray(params["MODEL_IDX"].values, dtype=int)
    orientation = "legacy" if mode == "legacy" else "cut"
    paths: list[str] = []
    n = cuts.sizes["object"]
    step = 64
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        obj = np.asarray(cuts["obj"][sl].values)
        seg = np.asarray(cuts["seg"][sl].values)
        for i in range(sl.stop - sl.start):
            k = start + i
            if not keep[k]:
                continue
            model = values[tuple(idx[k])]
            title = (f"{name} {keys[k]}  q={float(params['AX_RATIO'][k]):.2f} "
                     f"theta={float(params['ANGLE'][k]):.0f} logr={float(params['LOGR'][k]):.2f}")
            paths += outputs.write_mosaic(directory, name, str(keys[k]), obj[i], seg[i], model,
                                          orientation=orientation, title=title)
    return paths


def fit_tiles(cuts_path: str | os.PathLike, *, models=None, psf, chi_dir: str | os.PathLike = "Chi",
              summary_dir: str | os.PathLike = "Summary", catalogs: str | os.PathLike | None = "Sextracted",
              mosaics: str | os.PathLike | None = None, mode: str = "default", variance: str = "model",
              compression: str = "medium", exposure: float | None = None, objects_per_block: int | None = None,
              scheduler: str | None = None, progress: bool | None = None, report=None) -> list[TileResult]:
    """:func:`fit`, returning a :class:`TileResult` per fitted tile (``report(result)`` after each)."""
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if variance not in VARIANCES:
        raise ParameterError(f"variance must be one of {', '.join(VARIANCES)}, got {variance!r}")
    outputs.h5_compression(compression)
    if psf is None:
        raise ParameterError("a PSF is required (a file, an array, or a directory of <tile>.psf files)")
    files = cut_files(cuts_path)
    models = _load_models(models)
    boxsize = int(models.sizes.get("y", 128))
    from .convolution import convolve

    shared = None  # (psf array, convolved cube) when one PSF serves every tile
    psf_dir = None
    if isinstance(psf, str | os.PathLike) and Path(psf).is_dir():
        psf_dir = Path(psf)
    else:
        if isinstance(psf, str | os.PathLike):
            if not Path(psf).exists():
                raise InputNotFoundError("no such PSF file or directory", psf)
            arr = _load_psf(Path(psf), boxsize)
        else:
            arr = check_psf(psf, boxsize=boxsize)
        shared = arr
    cat_root = None if catalogs is None else Path(catalogs)
    if cat_root is not None and not cat_root.exists():
        warnings.warn(f"{cat_root}: no catalogue directory; summaries are written unjoined", stacklevel=2)
        cat_root = None
    # check every tile's inputs before anything is written
    plan = []
    for path in files:
        name = tile_name(path)
        if psf_dir is not None:
            ppath = _psf_for_tile(psf_dir, name)
            if ppath is None:
                warnings.warn(f"{psf_dir}: no PSF {name}.psf for tile {name}; tile skipped", stacklevel=2)
                continue
            arr = _load_psf(ppath, boxsize)
        else:
            arr = shared
        cuts = _open_cuts(path)
        cpath = outputs.find_catalog(cat_root, name) if cat_root is not None else None
        catalog = outputs.read_catalog(cpath) if cpath is not None else None
        if cat_root is not None and cpath is None:
            warnings.warn(f"{cat_root}: no catalogue {name}_cat.fits; the summary of {name} is written unjoined",
                          stacklevel=2)
        plan.append((path, name, cuts, arr, catalog))
    results = []
    shared: _Convolved | None = None
    for path, name, cuts, arr, catalog in plan:
        if shared is None or shared.psf is not arr:  # one PSF file: convolved once for every tile
            shared = _Convolved(convolve(models, arr, legacy=(mode == "legacy")), arr, scheduler)
        res = _fit_one(path, cuts, shared, arr, catalog, name=name, chi_dir=Path(chi_dir),
                       summary_dir=Path(summary_dir), mosaics=None if mosaics is None else Path(mosaics),
                       mode=mode, variance=variance, compression=compression, exposure=exposure,
                       objects_per_block=objects_per_block, scheduler=scheduler, progress=progress)
        results.append(res)
        if report is not None:
            report(res)
    return results


def fit(cuts_path: str | os.PathLike, *, models=None, psf, chi_dir: str | os.PathLike = "Chi",
        summary_dir: str | os.PathLike = "Summary", catalogs: str | os.PathLike | None = "Sextracted",
        mosaics: str | os.PathLike | None = None, mode: str = "default", variance: str = "model",
        compression: str = "medium", exposure: float | None = None, objects_per_block: int | None = None,
        scheduler: str | None = None, progress: bool | None = None) -> str | list[str]:
    """Fit every object of one or more cut files against the PSF-convolved model cube.

    Parameters
    ----------
    cuts_path : path-like
        A cut file ``<name>_cuts.h5`` or a directory of them (tiles in sorted order).
    models : path-like or xarray.DataArray, optional
        Model cube (Zarr or legacy FITS mosaic, or a DataArray from
        :func:`lazyastro.dre.make_models`); default: the default-grid cube.
    psf : path-like or array-like
        A PSF file (``.psf`` or ``.fits``) or array, convolved once for all tiles, or a
        directory holding ``<name>.psf`` (or ``<name>.fits``) per tile (tiles without
        one are skipped with a warning).
    chi_dir, summary_dir : path-like
        Where ``<name>_chi.h5`` / ``<name>_chi.zarr`` and ``<name>_dre.fits`` go.
    catalogs : path-like, optional
        SExtractor catalogues (``<catalogs>/<name>/<name>_cat.fits`` or
        ``<catalogs>/<name>_cat.fits``, or one file); missing -> warning, summary unjoined;
        ``None``: no join (no warning).
    mosaics : path-like, optional
        Write mosaics (FITS and PNG) under ``<mosaics>/<name>/``.
    mode : {"default", "legacy"}
        Passed to :func:`~lazyastro.dre.chi2` and :func:`~lazyastro.dre.parameters`;
        ``"legacy"`` also convolves with the legacy even-PSF shift and writes the
        transposed legacy mosaics.
    variance : {"model", "psf"}
        chi^2 variance: ``s m + rms^2`` or the fork's ``s m sum(PSF^2) / t_exp + rms^2``.
    compression : {"none", "low", "medium", "high"}
        Of the chi HDF5 file.
    exposure : float, optional
        ``t_exp`` of ``variance="psf"``.
    objects_per_block : int, optional
        Objects per chi^2 task (the resume unit).
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str or list of str
        The summary path (a list for a directory of cut files).

    Raises
    ------
    LazyAstroError
        Bad inputs (one line naming the file); nothing is written then.

    Examples
    --------
    >>> from lazyastro.dre.pipeline import tile_name
    >>> tile_name("Cuts/t_cuts.h5")  # fit(...) writes Chi/t_chi.h5 and Summary/t_dre.fits
    't'
    """
    results = fit_tiles(cuts_path, models=models, psf=psf, chi_dir=chi_dir, summary_dir=summary_dir,
                        catalogs=catalogs, mosaics=mosaics, mode=mode, variance=variance,
                        compression=compression, exposure=exposure, objects_per_block=objects_per_block,
                        scheduler=scheduler, progress=progress)
    paths = [r.summary for r in results]
    return paths[0] if Path(cuts_path).is_file() and paths else paths


# --------------------------------------------------------------------------- run


def _tiles(tiles_dir: Path) -> list[Path]:
    if not tiles_dir.is_dir():
        raise InputNotFoundError("no such tiles directory", tiles_dir)
    tiles = sorted(p for p in tiles_dir.iterdir() if p.is_file() and p.name.lower().endswith((".fits", ".fit",
                                                                                              ".fits.fz")))
    if not tiles:
        raise InputNotFoundError("no FITS images (*.fits) in the tiles directory", tiles_dir)
    return tiles


def _image_stem(path: Path) -> str:
    name = path.name
    for suffix in (".fits.fz", ".fits", ".fit"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _make_psf(sx: dict, psf_dir: Path, *, engine_used: str) -> Path:
    """PSFEx on the catalogue when the real tools are in use, else the embedded empirical PSF."""
    from .psf import find_psfex, make_psf

    engine = "psfex" if engine_used == "sextractor" and find_psfex() else "empirical"
    return Path(make_psf(sx["catalog"], psf_dir, engine=engine))


def _fresh(outputs_: Any, inputs: Any) -> bool:
    """True when every output exists and is newer than every input (make's rule)."""
    outs = [Path(p) for p in outputs_]
    if not outs or not all(p.is_file() for p in outs):
        return False
    newest_in = max((Path(p).stat().st_mtime_ns for p in inputs), default=0)
    return min(p.stat().st_mtime_ns for p in outs) >= newest_in


def _cut_params(path: Path) -> dict:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: float(f.attrs[k]) for k in ("margin", "max_stellarity")}
    except (OSError, KeyError, ValueError, TypeError):
        return {}


def _engine_used(engine: str) -> str:
    import shutil

    if engine == "auto":
        return "sextractor" if (shutil.which("source-extractor") or shutil.which("sex")) else "sep"
    return engine


def run(tiles_dir: str | os.PathLike, *, workdir: str | os.PathLike | None = None, models=None, psf=None,
        engine: str = "auto", gain: str | float | None = None, margin: int = 80, max_stellarity: float = 1.0, mosaics: bool = False,
        mode: str = "default", variance: str = "model", compression: str = "medium",
        objects_per_block: int | None = None, scheduler: str | None = None, progress: bool | None = None,
        report=None) -> list[str]:
    """The whole DRE pipeline on a directory of tiles, in the legacy working-directory layout.

    ``Tiles/<name>.fits -> Sextracted/<name>/ -> PSF/<name>.psf -> Cuts/<name>_cuts.h5 ->
    Chi/<name>_chi.{h5,zarr}, Summary/<name>_dre.fits`` (and ``Mosaics/<name>/``), all under
    ``workdir`` (default: the parent of ``tiles_dir``).

    Parameters
    ----------
    tiles_dir : path-like
        Directory of FITS images.
    workdir : path-like, optional
        Working directory (default: the parent of ``tiles_dir``).
    models : path-like or xarray.DataArray, optional
        Model cube (default: the default-grid cube).
    psf : path-like, optional
        A PSF file or directory to use instead of measuring one per tile.
    engine : {"auto", "sextractor", "sep"}
        Source extraction: the real SExtractor (and PSFEx) when installed, else ``sep``
        (and the embedded empirical PSF).
    gain : {"counts", "cps"} or float, optional
        Detector gain for the extraction (:func:`lazyastro.dre.extraction.resolve_gain`).
    margin, max_stellarity : optional
        Cut selection (:func:`lazyastro.dre.make_cuts`).
    mosaics : bool
        Write ``Mosaics/<name>/``.
    mode, variance, compression, objects_per_block, scheduler, progress
        As for :func:`fit`.

    Returns
    -------
    list of str
        The summary paths.

    Raises
    ------
    LazyAstroError
        Bad inputs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> run(d / "Tiles")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    lazyastro.core.errors.InputNotFoundError: .../Tiles: no such tiles directory
    """
    from .cuts import make_cuts
    from .extraction import product_paths, sextract

    tiles_dir = Path(tiles_dir)
    tiles = _tiles(tiles_dir)
    if engine not in ("auto", "sextractor", "sep"):
        raise ParameterError(f"engine must be auto, sextractor or sep, got {engine!r}")
    root = Path(workdir) if workdir is not None else tiles_dir.resolve().parent
    used = _engine_used(engine)
    models = _load_models(models)
    summaries: list[str] = []
    for tile in tiles:
        name = _image_stem(tile)
        t0 = time.perf_counter()
        products = product_paths(root / "Sextracted", name, subdir=True)
        if _fresh(products.values(), [tile]):
            sx = products  # a rerun (e.g. after an interruption) keeps what is done and newer than its inputs
        else:
            made = sextract(tile, root / "Sextracted", engine=used, subdir=True, gain=gain)
            sx = {k: str(made[k]) for k in products}  # the four product paths (not the "engine" entry)
        if psf is not None:
            tile_psf = Path(psf)
            if tile_psf.is_dir():
                found = _psf_for_tile(tile_psf, name)
                if found is None:
                    warnings.warn(f"{tile_psf}: no PSF {name}.psf for tile {name}; tile skipped", stacklevel=2)
                    continue
                tile_psf = found
        else:
            tile_psf = root / "PSF" / f"{name}.psf"
            if not _fresh([tile_psf], [sx["catalog"]]):
                tile_psf = _make_psf(sx, root / "PSF", engine_used=used)
        cuts = root / "Cuts" / f"{name}_cuts.h5"
        if not (_fresh([cuts], [tile, *sx.values()])
                and _cut_params(cuts) == {"margin": float(margin), "max_stellarity": float(max_stellarity)}):
            make_cuts(tile, root / "Sextracted", cuts, margin=margin, max_stellarity=max_stellarity,
                      compression=compression, scheduler=scheduler, progress=progress)  # resumes after kill
        prep = time.perf_counter() - t0
        results = fit_tiles(cuts, models=models, psf=tile_psf, chi_dir=root / "Chi", summary_dir=root / "Summary",
                            catalogs=root / "Sextracted", mosaics=root / "Mosaics" if mosaics else None,
                            mode=mode, variance=variance, compression=compression,
                            objects_per_block=objects_per_block, scheduler=scheduler, progress=progress)
        for res in results:
            res.seconds += prep
            if report is not None:
                report(res)
            summaries.append(res.summary)
    return summaries


def print_report(res: TileResult, stream=None) -> None:
    """One line per tile: objects fitted, elapsed time, objects/s (the legacy runner's report)."""
    stream = sys.stderr if stream is None else stream
    extra = f", {res.resumed_blocks} blocks resumed" if res.resumed_blocks else ""
    print(f"{res.name}: {res.n_fitted}/{res.n_objects} objects fitted, {res.n_joined} in the summary, "
          f"{res.seconds:.1f} s ({res.rate:.1f} objects/s){extra} -> {res.summary}", file=stream)
