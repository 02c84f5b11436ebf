"""One per-process LRU cache of open read-only file handles, closed on eviction.

Reading tasks open their files by path (graphs pickle and run on any
scheduler), but opening a file for every block costs a system call or, for
HDF5, milliseconds. Every reader therefore takes its handles from this cache:
raw descriptors for positioned reads (FITS, direct HDF5 and Zarr reads) and
``h5py.File`` objects. The design follows xarray's ``CachingFileManager``:

- a :class:`CachedFile` names a file by path (and a kind of handle), so it
  pickles to any worker, where the handle is opened again on first use;
- the cache holds at most :func:`maxsize` handles; the least recently used
  one is closed when another is opened, unless it is in use (*pinned* by
  :meth:`CachedFile.acquire`), in which case it is closed when released;
- a handle belongs to one version of the file (device, inode, mtime, size):
  a rewritten or replaced file gets a fresh handle, and the old one is closed;
- a forked child starts with an empty cache (handles are never shared across
  processes).

>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "x.bin")
>>> _ = open(path, "wb").write(b"abcdef")
>>> with CachedFile(path).acquire() as fd:
...     os.pread(fd, 3, 2)
b'cde'
>>> import pickle; pickle.loads(pickle.dumps(CachedFile(path))) == CachedFile(path)
True
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["CachedFile", "cached_fd", "cached_h5", "close_all", "maxsize", "set_maxsize", "open_count",
           "pread_into", "read_box", "run_axis"]

_DEFAULT_MAXSIZE = 128


class _FD:
    """A raw read-only descriptor with a ``close`` method (what the cache stores)."""

    __slots__ = ("fd",)

    def __init__(self, path: str):
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_fd(path: str) -> _FD:
    return _FD(path)


def _open_h5(path: str):
    import h5py
    import hdf5plugin  # noqa: F401  (registers Blosc/LZ4/Zstd filters)

    return h5py.File(path, "r")


_OPENERS: dict[str, Callable[[str], Any]] = {"fd": _open_fd, "h5": _open_h5}


class _Cache:
    """The LRU of open handles (one per process; see the module docstring)."""

    def __init__(self, size: int = _DEFAULT_MAXSIZE):
        self.size = size
        self.lock = threading.RLock()
        self.files: OrderedDict[tuple, Any] = OrderedDict()
        self.pins: dict[tuple, int] = {}
        self.parked: dict[tuple, Any] = {}  # evicted while pinned: closed on release

    def _close(self, key: tuple, handle: Any) -> None:
        if self.pins.get(key):
            self.parked[key] = handle
        else:
            handle.close()

    def _evict(self) -> None:
        while len(self.files) > self.size:
            key, handle = self.files.popitem(last=False)
            self._close(key, handle)

    def get(self, key: tuple, opener: Callable[[str], Any], pin: bool) -> Any:
        with self.lock:
            handle = self.files.get(key)
            if handle is not None:
                self.files.move_to_end(key)
            else:
                handle = self.parked.pop(key, None)
                if handle is None:
                    # another version of the same file: close its handles
                    for old in [k for k in self.files if k[:2] == key[:2]]:
                        self._close(old, self.files.pop(old))
                    handle = opener(key[1])
                self.files[key] = handle
            if pin:
                self.pins[key] = self.pins.get(key, 0) + 1
            self._evict()
            return handle

    def release(self, key: tuple) -> None:
        with self.lock:
            n = self.pins.pop(key, 0) - 1
            if n > 0:
                self.pins[key] = n
                return
            handle = self.parked.pop(key, None)
        if handle is not None:
            handle.close()

    def discard(self, key: tuple) -> None:
        """Drop (and close) the handle of ``key``: it failed while in use."""
        with self.lock:
            handle = self.files.pop(key, None)
            if handle is not None:
                self._close(key, handle)

    def close_all(self) -> None:
        with self.lock:
            while self.files:
                key, handle = self.files.popitem(last=False)
                self._close(key, handle)


_CACHE = _Cache()


def _after_fork() -> None:  # pragma: no cover - runs in forked children
    global _CACHE
    _CACHE = _Cache(_CACHE.size)  # the parent's handles are not ours (never close them here)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def maxsize() -> int:
    """The most handles kept open at once (default 128)."""
    return _CACHE.size


def set_maxsize(size: int) -> None:
    """Keep at most ``size`` handles open (closing the least recently used ones now).

    Parameters
    ----------
    size : int
        At least 1.

    Examples
    --------
    >>> old = maxsize(); set_maxsize(4); maxsize()
    4
    >>> set_maxsize(old)
    """
    if int(size) < 1:
        raise ValueError("the file cache holds at least one file")
    with _CACHE.lock:
        _CACHE.size = int(size)
        _CACHE._evict()


def open_count() -> int:
    """How many handles are open in the cache now (for tests and diagnostics)."""
    with _CACHE.lock:
        return len(_CACHE.files) + len(_CACHE.parked)


def close_all() -> None:
    """Close every cached handle (those in use are closed when released)."""
    _CACHE.close_all()


class CachedFile:
    """A file named by path whose open handle comes from the per-process LRU cache.

    Parameters
    ----------
    path : str or os.PathLike
        The file (opened read-only).
    kind : {"fd", "h5"}
        ``"fd"``: a raw descriptor for ``os.pread``; ``"h5"``: an ``h5py.File``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "y.bin")
    >>> _ = open(path, "wb").write(b"0123")
    >>> f = CachedFile(path)
    >>> with f.acquire() as fd, f.acquire() as again:
    ...     fd == again
    True
    """

    __slots__ = ("path", "kind")

    def __init__(self, path: str | os.PathLike, kind: str = "fd"):
        if kind not in _OPENERS:
            raise ValueError(f"unknown kind of file handle {kind!r}; use one of {sorted(_OPENERS)}")
        self.path = os.fspath(path)
        self.kind = kind

    def __reduce__(self):
        return (CachedFile, (self.path, self.kind))

    def __eq__(self, other) -> bool:
        return isinstance(other, CachedFile) and (self.path, self.kind) == (other.path, other.kind)

    def __hash__(self) -> int:
        return hash((self.path, self.kind))

    def __repr__(self) -> str:
        return f"CachedFile({self.path!r}, kind={self.kind!r})"

    def _key(self) -> tuple:
        st = os.stat(self.path)
        return (self.kind, self.path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _unwrap(self, handle):
        return handle.fd if self.kind == "fd" else handle

    def get(self):
        """The open handle (not pinned: a later eviction may close it; prefer :meth:`acquire`)."""
        return self._unwrap(_CACHE.get(self._key(), _OPENERS[self.kind], pin=False))

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Any]:
        """The open handle, kept open until the ``with`` block ends.

        Raises
        ------
        OSError
            If the file cannot be opened (for example ``FileNotFoundError``).
        """
        key = self._key()
        handle = _CACHE.get(key, _OPENERS[self.kind], pin=True)
        try:
            yield self._unwrap(handle)
        except OSError:
            _CACHE.discard(key)  # a broken handle (file replaced or truncated): open afresh next time
            raise
        finally:
            _CACHE.release(key)

    def close(self) -> None:
        """Close this file's handles (of every version)."""
        with _CACHE.lock:
            for key in [k for k in _CACHE.files if k[:2] == (self.kind, self.path)]:
                _CACHE._close(key, _CACHE.files.pop(key))


def cached_fd(path: str | os.PathLike) -> contextlib.AbstractContextManager[int]:
    """``with cached_fd(path) as fd:`` a cached read-only descriptor for ``os.pread``.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "z.bin")
    >>> _ = open(path, "wb").write(b"xyz")
    >>> with cached_fd(path) as fd:
    ...     os.pread(fd, 1, 1)
    b'y'
    """
    return CachedFile(path, "fd").acquire()


def cached_h5(path: str | os.PathLike) -> contextlib.AbstractContextManager[Any]:
    """``with cached_h5(path) as h5:`` a cached read-only ``h5py.File``."""
    return CachedFile(path, "h5").acquire()


# --------------------------------------------------------------------------- positioned reads

_SCRATCH = threading.local()
_SCRATCH_KEEP = 8 << 20  # per-thread scratch buffers up to this size are reused


def scratch(nbytes: int) -> np.ndarray:
    """A per-thread byte buffer of at least ``nbytes`` (reused when small, so it is not faulted in again)."""
    if nbytes > _SCRATCH_KEEP:
        return np.empty(nbytes, np.uint8)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _SCRATCH.buf = np.empty(max(nbytes, 1 << 16), np.uint8)
    return buf


def pread_into(fd: int, buf: np.ndarray, offset: int, source: str | None = None) -> None:
    """Fill the C-contiguous array ``buf`` with the bytes of ``fd`` at ``offset`` (``os.preadv``).

    Raises
    ------
    EOFError
        If the file ends first (a truncated file).

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "p.bin")
    >>> _ = open(path, "wb").write(bytes(range(8)))
    >>> out = np.empty(3, np.uint8)
    >>> with cached_fd(path) as fd:
    ...     pread_into(fd, out, 4)
    >>> out.tolist()
    [4, 5, 6]
    """
    view = memoryview(buf).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise EOFError(f"file ended at byte {offset + done} while reading {len(view)} bytes at {offset}"
                           + (f" of {source}" if source else ""))
        done += n


def run_axis(shape: tuple[int, ...], slices: tuple[slice, ...]) -> int:
    """Number of leading axes that index contiguous byte runs of a block of a C-ordered array.

    Axes from the returned one onwards form one contiguous run: the block
    covers them whole, except possibly the first of them.

    >>> run_axis((4, 5, 6), (slice(0, 2), slice(0, 5), slice(0, 6)))
    0
    >>> run_axis((4, 5, 6), (slice(0, 2), slice(1, 3), slice(0, 6)))
    1
    """
    k = len(shape)
    while k > 0 and slices[k - 1].stop - slices[k - 1].start == shape[k - 1]:
        k -= 1
    return max(k - 1, 0)


def read_box(fd: int, offset: int, shape: tuple[int, ...], slices: tuple[slice, ...], out: np.ndarray,
             source: str | None = None) -> None:
    """Read ``slices`` of a C-ordered array of ``shape`` stored at byte ``offset`` into ``out``.

    The stored values have ``out.dtype``. A dense request is one read (straight
    into ``out`` when it is the exact byte range, else into a scratch buffer and
    copied); a sparse one (a narrow column band, say) is one read per
    contiguous run.

    Examples
    --------
    >>> import os, tempfile
    >>> a = np.arange(60, dtype="<u2").reshape(3, 4, 5)
    >>> path = os.path.join(tempfile.mkdtemp(), "b.bin")
    >>> _ = open(path, "wb").write(bytes(16) + a.tobytes())
    >>> out = np.empty((2, 2, 3), "<u2")
    >>> with cached_fd(path) as fd:
    ...     read_box(fd, 16, a.shape, (slice(1, 3), slice(1, 3), slice(2, 5)), out)
    >>> bool((out == a[1:3, 1:3, 2:5]).all())
    True
    """
    dtype = out.dtype
    isz = dtype.itemsize
    olen = tuple(s.stop - s.start for s in slices)
    if not olen:
        pread_into(fd, out.reshape(1), offset, source)
        return
    if 0 in olen:
        return
    cstr = [1] * len(shape)
    for a in range(len(shape) - 2, -1, -1):
        cstr[a] = cstr[a + 1] * shape[a + 1]
    f0 = sum(s.start * c for s, c in zip(slices, cstr))
    f1 = sum((s.stop - 1) * c for s, c in zip(slices, cstr)) + 1
    need = math.prod(olen)
    span = f1 - f0
    if span == need and out.flags.c_contiguous:
        pread_into(fd, out, offset + f0 * isz, source)
        return
    if span <= 2 * need or span * isz <= 1 << 18:  # dense: one read, then a strided copy
        buf = scratch(span * isz)[: span * isz]
        pread_into(fd, buf, offset + f0 * isz, source)
        out[...] = np.lib.stride_tricks.as_strided(buf.view(dtype), shape=olen,
                                                   strides=tuple(c * isz for c in cstr), writeable=False)
        return
    lead = run_axis(shape, slices)
    run_shape = olen[lead:]
    for idx in np.ndindex(*olen[:lead]):
        start = [s.start + i for s, i in zip(slices[:lead], idx)] + [s.start for s in slices[lead:]]
        pos = offset + sum(a * c for a, c in zip(start, cstr)) * isz
        dst = out[idx]
        if dst.flags.c_contiguous:
            pread_into(fd, dst, pos, source)
        else:
            buf = scratch(dst.nbytes)[: dst.nbytes]
            pread_into(fd, buf, pos, source)
            dst[...] = buf.view(dtype).reshape(run_shape)
