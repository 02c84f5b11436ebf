"""Exact order statistics over frames: band plans chosen from the storage layout and the budget.

An exact percentile needs every frame of a pixel at once, so it is computed in
*bands* (tiles) of pixels holding all frames, each band small enough that the
bands in flight fit the memory budget. How a band gets its data is the plan:

``direct``
    The series is a reader's array (a :class:`~lazyastro.frames.series.Backend`)
    whose storage lets a band of rows be read without decoding anything twice:
    uncompressed data read by byte range (hexrd HDF5 without gzip), or storage
    chunks no taller than a band (bands are then whole chunk rows). Each band task
    reads its rows of all frames itself, then partitions them.
``rechunk``
    The series is in memory (or small): bands are dask's rechunk of the input.
``spill``
    Anything else (compressed chunks taller than a band, one frame per chunk,
    processed series, frame caches): a first pass reads every input block once
    (each storage chunk is decompressed once) and writes its pieces into
    band-shaped tiles of a temporary directory; a second pass reads each tile
    (one contiguous read), partitions it and deletes it. Tiles of a row of blocks
    are freed as soon as that row is done, so the temporary space is at most the
    series and usually a fraction of it. The directory is under
    :func:`tempfile.gettempdir` (set ``TMPDIR`` to move it; on a multi-host
    cluster it must be a shared file system).

>>> import numpy as np
>>> from lazyastro.frames.series import from_array
>>> s = from_array(np.arange(24.0).reshape(4, 2, 3))
>>> plan = choose_plan(s.data, nq=1)
>>> plan.kind, plan.rows
('rechunk', 2)
>>> band_graph(s.data, plan, 50.0).compute()[0].tolist()
[[9.0, 10.0, 11.0], [12.0, 13.0, 14.0]]
"""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass

import dask.array as da
import numpy as np
from dask.base import tokenize

from ..core.backend import meta_like, to_numpy
from ..core.config import memory_budget
from ..core.errors import ParameterError
from . import kernels
from .series import Backend, MappedBackend, source_of

__all__ = ["BandPlan", "choose_plan", "band_graph", "band_rows", "storage_unit", "BAND_COPIES", "PLANS"]

PLANS = ("direct", "rechunk", "spill")
BAND_COPIES = 3


def _workers() -> int:
    """Threads (or processes) that run blocks at once: dask's ``num_workers`` or the CPU count."""
    import dask

    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def band_rows(nframes: int, nrows: int, ncols: int, itemsize: int, budget: int | None = None,
              workers: int | None = None) -> int:
    """Rows per band so that all bands being processed at once fit the memory budget.

    A band task holds its input, one frames-last copy and the partition's working
    memory (measured: about 2.3 x band bytes, counted as 3 x); ``workers + 1``
    bands may be in flight.

    Parameters
    ----------
    nframes, nrows, ncols : int
        Shape of the series (``ncols``: the width of one band).
    itemsize : int
        Bytes per value.
    budget : int, optional
        Memory budget in bytes (default: the active budget).
    workers : int, optional
        Tasks run at once (default: dask's ``num_workers`` or the CPU count).

    Returns
    -------
    int
        Band height, between 1 and ``nrows``.

    Examples
    --------
    >>> band_rows(200, 2048, 2048, 2, budget=512 * 2**20, workers=2)
    72
    """
    budget = memory_budget() if budget is None else int(budget)
    workers = workers or _workers()
    per_row = builtins.max(1, nframes * ncols * itemsize)
    rows = budget // (BAND_COPIES * (workers + 1) * per_row)
    return int(builtins.min(nrows, builtins.max(1, rows)))


def storage_unit(backend: Backend) -> tuple[int, int, int]:
    """Shape of what a read of ``backend`` decodes at least: ``(frames, rows, cols)``.

    ``rows == 1`` means rows are read exactly (uncompressed data read by byte
    range, or a reader whose ``read_region`` is its own); a compressed chunk is
    decoded whole however little of it is asked for; a reader that only reads
    whole frames (frame caches, image files) has unit ``(1, rows, cols)``.

    Parameters
    ----------
    backend : Backend
        A series reader.

    Returns
    -------
    tuple of int

    Examples
    --------
    >>> from lazyastro.frames.formats.framecache import NpzCacheBackend
    >>> storage_unit(NpzCacheBackend("c.npz", (10, 64, 32), "u2"))
    (1, 64, 32)
    """
    from .formats.hexrd_hdf5 import HexrdHDF5Backend
    from .formats.zarr_direct import ZarrDirectBackend

    while isinstance(backend, MappedBackend):
        backend = backend.parent
    _, ny, nx = backend.shape
    if isinstance(backend, ZarrDirectBackend):
        return tuple(int(c) for c in backend.layout["chunks"])
    if isinstance(backend, HexrdHDF5Backend):
        if backend.raw is not None:
            return (1, 1, nx)
        try:
            from .formats._common import cached_h5

            ds = cached_h5(backend.path)[backend.group][backend.dataname]
            if ds.chunks is None or not ds.id.get_create_plist().get_nfilters():
                return (1, 1, nx)
            chunks = tuple(ds.chunks)
            return (1,) + chunks if len(chunks) == 2 else chunks
        except (OSError, KeyError, AttributeError, TypeError, ValueError):
            return (1, ny, nx)
    if type(backend).read_region is Backend.read_region:
        return (1, ny, nx)
    return (1, 1, nx)


@dataclass(frozen=True)
class BandPlan:
    """How the bands of an exact percentile get their data (see the module doc).

    Attributes
    ----------
    kind : str
        ``direct``, ``rechunk`` or ``spill``.
    rows : int
        Band height (the tallest tile for ``spill``).
    source : Backend or None
        The reader (``direct`` only).
    reason : str
        Why this plan, in words.
    """

    kind: str
    rows: int
    source: Backend | None = None
    reason: str = ""


def choose_plan(data: da.Array, *, nq: int = 1, out_itemsize: int = 4, source=None,
                band_bytes: int | None = None, budget: int | None = None, workers: int | None = None,
                plan: str | None = None) -> BandPlan:
    """Choose the band plan for an exact percentile of ``data`` over axis 0.

    Parameters
    ----------
    data : dask.array.Array
        The series ``(frame, y, x)``.
    nq : int
        Number of percentiles (the result image is ``nq`` images).
    out_itemsize : int
        Bytes per result value.
    source : Backend or "memory", optional
        What ``data`` is the first frames of (default: :func:`~lazyastro.frames.series.source_of`).
    band_bytes : int, optional
        Bytes of input per band (instead of the memory budget).
    budget : int, optional
        Memory budget (default: the active budget).
    workers : int, optional
        Tasks run at once.
    plan : str, optional
        Force a plan (``direct`` needs a reader).

    Returns
    -------
    BandPlan

    Raises
    ------
    ParameterError
        If ``plan`` is unknown or not possible for this input.

    Examples
    --------
    >>> choose_plan(da.zeros((10, 64, 32), chunks=(1, 64, 32)), budget=2**14).kind
    'spill'
    """
    nf, ny, nx = data.shape
    itemsize = data.dtype.itemsize
    budget = memory_budget() if budget is None else int(budget)
    if plan is not None and plan not in PLANS:
        raise ParameterError(f"unknown band plan {plan!r}; use one of {', '.join(PLANS)}")
    source = source_of(data) if source is None else source

    def rows_for(ncols: int) -> int:
        if band_bytes is not None:
            return band_rows(nf, ny, ncols, itemsize, budget=BAND_COPIES * 2 * int(band_bytes), workers=1)
        # the bands share the budget with the result image (and its assembled copy)
        out_bytes = 2 * ny * nx * out_itemsize * nq
        return band_rows(nf, ny, ncols, itemsize, budget=builtins.max(1, budget - out_bytes), workers=workers)

    rows = rows_for(nx)
    small = nf * ny * nx * itemsize * BAND_COPIES <= budget
    if isinstance(source, Backend) and plan in (None, "direct"):
        unit = storage_unit(source)[1]
        if unit == 1 or small or plan == "direct":
            return BandPlan("direct", rows, source, "rows read exactly" if unit == 1 else "small series")
        if unit <= rows:
            return BandPlan("direct", rows // unit * unit, source, f"bands of whole {unit}-row chunks")
    elif plan == "direct":
        raise ParameterError("the 'direct' band plan needs a series straight from a reader")
    if plan == "rechunk" or (plan is None and (source == "memory" or small)):
        return BandPlan("rechunk", _align_rows(rows, data.chunks[1]), None,
                        "in memory" if source == "memory" else "small series")
    return BandPlan("spill", rows_for(builtins.max(data.chunks[2])), None,
                    "storage chunks taller than a band" if isinstance(source, Backend) else "computed series")


def _align_rows(rows: int, ychunks: tuple[int, ...]) -> int:
    """Align band height to the input's row chunks so each chunk is split evenly.

    >>> _align_rows(42, (128, 128)), _align_rows(300, (128, 128, 44))
    (32, 256)
    """
    c = ychunks[0]
    if len(ychunks) < 2 or rows == c:
        return rows
    if rows > c:
        return rows // c * c
    return c // -(-c // rows)


def _split(n: int, rows: int) -> tuple[int, ...]:
    """``n`` rows in near-equal bands of at most ``rows``.

    >>> _split(10, 4)
    (4, 3, 3)
    """
    parts = -(-n // builtins.max(1, rows))
    base, extra = divmod(n, parts)
    return tuple(base + 1 if i < extra else base for i in range(parts))


def _bands(ny: int, rows: int) -> tuple[int, ...]:
    return tuple(builtins.min(rows, ny - r0) for r0 in range(0, ny, rows))


def band_graph(data: da.Array, plan: BandPlan, q, *, nan: bool = False, method: str = "linear",
               dtype=np.float32, spill_dir: str | None = None) -> da.Array:
    """Lazy ``(nq, y, x)`` percentiles of ``data`` over axis 0 following ``plan``.

    Parameters
    ----------
    data : dask.array.Array
        The series ``(frame, y, x)``.
    plan : BandPlan
        From :func:`choose_plan`.
    q : float or array of float
        Percentile(s) in ``[0, 100]``.
    nan : bool
        Ignore NaN (``np.nanpercentile``).
    method : str
        NumPy's percentile method.
    dtype : dtype
        Result dtype.
    spill_dir : str, optional
        Parent of the temporary directory of the ``spill`` plan (default: the temp dir).

    Returns
    -------
    dask.array.Array
        Shape ``(nq, y, x)`` (``nq = 1`` for a scalar ``q``).

    Raises
    ------
    ParameterError
        If the temporary directory lacks the space for the ``spill`` plan.

    Examples
    --------
    >>> x = da.from_array(np.arange(8.0).reshape(2, 2, 2), chunks=1)
    >>> band_graph(x, choose_plan(x, plan="spill"), 50.0).compute()[0].tolist()
    [[2.0, 3.0], [4.0, 5.0]]
    """
    qs = np.atleast_1d(np.asarray(q, dtype=np.float64))
    nq = len(qs)
    nf, ny, nx = data.shape
    dtype = np.dtype(dtype)
    token = tokenize(data.name, qs.tolist(), nan, method, dtype.str, plan.kind, plan.rows)
    opts = {"q": qs, "nan": nan, "method": method, "out_dtype": dtype.str}
    if plan.kind == "direct":
        be = plan.source
        return da.map_blocks(_direct_band, chunks=((nq,), _bands(ny, plan.rows), (nx,)), dtype=dtype,
                             meta=meta_like(data, ndim=3, dtype=dtype), name=f"band-direct-{token}",
                             backend=be, nframes=nf, **opts)
    if plan.kind == "rechunk":
        band = data.rechunk({0: -1, 1: plan.rows, 2: -1})
        return band.map_blocks(_band_block, chunks=((nq,), band.chunks[1], (nx,)), dtype=dtype,
                               meta=meta_like(data, ndim=3, dtype=dtype), name=f"band-rechunk-{token}", **opts)
    if plan.kind != "spill":
        raise ParameterError(f"unknown band plan {plan.kind!r}")
    return _spill_graph(data, plan.rows, token, opts, spill_dir)


def _direct_band(backend, nframes, q, nan, method, out_dtype, block_info=None):
    (_, _), (r0, r1), (_, _) = block_info[None]["array-location"]
    band = backend[0:nframes, r0:r1, :]
    return _percentile(band, q, nan, method, out_dtype)


def _band_block(block, q, nan, method, out_dtype):
    return _percentile(block, q, nan, method, out_dtype)


def _percentile(band, q, nan, method, dtype):
    return kernels.band_percentile(q, band, nan=nan, method=method, dtype=np.dtype(dtype))


# ----------------------------------------------------------------------------- spill plan


@dataclass(frozen=True)
class _Tiles:
    """Layout of the spill tiles: tile ``(t, k)`` holds rows ``ty[t]:ty[t+1]``, cols ``tx[k]:tx[k+1]``.

    A tile file is a C-ordered ``(nframes, rows, cols)`` array, so the piece of
    any frame block is one contiguous write.
    """

    root: str
    ty: tuple[int, ...]
    tx: tuple[int, ...]
    nframes: int
    dtype: str

    def path(self, t: int, k: int) -> str:
        return os.path.join(self.root, f"tile-{t}-{k}.raw")

    def tile_rows(self, y0: int, y1: int) -> range:
        i = int(np.searchsorted(self.ty, y0, side="right")) - 1
        j = int(np.searchsorted(self.ty, y1, side="left"))
        return range(i, j)


def _spill_graph(data: da.Array, rows: int, token: str, opts: dict, spill_dir: str | None) -> da.Array:
    nf, ny, nx = data.shape
    nq = len(opts["q"])
    parent = spill_dir or tempfile.gettempdir()
    need = nf * ny * nx * data.dtype.itemsize
    try:
        free = shutil.disk_usage(parent).free
    except OSError:
        free = need
    if free < need:
        raise ParameterError(
            f"an exact percentile of this series needs {need / 2**30:.1f} GiB of temporary space "
            f"in {parent} ({free / 2**30:.1f} GiB free); set TMPDIR to a larger disk")
    ty = [0]
    for c in data.chunks[1]:
        for h in _split(c, rows):
            ty.append(ty[-1] + h)
    tx = tuple(int(v) for v in np.cumsum((0,) + data.chunks[2]))
    # a directory of its own per graph (two runs of the same job must not share tiles); the
    # task names stay deterministic (they come from ``token``, not from the directory)
    root = os.path.join(parent, f"lazyastro-spill-{token}-{uuid.uuid4().hex[:12]}")
    tiles = _Tiles(root, tuple(ty), tx, nf, data.dtype.str)
    nfb, nyb, nxb = (len(c) for c in data.chunks)
    # pass 1: every block written once into its tiles (the read is fused into this task)
    marks = data.map_blocks(_spill_block, tiles=tiles, chunks=((1,) * nfb, (1,) * nyb, (1,) * nxb),
                                   dtype=np.uint8, meta=np.empty((0, 0, 0), np.uint8), name=f"band-spill-{token}")
    # pass 2: a tile-row of tasks per row of blocks, each waiting only for that row's blocks
    meta = np.empty((0, 0, 0), np.dtype(opts["out_dtype"]))
    ys = np.cumsum((0,) + data.chunks[1])
    parts = []
    for j in range(nyb):
        row_marks = marks[:, j : j + 1, :].rechunk({0: -1})
        for t in tiles.tile_rows(int(ys[j]), int(ys[j + 1])):
            h = tiles.ty[t + 1] - tiles.ty[t]
            parts.append(row_marks.map_blocks(_spill_tile, tiles=tiles, t=t, chunks=((nq,), (h,), data.chunks[2]),
                                              dtype=meta.dtype, meta=meta, name=f"band-tile-{t}-{token}", **opts))
    return da.concatenate(parts, axis=1)


def _spill_block(block, tiles: _Tiles, block_info=None):
    (f0, f1), (y0, y1), (x0, x1) = block_info[0]["array-location"]
    block = to_numpy(block)
    k = tiles.tx.index(x0)
    for t in tiles.tile_rows(y0, y1):
        a, b = tiles.ty[t], tiles.ty[t + 1]
        piece = np.ascontiguousarray(block[:, a - y0 : b - y0])
        fd = _create(tiles.root, tiles.path(t, k))
        try:
            _pwrite_all(fd, memoryview(piece).cast("B"), f0 * (b - a) * (x1 - x0) * piece.itemsize)
        finally:
            os.close(fd)
    return np.zeros((1, 1, 1), np.uint8)


def _spill_tile(marks, tiles: _Tiles, t: int, q, nan, method, out_dtype, block_info=None):
    (_, _), (_, _), (x0, x1) = block_info[None]["array-location"]
    k = tiles.tx.index(x0)
    shape = (tiles.nframes, tiles.ty[t + 1] - tiles.ty[t], x1 - x0)
    tile = np.empty(shape, np.dtype(tiles.dtype))
    path = tiles.path(t, k)
    fd = os.open(path, os.O_RDONLY)
    try:
        _pread_all(fd, memoryview(tile).cast("B"), path)
    finally:
        os.close(fd)
    os.remove(path)
    try:
        os.rmdir(tiles.root)  # the last tile removes the directory (a later writer makes it again)
    except OSError:
        pass
    return _percentile(tile, q, nan, method, out_dtype)


def _create(root: str, path: str) -> int:
    """Open a tile for writing, making the directory (the last tile of a row may just have removed it)."""
    for _ in range(100):
        try:
            os.makedirs(root, exist_ok=True)
            return os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        except (FileNotFoundError, FileExistsError):  # removed by a finishing tile meanwhile
            continue
    raise OSError(f"{root}: cannot create temporary tiles")


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)


def _pread_all(fd: int, view: memoryview, path: str) -> None:
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], done)
        if n <= 0:
            raise OSError(f"{path}: temporary tile is short ({done} of {len(view)} bytes)")
        done += n
