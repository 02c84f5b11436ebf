"""One streaming, resumable, atomic writer engine for every output format.

A *target* (a :class:`StreamTarget` subclass: FITS, Zarr, HDF5, ...) says how
an output is laid out and written:

- ``chunks(var)``: the write blocks of one variable (whole shards, byte runs...);
- ``create(tmp, variables)`` / ``reopen(tmp, variables)``: make the empty output
  under its temporary name, or get an interrupted one ready to resume;
- ``write(tmp, var_index, region, block)``: store one block (any process);
- ``finalize(tmp)``: last touches before the rename.

:func:`store` is the one driver: it takes a dask array, a ``DataArray`` or a
``Dataset`` (several variables in one pass; reads they share are computed
once), writes every block under any scheduler, records each finished region in
a :class:`RegionRecord` beside ``<name>.partial``, and renames the output into
place only when everything is written. A rerun after an interruption (even
``kill -9``) with the same inputs and parameters writes only the missing
regions and ends with the same bytes; a rerun with *different* inputs or
parameters is refused instead of mixing two outputs.

>>> import dask.array as da
>>> from lazyastro.io.zarr import ZarrTarget
>>> store(da.ones((4, 4), chunks=2), ZarrTarget("/tmp/_stream_doc.zarr"), overwrite=True, progress=False)
'/tmp/_stream_doc.zarr'
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import partial_path, remove_path
from .errors import LazyAstroError, OutputExistsError, ParameterError

__all__ = [
    "Variable", "StreamTarget", "RegionRecord", "ResumeMismatchError", "OutputWriteError",
    "as_variables", "store", "regions", "record_path", "output_error", "default_dims",
]


class ResumeMismatchError(LazyAstroError):
    """An unfinished output exists, but of other data or other parameters."""


class OutputWriteError(LazyAstroError, OSError):
    """Writing the output failed (disk full, read-only, permission denied...)."""


# --------------------------------------------------------------------------- variables


@dataclass
class Variable:
    """One array to store: a dask array with its dims, attrs and (for Datasets) its name."""

    name: str | None
    data: Any  # dask.array.Array
    dims: tuple[str, ...]
    attrs: dict = field(default_factory=dict)
    #: wrapped from an in-memory array: another process cannot resume its write
    in_memory: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)


def default_dims(ndim: int) -> tuple[str, ...]:
    """Conventional dim names: ``(y, x)``, ``(frame, y, x)``, ``(band, frame, y, x)``.

    >>> default_dims(3)
    ('frame', 'y', 'x')
    """
    names = {1: ("x",), 2: ("y", "x"), 3: ("frame", "y", "x"), 4: ("band", "frame", "y", "x")}
    return names.get(ndim, tuple(f"dim_{i}" for i in range(ndim)))


def _wrap_memory(array: np.ndarray, chunks) -> Any:
    """A dask array over an in-memory array: no copy, no hashing of the data (random name).

    ``da.from_array`` copies array-likes that have a ``copy`` method (a full copy of
    the input before anything is written), so the graph is built here: one
    literal per block, each a *view* of ``array`` (a process or cluster scheduler
    pickles only its own block).
    """
    import dask.array as da

    chunks = da.core.normalize_chunks(chunks, array.shape, dtype=array.dtype)
    name = f"memory-{uuid.uuid4().hex}"
    graph = {(name, *idx): array[region] for idx, region in regions(chunks)}
    return da.Array(graph, name, chunks, meta=array[(slice(0, 0),) * array.ndim])


def as_variables(source: Any, chunks=None) -> list[Variable]:
    """The variables of a dask array, NumPy array, ``DataArray`` or ``Dataset``.

    In-memory arrays are wrapped without copying or hashing them, in ``chunks``
    (a callable ``(shape, dtype) -> chunks``) when given, so writers get their
    write-aligned blocks from the start.

    >>> import numpy as np
    >>> [v.dims for v in as_variables(np.zeros((2, 3)))]
    [('y', 'x')]
    """
    import dask.array as da
    import xarray as xr

    def coerce(data, dims, attrs, name):
        in_memory = not isinstance(data, da.Array)
        if in_memory:
            data = np.asarray(data)
            if data.dtype == object:
                raise ParameterError(f"cannot store an object array{f' ({name})' if name else ''}")
            chunk_shape = chunks(data.shape, data.dtype) if callable(chunks) else (chunks or "auto")
            data = _wrap_memory(data, chunk_shape)
        dims = tuple(str(d) for d in dims) if dims else default_dims(data.ndim)
        return Variable(None if name is None else str(name), data, dims, dict(attrs), in_memory)

    if isinstance(source, xr.Dataset):
        if not source.data_vars:
            raise ParameterError("the Dataset has no data variables to store")
        return [coerce(v.data, v.dims, v.attrs, k) for k, v in source.data_vars.items()]
    if isinstance(source, xr.DataArray):
        return [coerce(source.data, source.dims, source.attrs, source.name)]
    return [coerce(source, None, {}, None)]


def regions(chunks: Sequence[Sequence[int]]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """``(block_index, slices)`` of every block of a chunk structure, in C order.

    >>> [s for _, s in regions(((2, 1), (3,)))]
    [(slice(0, 2, None), slice(0, 3, None)), (slice(2, 3, None), slice(0, 3, None))]
    """
    starts = [np.concatenate([[0], np.cumsum(c)[:-1]]).astype(int) for c in chunks]
    for idx in np.ndindex(*(len(c) for c in chunks)):
        yield tuple(int(i) for i in idx), tuple(
            slice(int(starts[a][i]), int(starts[a][i] + chunks[a][i])) for a, i in enumerate(idx)
        )


# --------------------------------------------------------------------------- records


def record_path(path: str | os.PathLike) -> Path:
    """Where the region record of an output lives: ``<name>.partial.done``."""
    p = partial_path(path)
    return p.with_name(p.name + ".done")


class RegionRecord:
    """Completion markers of a resumable job, with the fingerprint they belong to.

    A directory holding ``meta.json`` (the fingerprint: shapes, dtypes, chunks,
    a token of the inputs, the parameters) and one empty ``<key>.done`` file per
    finished piece, created atomically after the piece is durably written. The
    record is a plain path, so it pickles to any worker. Writers, batch caches
    and tables all use it.

    >>> rec = RegionRecord("/tmp/_doc_record")
    >>> rec.start({"job": 1}); rec.mark_done("0_0"); sorted(rec.done_keys())
    ['0_0']
    >>> rec.matches({"job": 1}), rec.matches({"job": 2})
    (True, False)
    >>> rec.remove()
    """

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)

    def __reduce__(self):
        return (RegionRecord, (str(self.dir),))

    @property
    def meta(self) -> Path:
        return self.dir / "meta.json"

    def exists(self) -> bool:
        return self.meta.exists()

    def fingerprint(self) -> dict | None:
        try:
            return json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return None

    def matches(self, fingerprint: dict) -> bool:
        return self.fingerprint() == json.loads(json.dumps(fingerprint, sort_keys=True))

    def start(self, fingerprint: dict) -> None:
        """Start a new record (dropping any old one) for ``fingerprint``."""
        self.remove()
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"meta.json.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(fingerprint, sort_keys=True))
        os.replace(tmp, self.meta)

    def open(self, fingerprint: dict) -> bool:
        """Resume the record if it matches ``fingerprint`` (True), else start it anew (False).

        For jobs that simply redo everything when their parameters changed (batch
        caches, tables); writers refuse a mismatch instead (see :func:`store`).
        """
        if self.exists() and self.matches(fingerprint):
            return True
        self.start(fingerprint)
        return False

    def is_done(self, key: str) -> bool:
        return (self.dir / f"{key}.done").exists()

    def mark_done(self, key: str) -> None:
        tmp = self.dir / f"{key}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(b"")
        os.replace(tmp, self.dir / f"{key}.done")

    def done_keys(self) -> set[str]:
        if not self.dir.exists():
            return set()
        return {p.name[: -len(".done")] for p in self.dir.glob("*.done")}

    def remove(self) -> None:
        remove_path(self.dir)


# --------------------------------------------------------------------------- targets


class StreamTarget:
    """Base class of output targets (see the module docstring).

    Subclasses set :attr:`format` and override the layout hooks. Targets hold
    paths and parameters only, so they pickle to any worker process.
    """

    format: str = "output"
    #: True when blocks must be written by one process (HDF5): the driver then
    #: computes blocks in budget-sized batches and writes them itself.
    single_writer: bool = False

    def __init__(self, path: str | os.PathLike):
        self.path = Path(os.fspath(path))

    # -- parameters and layout
    def params(self) -> dict:
        """Parameters that change the output bytes (part of the resume fingerprint)."""
        return {}

    def check(self, variables: list[Variable]) -> None:
        """Validate the variables before anything is written (raise ParameterError & co.)."""

    def chunks(self, var_index: int, var: Variable) -> tuple[tuple[int, ...], ...]:
        """Write blocks of variable ``var_index`` (default: its dask chunks)."""
        return var.data.chunks

    def is_own_output(self, path: Path) -> bool:
        """True if an existing ``path`` is an output of this format that overwrite may replace."""
        return path.is_file()

    # -- writing
    def create(self, tmp: Path, variables: list[Variable]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def reopen(self, tmp: Path, variables: list[Variable]) -> bool:
        """Get an interrupted output ready to resume; False to start over instead."""
        return tmp.exists()

    def write(self, tmp: Path, var_index: int, region: tuple[slice, ...], block: np.ndarray) -> None:
        raise NotImplementedError  # pragma: no cover - abstract

    def finalize(self, tmp: Path) -> None:
        """Last touches before the rename (close, flush, consolidate)."""


# --------------------------------------------------------------------------- errors


_OUTPUT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for the file system",
}


def output_error(exc: BaseException, path: Path, resumable: bool) -> LazyAstroError | None:
    """A one-line :class:`OutputWriteError` for an OS error while writing, else ``None``."""
    err = exc
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    if not isinstance(err, OSError) or isinstance(err, LazyAstroError):
        return None
    code = getattr(err, "errno", None)
    what = _OUTPUT_ERRNOS.get(code) if code is not None else None
    if what is None:
        text = str(err).lower()
        what = next((v for k, v in (("no space", _OUTPUT_ERRNOS[errno.ENOSPC]),
                                    ("read-only", _OUTPUT_ERRNOS[errno.EROFS]),
                                    ("permission", _OUTPUT_ERRNOS[errno.EACCES])) if k in text), None)
    if what is None:
        return None
    tail = (f"the unfinished output is kept at {partial_path(path).name}; rerun the same command to "
            "resume, or remove it") if resumable else "nothing was written"
    return OutputWriteError(f"cannot write: {what} ({tail})", path)


# --------------------------------------------------------------------------- driver


def check_target_path(target: StreamTarget, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite``; even then, replace only our own kind of output."""
    path = target.path
    if not (path.exists() or path.is_symlink()):
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not overwrite:
        raise OutputExistsError("output already exists (use overwrite=True / --overwrite)", path)
    if path.is_symlink() or not target.is_own_output(path):
        kind = "directory" if path.is_dir() else "file"
        raise OutputExistsError(
            f"output exists and is a {kind} that is not a {target.format} output; "
            "refusing to replace it (remove it yourself or choose another name)", path,
        )


def _token(data) -> str:
    """A token of a dask array's inputs: its graph name (random for in-memory data)."""
    return str(data.name)


def _fingerprint(target: StreamTarget, variables: list[Variable]) -> dict:
    return {
        "format": target.format,
        "params": target.params(),
        "variables": [
            {"name": v.name, "shape": list(v.shape), "dtype": v.dtype.str, "dims": list(v.dims),
             "chunks": [list(c) for c in v.data.chunks], "token": _token(v.data)}
            for v in variables
        ],
    }


def _difference(old, new, where: str = "") -> str:
    """The first place where two fingerprints differ, e.g. ``variables[1].token``."""
    new = json.loads(json.dumps(new, sort_keys=True))
    if isinstance(old, dict) and isinstance(new, dict):
        for k in sorted(set(old) | set(new)):
            if old.get(k) != new.get(k):
                return _difference(old.get(k), new.get(k), f"{where}.{k}" if where else str(k))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            if a != b:
                return _difference(a, b, f"{where}[{i}]")
    return where or "everything"


def _key(var_index: int, idx: tuple[int, ...]) -> str:
    return f"{var_index}-" + "_".join(map(str, idx))


def _write_task(block, target: StreamTarget, tmp: str, var_index: int, region, key: str,
                record: RegionRecord) -> int:
    from .backend import to_numpy

    block = to_numpy(block)
    expected = tuple(s.stop - s.start for s in region)
    if block.shape != expected:
        raise ParameterError(f"a block of shape {block.shape} does not fit its region {expected}")
    target.write(Path(tmp), var_index, region, block)
    if record is not None:  # None: a write that cannot be resumed (in-memory input) keeps no marks
        record.mark_done(key)
    return 1


def _finish_task(target: StreamTarget, tmp: str, record: RegionRecord, *written) -> str:
    target.finalize(Path(tmp))
    _move_into_place(Path(tmp), target.path)
    record.remove()
    return str(target.path)


def _move_into_place(tmp: Path, path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # a directory store: move the old one aside first so the rename stays atomic-ish
        old = path.with_name(f"{path.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def _resumable(variables: list[Variable]) -> bool:
    """In-memory inputs get random names: their writes cannot be resumed by another process."""
    return not any(v.in_memory for v in variables)


def store(
    source: Any,
    target: StreamTarget,
    *,
    overwrite: bool = False,
    compute: bool = True,
    scheduler: str | None = None,
    progress: bool | None = None,
    desc: str | None = None,
):
    """Stream ``source`` (array, DataArray or Dataset) into ``target``, resumably and atomically.

    Parameters
    ----------
    source : dask.array.Array, numpy.ndarray, xarray.DataArray or xarray.Dataset
        What to store; a Dataset stores every data variable in one pass.
    target : StreamTarget
        The output (``FitsTarget``, ``ZarrTarget``, ``HDF5Target``, ...).
    overwrite : bool, optional
        Replace an existing output of the same format (never anything else),
        and discard an unfinished output of other data instead of refusing.
    compute : bool, optional
        ``False`` returns a ``dask.delayed`` that performs the writes (the empty
        output is created at once).
    scheduler, progress, desc
        As for :func:`lazyastro.compute`.

    Returns
    -------
    str or dask.delayed.Delayed
        The output path (or the lazy store).

    Raises
    ------
    OutputExistsError
        The output exists (without ``overwrite``), or is not this format's.
    ResumeMismatchError
        An unfinished output of other data or parameters is in the way.
    OutputWriteError
        The disk is full, read-only or not writable.

    Examples
    --------
    >>> import numpy as np
    >>> from lazyastro.io.fits import FitsTarget
    >>> store(np.arange(6.0).reshape(2, 3), FitsTarget("/tmp/_doc_store.fits"), overwrite=True,
    ...       progress=False)
    '/tmp/_doc_store.fits'
    """
    import dask

    variables = as_variables(source, chunks=getattr(target, "memory_chunks", None))
    target.check(variables)
    check_target_path(target, overwrite)
    for vi, v in enumerate(variables):
        want = tuple(tuple(int(n) for n in c) for c in target.chunks(vi, v))
        if want != v.data.chunks:
            v.data = v.data.rechunk(want)
    tmp = partial_path(target.path)
    record = RegionRecord(record_path(target.path))
    fingerprint = _fingerprint(target, variables)
    resumable = _resumable(variables)
    resuming = False
    if record.exists() and (tmp.exists() or tmp.is_symlink()):
        if record.matches(fingerprint) and resumable:
            resuming = target.reopen(tmp, variables)
        elif not overwrite:
            what = "in-memory data" if not resumable else _difference(record.fingerprint(), fingerprint)
            raise ResumeMismatchError(
                f"an unfinished write of other data or parameters is in the way "
                f"({tmp.name}; differs in {what}); rerun with the original inputs to resume it, "
                "or pass overwrite=True / --overwrite to discard it", target.path,
            )
    try:
        if not resuming:
            remove_path(tmp)
            record.start(fingerprint)
            target.create(tmp, variables)
    except BaseException as exc:
        remove_path(tmp)
        record.remove()
        err = output_error(exc, target.path, resumable=False)
        if err is not None:
            raise err from None
        raise
    done = record.done_keys() if resuming else set()
    pending = []
    for vi, var in enumerate(variables):
        # unoptimised: reads shared by several variables keep their keys and run once
        blocks = var.data.to_delayed(optimize_graph=False).ravel()
        for blk, (idx, region) in zip(blocks, regions(var.data.chunks)):
            key = _key(vi, idx)
            if key not in done:
                pending.append((vi, idx, region, key, blk))
    if target.single_writer:
        if not compute:
            return _single_writer_delayed(target, tmp, record, pending)
        return _run_single_writer(target, tmp, record, pending, scheduler, progress, desc, resumable)
    marks = record if resumable else None
    writes = [
        dask.delayed(_write_task, pure=False)(blk, target, str(tmp), vi, region, key, marks)
        for vi, idx, region, key, blk in pending
    ]
    result = dask.delayed(_finish_task, pure=False)(target, str(tmp), record, *writes)
    if not compute:
        return result
    from .execution import compute as run

    try:
        (out,) = run(result, scheduler=scheduler, progress=progress, desc=desc or f"write {target.path.name}")
    except BaseException as exc:
        _after_failure(exc, target, tmp, record, resumable)
        raise
    return out


def _after_failure(exc: BaseException, target: StreamTarget, tmp: Path, record: RegionRecord,
                   resumable: bool) -> None:
    """Keep a resumable partial output (say so), remove a non-resumable one; raise OS errors as one line."""
    if not resumable:
        remove_path(tmp)
        record.remove()
    err = output_error(exc, target.path, resumable)
    if err is not None:
        raise err from None


def _batch_size(pending, budget: int | None = None) -> int:
    from .config import memory_budget

    if not pending:
        return 1
    biggest = max(math.prod(s.stop - s.start for s in p[2]) * 8 for p in pending)
    return int(max(1, min(32, (memory_budget() if budget is None else budget) // (3 * max(1, biggest)))))


def _run_single_writer(target, tmp, record, pending, scheduler, progress, desc, resumable) -> str:
    """Compute blocks in budget-sized batches (any scheduler), write them from this process."""
    from tqdm.auto import tqdm

    from .execution import _want_progress, scheduler_session
    from .execution import compute as run

    batch = _batch_size(pending)
    try:
        with tqdm(total=len(pending), desc=desc or f"write {target.path.name}", unit="block",
                  disable=not _want_progress(progress)) as bar, scheduler_session(scheduler) as sched:
            for start in range(0, len(pending), batch):
                part = pending[start : start + batch]
                values = run(*[p[4] for p in part], scheduler=sched, progress=False)
                for (vi, _idx, region, key, _blk), value in zip(part, values):
                    _write_task(value, target, str(tmp), vi, region, key, record if resumable else None)
                bar.update(len(part))
        return _finish_task(target, str(tmp), record)
    except BaseException as exc:
        try:
            target.finalize(Path(tmp))  # close what is open, keep what is written
        except Exception:
            pass
        _after_failure(exc, target, tmp, record, resumable)
        raise


def _single_writer_delayed(target, tmp, record, pending):
    """A lazy store whose writes run one after another (a chain), so one process writes at a time."""
    import dask

    prev = None
    for vi, _idx, region, key, blk in pending:
        prev = dask.delayed(_chained_write, pure=False)(blk, target, str(tmp), vi, region, key, record, prev)
    return dask.delayed(_finish_task, pure=False)(target, str(tmp), record, prev)


def _chained_write(block, target, tmp, vi, region, key, record, _previous) -> int:
    out = _write_task(block, target, tmp, vi, region, key, record)
    target.finalize(Path(tmp))  # close the file so the next write (maybe another process) can open it
    return out

