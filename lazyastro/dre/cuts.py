"""DRE cutouts: select catalogue objects, cut obj/seg/rms stamps, clean the masks, write/read HDF5.

:func:`make_cuts` follows the legacy ``make_cuts`` (spec §4) with these documented choices:

- **Selection** (all strict): ``margin < X_IMAGE < NAXIS1 - margin``, ``margin < Y_IMAGE < NAXIS2 -
  margin``, ``CLASS_STAR < max_stellarity`` and ``MIN < row[PARAM] < MAX`` for every filter.
- **Centre**: the nearest pixel of the 0-based position ``(Y_IMAGE - 1, X_IMAGE - 1)`` (halves
  round up) lands at stamp index ``(64, 64)`` = ``(B // 2, B // 2)``; the model cubes use the same
  centre. Objects too close to the edge for a full 128 x 128 stamp (possible when ``margin < 64``)
  are **skipped and counted**, never padded or truncated.
- **NaN**: objects whose ``Tiles`` stamp contains NaN, or whose obj/rms stamp is non-finite or
  holds SExtractor's -1e30 placeholder, are skipped and counted.
- **Mask** (``seg``): :func:`lazyastro.dre.masks.clean_mask` of ``seg == NUMBER``.
- **Re-centring** (``centroids="com" | "1dg" | "2dg"``, photutils): centroid of obj over the mask;
  obj and rms shifted with a cubic spline, seg with order 0, so the centroid lands on
  ``centroid_target`` (default 64, the stamp centre; the legacy tool used 63.5: ``legacy=True``).
- **Output**: the legacy HDF5 layout, one group ``EE_NNNN`` per object with datasets ``obj``
  float32, ``seg`` bool, ``rms`` float32 (128 x 128), compression none / low (lzf) / medium (gzip 4)
  / high (gzip 9). Counts and parameters go in the root attributes (``n_catalog``, ``n_selected``,
  ``n_written``, ``n_skipped_nan``, ``n_skipped_edge``, ..., and ``dre_token``, a fingerprint of
  the inputs and options), the catalogue position in each group's attributes; legacy readers see
  only the groups.
- **Resumable, atomic, reproducible**: the cutting runs through the streaming engine
  (:class:`CutsTarget`), one task per block of objects; finished blocks are recorded beside
  ``<out>.partial``, so a rerun after an interruption (even ``kill -9``) cuts only the missing
  blocks; the file is renamed into place only when complete; a finished file with the same
  ``dre_token`` is kept as it is. No HDF5 object carries a timestamp: a rerun, a resumed run, any
  block size and any scheduler give the same bytes.

:func:`open_cuts` reads such a file lazily as an ``xarray.Dataset``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..core.errors import FormatError, InputNotFoundError, ParameterError, reading
from ..core.paths import require_input
from ..core.stream import StreamTarget
from .masks import clean_mask, cut_origin

__all__ = ["make_cuts", "open_cuts", "find_products", "select_objects", "object_key", "parse_key",
           "CutsTarget", "record_dtype", "COMPRESSION", "BOXSIZE"]

BOXSIZE = 128
COMPRESSION = {"none": {}, "low": {"compression": "lzf"}, "medium": {"compression": "gzip", "compression_opts": 4},
               "high": {"compression": "gzip", "compression_opts": 9}}
CENTROIDS = ("com", "1dg", "2dg")
PLACEHOLDER = -1e29  # SExtractor writes -1e30 where it has no data


def object_key(ext_number: int, number: int) -> str:
    """The legacy object key ``EE_NNNN``.

    Examples
    --------
    >>> object_key(1, 27)
    '01_0027'
    """
    return f"{int(ext_number):02d}_{int(number):04d}"


def parse_key(key: str) -> tuple[int, int]:
    """``(ext_number, number)`` of a key ``EE_NNNN``.

    Examples
    --------
    >>> parse_key("01_0027")
    (1, 27)
    """
    try:
        ext, num = key.split("_")
        return int(ext), int(num)
    except ValueError:
        raise FormatError(f"object key {key!r} is not EE_NNNN") from None


def find_products(sextracted: str | os.PathLike | Mapping, name: str, *,
                  catalog: str | os.PathLike | None = None) -> dict[str, Path]:
    """The catalogue, nb, rms and seg paths of tile ``name``.

    Parameters
    ----------
    sextracted : path or mapping
        A directory holding ``<name>_cat.fits`` etc. directly or in ``<name>/`` (``--subdir``), or a
        mapping with keys ``catalog``, ``nb``, ``rms``, ``seg`` (the result of ``sextract``).
    name : str
        Tile name.
    catalog : path, optional
        A catalogue file, or a directory searched like ``sextracted`` (legacy ``-c CATALOGS``).

    Returns
    -------
    dict of Path

    Raises
    ------
    InputNotFoundError
        When a product is missing.
    """
    from .extraction import product_paths

    if isinstance(sextracted, Mapping):
        paths = {k: Path(sextracted[k]) for k in ("catalog", "nb", "rms", "seg") if k in sextracted}
    else:
        root = Path(sextracted)
        flat, sub = product_paths(root, name), product_paths(root, name, subdir=True)
        paths = {k: Path(flat[k]) if Path(flat[k]).exists() or not Path(sub[k]).exists() else Path(sub[k])
                 for k in flat}
    if catalog is not None:
        c = Path(catalog)
        if c.is_dir():
            flat, sub = product_paths(c, name)["catalog"], product_paths(c, name, subdir=True)["catalog"]
            c = Path(flat) if Path(flat).exists() or not Path(sub).exists() else Path(sub)
        paths["catalog"] = c
    for k in ("catalog", "nb", "rms", "seg"):
        if k not in paths:
            raise InputNotFoundError(f"no {k} product given for tile {name!r}", None)
        if not paths[k].is_file():
            raise InputNotFoundError(f"missing SExtractor {k} product of tile {name!r}", paths[k])
    return paths


def select_objects(catalog, shape: tuple[int, int], *, margin: float = 80, max_stellarity: float = 1.0,
                   filters: Iterable = (), path=None) -> np.ndarray:
    """Boolean selection of catalogue rows (all inequalities strict).

    Parameters
    ----------
    catalog : astropy.table.Table
        Needs ``X_IMAGE``, ``Y_IMAGE``, ``CLASS_STAR`` and every filter column.
    shape : (int, int)
        Image shape ``(NAXIS2, NAXIS1)``.
    margin, max_stellarity : float, optional
    filters : iterable of (PARAM, MIN, MAX), optional
    path : path, optional
        Catalogue named in error messages.

    Returns
    -------
    numpy.ndarray
        bool, one per row.

    Raises
    ------
    FormatError
        A needed column is missing.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"X_IMAGE": [80.0, 81.0, 150.0], "Y_IMAGE": [100.0, 100.0, 100.0],
    ...            "CLASS_STAR": [0.1, 0.1, 1.0], "FLUX_AUTO": [5.0, 5.0, 5.0]})
    >>> select_objects(t, (200, 200), margin=80).tolist()
    [False, True, False]
    >>> select_objects(t, (200, 200), margin=80, filters=[("FLUX_AUTO", 5, 10)]).tolist()
    [False, False, False]
    """
    need = ["X_IMAGE", "Y_IMAGE", "CLASS_STAR"] + [str(f[0]) for f in filters]
    for col in need:
        if col not in catalog.colnames:
            raise FormatError(f"catalogue has no {col} column", path)
    ny, nx = shape
    x = np.asarray(catalog["X_IMAGE"], float)
    y = np.asarray(catalog["Y_IMAGE"], float)
    sel = (margin < x) & (x < nx - margin) & (margin < y) & (y < ny - margin)
    sel &= np.asarray(catalog["CLASS_STAR"], float) < max_stellarity
    for param, lo, hi in filters:
        v = np.asarray(catalog[str(param)], float)
        if v.ndim != 1:
            raise FormatError(f"filter column {param} is not a scalar column", path)
        sel &= (float(lo) < v) & (v < float(hi))
    return sel


def _image_hdu(hdul, ext: int):
    images = [h for h in hdul if h.is_image and h.header.get("NAXIS", 0) == 2]
    if not images:
        return None
    if len(images) == 1:
        return images[0]
    return images[min(max(ext - 1, 0), len(images) - 1)]


def _check_filters(filters) -> list[tuple[str, float, float]]:
    out = []
    for f in filters or ():
        try:
            param, lo, hi = f
            out.append((str(param), float(lo), float(hi)))
        except (TypeError, ValueError):
            raise ParameterError(f"filters must be (PARAM, MIN, MAX) triples, got {f!r}") from None
    return out


def _centroid(obj, mask, mode):
    from photutils import centroids

    func = {"com": centroids.centroid_com, "1dg": centroids.centroid_1dg, "2dg": centroids.centroid_2dg}[mode]
    # fit on the mask's bounding box only (the same pixels; 100x faster for the Gaussian fits)
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return np.nan, np.nan
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    m = mask[y0:y1, x0:x1]
    data = np.where(m, obj[y0:y1, x0:x1], 0.0).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cx, cy = func(data, mask=~m)
    return float(cy) + y0, float(cx) + x0


#: Status of one selected object in a computed block.
WRITTEN, SKIPPED_NAN, SKIPPED_EDGE = 0, 1, 2
#: A selected catalogue row, as the block kernel gets it.
ROW_DTYPE = np.dtype([("x", "<f8"), ("y", "<f8"), ("number", "<i8"), ("ext", "<i8")])


def record_dtype(size: int = BOXSIZE) -> np.dtype:
    """The dtype of one cut object as a block of the cut job holds it (stamps, status, position).

    Examples
    --------
    >>> record_dtype(8).names[:4]
    ('obj', 'seg', 'rms', 'status')
    """
    return np.dtype([("obj", "<f4", (size, size)), ("seg", "?", (size, size)), ("rms", "<f4", (size, size)),
                     ("status", "i1"), ("x", "<f8"), ("y", "<f8"), ("number", "<i8"), ("ext", "<i8"),
                     ("origin", "<i8", (2,)), ("centre", "<i8", (2,)), ("shift", "<f8", (2,))])


def _stamp(obj, seg, rms, tile_nan: bool, number: int, centroids, target):
    """Kernel of one object: ``None`` for a NaN/-1e30 cut, else ``(obj, mask, rms, shift)``."""
    bad = tile_nan or not (np.isfinite(obj).all() and np.isfinite(rms).all()) \
        or bool((obj <= PLACEHOLDER).any() or (rms <= PLACEHOLDER).any())
    if bad:
        return None
    mask = clean_mask(seg == number)
    shift = (0.0, 0.0)
    if centroids is not None:
        obj, mask, rms, shift = _recentre(obj, mask, rms, centroids, target)
    return obj, mask, rms, shift


def _cut_block(rows: np.ndarray, *, paths: dict, centroids, target: float, size: int = BOXSIZE) -> np.ndarray:
    """Cut one block of selected rows (``ROW_DTYPE``): read the windows, run :func:`_stamp` per object.

    Returns a :func:`record_dtype` array, one record per row, skipped objects flagged by
    ``status``. The images are opened (memory-mapped) by path, so any process can run a block.
    """
    from astropy.io import fits

    out = np.zeros(len(rows), record_dtype(size))
    if not len(rows):
        return out
    for f in ("x", "y", "number", "ext"):
        out[f] = rows[f]
    handles = {}
    try:
        for label, p in paths.items():
            if p is not None:
                with reading(p, "image"):
                    handles[label] = fits.open(p, memmap=True)
        for i, row in enumerate(rows):
            ext, number = int(row["ext"]), int(row["number"])
            key = object_key(ext, number)
            cy, cx, y0, x0 = cut_origin(row["x"], row["y"], size)
            out["origin"][i] = (y0, x0)
            out["centre"][i] = (cy, cx)
            images = {label: _image_hdu(h, ext) for label, h in handles.items()}
            shape = images["obj"].shape
            if y0 < 0 or x0 < 0 or y0 + size > shape[0] or x0 + size > shape[1]:
                out["status"][i] = SKIPPED_EDGE
                continue
            win = (slice(y0, y0 + size), slice(x0, x0 + size))
            with reading(paths["obj"], f"cut of object {key}"):
                obj = np.array(images["obj"].data[win], dtype=np.float32)
                seg = np.array(images["seg"].data[win])
                rms = np.array(images["rms"].data[win], dtype=np.float32)
                tile_nan = "tile" in images and bool(np.isnan(np.asarray(images["tile"].data[win], float)).any())
            cut = _stamp(obj, seg, rms, tile_nan, number, centroids, target)
            if cut is None:
                out["status"][i] = SKIPPED_NAN
                continue
            out["obj"][i], out["seg"][i], out["rms"][i], out["shift"][i] = cut
    finally:
        for h in handles.values():
            h.close()
    return out


class CutsTarget(StreamTarget):
    """The legacy cuts file as a target of the streaming engine (resumable per block of objects).

    While the job runs, each finished block of objects is a small complete HDF5 file (its groups
    ``EE_NNNN``, compressed as asked) kept with the job's region record (``<out>.partial.done/
    blocks/``), written under a temporary name and renamed, so a block is either whole or absent
    whatever moment the job is killed. When every block is done, :meth:`finalize` copies the groups
    of the blocks in order (raw chunks, no recompression) into ``<out>.partial``, adds the root
    attributes and the engine renames it into place. Files are made by
    :func:`lazyastro.io.hdf5_write.new_file` (no timestamps): a resumed job ends with the bytes of
    an uninterrupted one.
    """

    format = "dre-cuts"

    def __init__(self, path, *, compression: str, attrs: dict):
        super().__init__(path)
        self.compression = compression
        self.opts = COMPRESSION[compression]
        self.attrs = dict(attrs)
        self.starts: list[int] = []

    def params(self) -> dict:
        return {"compression": self.compression, "attrs": self.attrs}

    def check(self, variables) -> None:
        (var,) = variables
        if var.dtype.names is None or "status" not in var.dtype.names:
            raise ParameterError("a cuts job stores record_dtype() blocks")
        self.starts = [int(s) for s in np.concatenate([[0], np.cumsum(var.data.chunks[0])[:-1]])]

    def is_own_output(self, path: Path) -> bool:
        import h5py

        return path.is_file() and h5py.is_hdf5(path)

    @property
    def blocks(self) -> Path:
        from ..core.stream import record_path

        return record_path(self.path) / "blocks"

    def create(self, tmp: Path, variables) -> None:
        from ..core.atomic import remove_path

        remove_path(self.blocks)
        self.blocks.mkdir(parents=True)
        tmp.write_bytes(b"")  # an empty placeholder (no HDF5 file at all): finalize assembles the file

    def reopen(self, tmp: Path, variables) -> bool:
        from ..core.stream import RegionRecord, record_path

        if not (tmp.is_file() and self.blocks.is_dir()):
            return False
        done = RegionRecord(record_path(self.path)).done_keys()
        return all((self.blocks / f"{k}.h5").is_file() for k in done)  # else start over

    def _block_name(self, var_index: int, start: int) -> str:
        return f"{var_index}-{self.starts.index(start)}"

    def write(self, tmp: Path, var_index: int, region, block: np.ndarray) -> None:
        import uuid

        import h5py

        from ..io.hdf5_write import new_file

        name = self._block_name(var_index, region[0].start)
        part = self.blocks / f"{name}.{uuid.uuid4().hex}.tmp"
        keys = []
        with new_file(part) as f:
            for rec in block:
                if rec["status"] != WRITTEN:
                    continue
                key = object_key(rec["ext"], rec["number"])
                g = f.create_group(key)
                g.create_dataset("obj", data=rec["obj"], **self.opts)
                g.create_dataset("seg", data=rec["seg"], **self.opts)
                g.create_dataset("rms", data=rec["rms"], **self.opts)
                g.attrs.update({"X_IMAGE": float(rec["x"]), "Y_IMAGE": float(rec["y"]), "NUMBER": int(rec["number"]),
                                "EXT_NUMBER": int(rec["ext"]), "origin": rec["origin"].tolist(),
                                "centre": rec["centre"].tolist(), "shift": rec["shift"].tolist()})
                keys.append(key)
            f.attrs["keys"] = np.array(keys, dtype=h5py.string_dtype())
            f.attrs["n_written"] = len(keys)
            f.attrs["n_skipped_nan"] = int((block["status"] == SKIPPED_NAN).sum())
            f.attrs["n_skipped_edge"] = int((block["status"] == SKIPPED_EDGE).sum())
        os.replace(part, self.blocks / f"{name}.h5")

    def finalize(self, tmp: Path) -> None:
        import h5py

        from ..io.hdf5_write import new_file

        counts = {"n_written": 0, "n_skipped_nan": 0, "n_skipped_edge": 0}
        with new_file(tmp) as out:
            for start in self.starts:
                p = self.blocks / f"{self._block_name(0, start)}.h5"
                with reading(p, "finished block of cuts"), h5py.File(p, "r") as src:
                    for key in src.attrs["keys"]:
                        key = key.decode() if isinstance(key, bytes) else str(key)
                        src.copy(src[key], out, name=key)
                    for c in counts:
                        counts[c] += int(src.attrs[c])
            token = self.attrs.get("dre_token")
            out.attrs.update({k: v for k, v in self.attrs.items() if k != "dre_token"})
            out.attrs.update(counts)
            if token is not None:
                out.attrs["dre_token"] = token


def _stored_token(path: Path) -> str | None:
    """The ``dre_token`` of a finished cuts file (``None`` if absent or unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            token = f.attrs.get("dre_token")
    except (OSError, ValueError):
        return None
    return token.decode() if isinstance(token, bytes) else None if token is None else str(token)


def _file_identity(path) -> list:
    st = os.stat(path)
    return [str(Path(path).resolve()), int(st.st_size), int(st.st_mtime_ns)]


def make_cuts(image_or_tile: str | os.PathLike | None, sextracted, out_path: str | os.PathLike, *,
              margin: float = 80, max_stellarity: float = 1.0, filters: Iterable = (),
              centroids: str | None = None, compression: str = "medium", catalog=None,
              legacy: bool = False, centroid_target: float | None = None, name: str | None = None,
              overwrite: bool = True, warn: bool = False, objects_per_block: int = 64,
              scheduler: str | None = None, progress: bool | None = None) -> str:
    """Cut 128 x 128 obj/seg/rms stamps of the selected objects of one tile into the legacy HDF5 file.

    The job runs through the streaming engine (:func:`lazyastro.core.stream.store`, see
    :class:`CutsTarget`), one task per block of ``objects_per_block`` objects: after an
    interruption (even ``kill -9``) a rerun with the same inputs and options cuts only the missing
    blocks and ends with the bytes of an uninterrupted run; the output appears under ``out_path``
    only when complete. A finished file of the same inputs and options (its ``dre_token``
    attribute) is returned as it is, without cutting anything again.

    Parameters
    ----------
    image_or_tile : path or None
        The ``Tiles/<name>.fits`` image (used for the NaN test and the tile name); ``None`` skips
        the NaN test on it (``name`` is then required unless ``sextracted`` is a mapping).
    sextracted : path or mapping
        The ``Sextracted`` directory (flat or ``<name>/``) or a mapping of the four products (see
        :func:`find_products`).
    out_path : str or os.PathLike
        The cuts file (``Cuts/<name>_cuts.h5``); replaced (``overwrite``), written atomically.
    margin : float, optional
        Minimum distance to the edge (pixels, strict), default 80.
    max_stellarity : float, optional
        Keep ``CLASS_STAR < max_stellarity`` (default 1.0: everything but perfect stars).
    filters : iterable of (PARAM, MIN, MAX), optional
        Keep ``MIN < PARAM < MAX``.
    centroids : {"com", "1dg", "2dg"}, optional
        Re-centre each stamp on the centroid of obj over the mask (photutils).
    compression : {"none", "low", "medium", "high"}, optional
        HDF5 filter: none, lzf, gzip 4, gzip 9.
    catalog : path, optional
        Catalogue file or directory instead of the one in ``sextracted`` (legacy ``-c``).
    legacy : bool, optional
        Re-centre to 63.5 (the legacy target) instead of 64.
    centroid_target : float, optional
        Explicit re-centring target index (overrides ``legacy``).
    name : str, optional
        Tile name (default from ``image_or_tile``).
    overwrite : bool, optional
        Replace an existing output of other inputs or options (default true, as the legacy tool),
        and discard an unfinished job of other inputs instead of refusing.
    warn : bool, optional
        Warn about every skipped object (legacy ``--warn``).
    objects_per_block : int, optional
        Objects per task (the resume unit), default 64.
    scheduler, progress
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str
        ``out_path``. The counts are in the file's root attributes (``open_cuts(path).attrs``).

    Raises
    ------
    InputNotFoundError
        Missing tile or product.
    FormatError
        Empty catalogue, missing columns, product shapes that differ, two objects with one key.
    ParameterError
        Bad options.
    OutputExistsError, ResumeMismatchError
        Without ``overwrite``: an output, or an unfinished job, of other inputs is in the way.

    Examples
    --------
    >>> make_cuts("Tiles/t.fits", "Sextracted", "Cuts/t_cuts.h5")  # doctest: +SKIP
    'Cuts/t_cuts.h5'
    """
    import dask.array as da
    from astropy.io import fits
    from dask.base import tokenize

    import lazyastro

    from ..core.atomic import partial_path, remove_path
    from ..core.errors import LazyAstroError, OutputExistsError
    from ..core.stream import OutputWriteError, ResumeMismatchError, record_path, store
    from .extraction import read_catalog, tile_name

    if compression not in COMPRESSION:
        raise ParameterError(f"compression must be one of {', '.join(COMPRESSION)}, got {compression!r}")
    if centroids is not None and centroids not in CENTROIDS:
        raise ParameterError(f"centroids must be one of {', '.join(CENTROIDS)} (or None), got {centroids!r}")
    if not np.isfinite(margin) or margin < 0:
        raise ParameterError(f"margin must be >= 0, got {margin}")
    if isinstance(objects_per_block, bool) or not isinstance(objects_per_block, int | np.integer) \
            or objects_per_block < 1:
        raise ParameterError(f"objects_per_block must be a positive integer, got {objects_per_block!r}")
    if centroids is not None:
        try:
            import photutils  # noqa: F401
        except ImportError:
            raise ParameterError("centroids need photutils (pip install 'lazyastro[dre]')") from None
    filters = _check_filters(filters)
    tile = None if image_or_tile is None else require_input(image_or_tile)
    if name is None:
        if tile is not None:
            name = tile_name(tile)
        elif isinstance(sextracted, Mapping) and "catalog" in sextracted:
            name = tile_name(sextracted["catalog"]).removesuffix("_cat")
        else:
            raise ParameterError("give image_or_tile or name")
    paths = find_products(sextracted, name, catalog=catalog)
    cat = read_catalog(paths["catalog"])
    if len(cat) == 0:
        raise FormatError("catalogue is empty (no objects detected)", paths["catalog"])
    for col in ("NUMBER", "X_IMAGE", "Y_IMAGE"):
        if col not in cat.colnames:
            raise FormatError(f"catalogue has no {col} column", paths["catalog"])
    target = centroid_target if centroid_target is not None else (BOXSIZE - 1) / 2 if legacy else BOXSIZE // 2
    B = BOXSIZE
    images = {"obj": paths["nb"], "seg": paths["seg"], "rms": paths["rms"], "tile": tile}

    # everything is checked before anything is written
    with fits.open(paths["nb"], memmap=True) as nb_l:
        first = _image_hdu(nb_l, 1)
        if first is None:
            raise FormatError("no 2-D image", paths["nb"])
        shape = tuple(first.shape)
    sel = select_objects(cat, shape, margin=margin, max_stellarity=max_stellarity, filters=filters,
                         path=paths["catalog"])
    chosen = cat[sel]
    rows = np.zeros(len(chosen), ROW_DTYPE)
    rows["x"], rows["y"] = np.asarray(chosen["X_IMAGE"], float), np.asarray(chosen["Y_IMAGE"], float)
    rows["number"] = np.asarray(chosen["NUMBER"], np.int64)
    rows["ext"] = np.asarray(chosen["EXT_NUMBER"], np.int64) if "EXT_NUMBER" in chosen.colnames else 0
    keys = [object_key(e, n) for e, n in zip(rows["ext"], rows["number"])]
    if len(set(keys)) != len(keys):
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise FormatError(f"two selected objects have the key {dup} (EXT_NUMBER, NUMBER)", paths["catalog"])
    for p in images.values():
        if p is None:
            continue
        with reading(p, "image header"), fits.open(p, memmap=True) as hdul:
            for ext in sorted(set(rows["ext"].tolist())):
                hdu = _image_hdu(hdul, ext)
                if hdu is None:
                    raise FormatError("no 2-D image", p)
                if tuple(hdu.shape) != shape:
                    raise FormatError(f"image shape {tuple(hdu.shape)} differs from the nb image {shape}", p)

    options = {"margin": float(margin), "max_stellarity": float(max_stellarity), "filters": filters,
               "centroids": centroids, "centroid_target": float(target), "compression": compression, "name": name}
    token = tokenize([_file_identity(paths["catalog"])] + [_file_identity(p) for p in images.values() if p is not None],
                     sorted(options.items()), B, lazyastro.__version__)
    attrs = {"name": name, "boxsize": B, "centre": [B // 2, B // 2], "margin": float(margin),
             "max_stellarity": float(max_stellarity), "compression": compression,
             "centroids": centroids or "none", "centroid_target": float(target), "filters": str(filters),
             "layout": "dre-cuts-legacy", "n_catalog": len(cat), "n_selected": int(sel.sum()), "dre_token": token}
    out_path = Path(out_path)
    if not (out_path.is_file() and _stored_token(out_path) == token):  # else: done already, same bytes
        rows_da = da.from_array(rows, chunks=objects_per_block, name=f"dre-cut-rows-{objects_per_block}-{token}")
        blocks = rows_da.map_blocks(_cut_block, dtype=record_dtype(B), meta=np.empty((0,), record_dtype(B)),
                                    name=f"dre-cuts-{objects_per_block}-{token}", paths={
                                        k: (None if p is None else str(p)) for k, p in images.items()},
                                    centroids=centroids, target=float(target), size=B)
        try:
            store(blocks, CutsTarget(out_path, compression=compression, attrs=attrs), overwrite=overwrite,
                  scheduler=scheduler, progress=progress, desc=f"cuts {name}")
        except LazyAstroError as exc:
            if not isinstance(exc, OutputWriteError | ResumeMismatchError | OutputExistsError):
                # bad data, not an interruption: nothing to resume, leave nothing behind
                remove_path(partial_path(out_path))
                remove_path(record_path(out_path))
            raise
    _report(out_path, name, rows, keys, shape, B, warn)
    return str(out_path)


def _report(path: Path, name: str, rows, keys, shape, size: int, warn: bool) -> None:
    """The warnings of a finished job: every skipped object (``warn``), no object written."""
    import h5py

    with h5py.File(path, "r") as f:
        written = set(f.keys()) if warn else set()
        n_written, n_selected = int(f.attrs["n_written"]), int(f.attrs["n_selected"])
    if warn:
        for row, key in zip(rows, keys):
            if key in written:
                continue
            _, _, y0, x0 = cut_origin(row["x"], row["y"], size)
            if y0 < 0 or x0 < 0 or y0 + size > shape[0] or x0 + size > shape[1]:
                warnings.warn(f"{name}: object {key} too close to the edge for a {size}x{size} cut; skipped",
                              stacklevel=3)
            else:
                warnings.warn(f"{name}: object {key} has NaN (or -1e30) pixels in its cut; skipped", stacklevel=3)
    if n_written == 0:
        warnings.warn(f"{name}: no object written to {path} ({n_selected} selected)", stacklevel=3)


def _recentre(obj, mask, rms, mode, target):
    from scipy.ndimage import shift as nd_shift

    try:
        cy, cx = _centroid(obj, mask, mode)
    except ImportError:
        raise ParameterError("centroids need photutils (pip install 'lazyastro[dre]')") from None
    if not (np.isfinite(cy) and np.isfinite(cx)):
        return obj, mask, rms, (0.0, 0.0)
    dy, dx = target - cy, target - cx
    obj = nd_shift(obj.astype(np.float64), (dy, dx), order=3, mode="nearest").astype(np.float32)
    rms = nd_shift(rms.astype(np.float64), (dy, dx), order=3, mode="nearest").astype(np.float32)
    mask = nd_shift(mask.astype(np.uint8), (dy, dx), order=0, mode="constant", cval=0).astype(bool)
    return obj, mask, rms, (float(dy), float(dx))


# ----------------------------------------------------------------------------- reading


class _CutsArray:
    """Array-like over one variable of a cuts file; every read opens the file by path."""

    def __init__(self, path: str, keys: list[str], var: str, dtype, size: int, nan: str):
        self.path, self.keys, self.var, self.size, self.nan = path, keys, var, size, nan
        self.dtype = np.dtype(dtype)
        self.shape = (len(keys), size, size)
        self.ndim = 3

    def __getitem__(self, key):
        import h5py

        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (3 - len(key))
        idx = np.arange(len(self.keys))[key[0]]
        scalar = idx.ndim == 0
        idx = np.atleast_1d(idx)
        out = np.empty((len(idx), self.size, self.size), self.dtype)
        what = f"{self.var} of objects {self.keys[idx[0]]}..{self.keys[idx[-1]]}" if len(idx) else self.var
        with reading(self.path, what), h5py.File(self.path, "r") as h5:
            for i, k in enumerate(idx):
                out[i] = h5[self.keys[k]][self.var][()]
                if self.nan == "raise" and self.var != "seg" and not np.isfinite(out[i]).all():
                    raise FormatError(f"group {self.keys[k]} {self.var} has {int((~np.isfinite(out[i])).sum())} "
                                      "NaN/inf pixels (make_cuts never writes them; use nan='keep')", self.path)
        out = out[(slice(None), *key[1:])]
        return out[0] if scalar else out


def open_cuts(path: str | os.PathLike, *, objects_per_chunk: int = 64, nan: str = "raise"):
    """Open a legacy cuts file lazily as an ``xarray.Dataset``.

    Parameters
    ----------
    path : str or os.PathLike
        ``<name>_cuts.h5`` (one group ``EE_NNNN`` per object with ``obj``, ``seg``, ``rms``).
    objects_per_chunk : int, optional
        Objects per dask chunk.
    nan : {"raise", "keep"}, optional
        A non-finite ``obj``/``rms`` pixel raises :class:`FormatError` naming the group when read
        (default), or is kept.

    Returns
    -------
    xarray.Dataset
        Variables ``obj`` (float32), ``seg`` (bool, the cleaned mask), ``rms`` (float32) on
        ``("object", "y", "x")``; coordinates ``object`` (``"EE_NNNN"``), ``ext_number``, ``number``;
        attrs from the file (counts, centre, boxsize) plus ``path``.

    Raises
    ------
    InputNotFoundError
        Missing file.
    FormatError
        Not HDF5, a group without ``obj``/``seg``/``rms`` or with stamps of another shape, keys
        that are not ``EE_NNNN``.

    Examples
    --------
    >>> ds = open_cuts("Cuts/t_cuts.h5")  # doctest: +SKIP
    >>> ds.obj.dims  # doctest: +SKIP
    ('object', 'y', 'x')
    """
    import dask.array as da
    import h5py
    import xarray as xr
    from dask.base import tokenize

    if nan not in ("raise", "keep"):
        raise ParameterError(f"nan must be 'raise' or 'keep', got {nan!r}")
    if isinstance(objects_per_chunk, bool) or not isinstance(objects_per_chunk, int | np.integer) \
            or objects_per_chunk < 1:
        raise ParameterError(f"objects_per_chunk must be a positive integer, got {objects_per_chunk!r}")
    path = require_input(path)
    try:
        with h5py.File(path, "r") as h5:
            attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v.item() if isinstance(v, np.generic) else v)
                     for k, v in h5.attrs.items()}
            keys = sorted(k for k in h5.keys())
            size = None
            for k in keys:
                g = h5[k]
                if not isinstance(g, h5py.Group):
                    raise FormatError(f"{k} is not a group: not a DRE cuts file", path)
                for var in ("obj", "seg", "rms"):
                    if var not in g:
                        raise FormatError(f"group {k} has no dataset {var!r}", path)
                    shp = g[var].shape
                    if len(shp) != 2 or shp[0] != shp[1] or (size is not None and shp[0] != size):
                        raise FormatError(f"group {k} {var} has shape {shp}; expected square stamps of one size",
                                          path)
                    size = shp[0]
    except OSError as exc:
        raise FormatError(f"cannot read cuts file: {exc}", path) from exc
    size = int(size or attrs.get("boxsize", BOXSIZE))
    ext_num = np.array([parse_key(k) for k in keys], dtype=np.int64).reshape(-1, 2)
    chunks = (min(objects_per_chunk, max(len(keys), 1)), size, size)
    data = {}
    for var, dtype in (("obj", np.float32), ("seg", bool), ("rms", np.float32)):
        arr = _CutsArray(str(path), keys, var, dtype, size, nan)
        name = f"cuts-{var}-" + tokenize(os.fspath(path), os.stat(path).st_mtime_ns, keys, nan)
        data[var] = (("object", "y", "x"), da.from_array(arr, chunks=chunks, asarray=False, fancy=False, name=name))
    attrs["path"] = str(path)
    return xr.Dataset(data, coords={"object": np.array(keys, dtype=str), "ext_number": ("object", ext_num[:, 0]),
                                    "number": ("object", ext_num[:, 1])}, attrs=attrs)
