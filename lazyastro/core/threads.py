"""BLAS threads inside dask tasks: one per task, for reproducible bits and no oversubscription.

OpenBLAS splits a matrix product among its threads, and the split changes how the product is
rounded: the same float32 product gives other last bits with 1 and with 2 BLAS threads (85 % of
the pixels of a 2048-px Spatial-GAN mosaic differed by up to 6e-4). A kernel whose pixels must
not depend on where it runs (a tile in a worker with one BLAS thread, the same pixels one-shot
in a notebook with all cores) therefore runs its products on one thread. It is also faster
under a parallel scheduler: two dask threads each running OpenBLAS on all cores oversubscribe the
machine (a 2048-px mosaic: 26.7 s with 2 BLAS threads per task, 17.6 s with 1, on 2 cores).

:func:`single_thread_blas` (:mod:`threadpoolctl`) lowers the BLAS pools of this process to one
thread while at least one such body runs and restores them when the last one ends (reference
counted, so concurrent tasks of the threaded scheduler do not undo each other's limit).

>>> with single_thread_blas():
...     pass
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["single_thread_blas"]

_lock = threading.Lock()
_users = 0
_limiter = None


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run the body with one BLAS thread in this process (nested and concurrent uses are safe)."""
    global _users, _limiter
    with _lock:
        if _users == 0:
            _limiter = threadpool_limits(limits=1, user_api="blas")
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
