"""Running lazy graphs: scheduler choice, clusters and progress bars.

``scheduler`` is one of ``"sync"``, ``"threads"`` (default), ``"processes"``,
``"distributed"`` (a local cluster of worker processes) or the ``tcp://``
address of a running dask scheduler. ``LAZYASTRO_SCHEDULER`` sets the default.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import dask
from dask.callbacks import Callback

from .config import get_option, memory_budget
from .errors import ParameterError, as_lazyastro_error

__all__ = [
    "SCHEDULERS", "compute", "cluster", "active_client", "resolve_scheduler", "scheduler_session",
    "TqdmCallback",
]

SCHEDULERS = ("sync", "threads", "processes", "distributed")
_client_stack: list[Any] = []
_POOL: tuple[int, Any] | None = None


def resolve_scheduler(scheduler: str | None = None) -> str:
    """Validate a scheduler name (falling back to the active option) and return it."""
    name = scheduler or ("client" if _client_stack else get_option("scheduler"))
    if name in SCHEDULERS or name == "client" or str(name).startswith(("tcp://", "tls://", "inproc://")):
        return name
    if name in ("single-threaded", "synchronous"):
        return "sync"
    raise ParameterError(
        f"unknown scheduler {name!r}; use one of {', '.join(SCHEDULERS)} or a tcp:// address"
    )


def active_client():
    """The client of the innermost :func:`cluster` context, or ``None``."""
    return _client_stack[-1] if _client_stack else None


@contextlib.contextmanager
def cluster(
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    processes: bool = True,
    memory_limit: str | int | None = None,
    dashboard: bool = False,
    set_as_default: bool = True,
) -> Iterator[Any]:
    """Start (or connect to) a dask.distributed cluster for the enclosed computations.

    Inside the ``with`` block, :func:`lazyastro.compute` and all writers use it (and, with
    ``set_as_default``, plain ``.compute()`` calls too).

    >>> import lazyastro, dask.array as da
    >>> with lazyastro.cluster(n_workers=2, threads_per_worker=1) as client:  # doctest: +SKIP
    ...     lazyastro.compute(da.ones(10).sum(), progress=False)
    (np.float64(10.0),)
    """
    import dask
    from distributed import Client, LocalCluster

    if not address:
        _require_main_guard("lazyastro.cluster()")
    if address:
        client = _connect(address, set_as_default=set_as_default)
        local = None
    else:
        n_workers = n_workers or max(1, min(4, os.cpu_count() or 1))
        threads_per_worker = threads_per_worker or 1
        if memory_limit is None:
            # The budget is for data; each worker process also needs room for the interpreter
            # and libraries (~200 MiB), or the nanny keeps restarting it.
            memory_limit = memory_budget() // n_workers + 768 * 2**20
        # distributed sets MALLOC_TRIM_THRESHOLD_ in its workers; setting it disables glibc's
        # dynamic mmap threshold, so every large block buffer is a fresh mmap that page-faults
        # (2-3x slower band kernels, 20x the system time). Keep the thread-count pins only.
        environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
                   if k != "MALLOC_TRIM_THRESHOLD_"}
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            local = LocalCluster(
                n_workers=n_workers,
                threads_per_worker=threads_per_worker,
                processes=processes,
                memory_limit=memory_limit,
                dashboard_address=":0" if dashboard else None,
            )
        client = Client(local, set_as_default=set_as_default)
    _client_stack.append(client)
    try:
        yield client
    finally:
        _client_stack.remove(client)
        client.close()
        if local is not None:
            local.close()


def _require_main_guard(what: str) -> None:
    """Worker processes are spawned and re-import the user's script: refuse to recurse with a clear hint."""
    main = sys.modules.get("__main__")
    # a spawned child runs the parent's script as "__mp_main__" while it starts up
    if getattr(main, "__name__", None) == "__mp_main__" and getattr(main, "__file__", None):
        raise ParameterError(
            f"{what} starts worker processes that re-import your script; put the script's code "
            "under 'if __name__ == \"__main__\":' (see the README, 'Running')"
        )


def _connect(address: str, timeout: float = 10, set_as_default: bool = True):
    """A Client of a running scheduler; an unreachable address is a user error."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=set_as_default)
    except (OSError, TimeoutError) as exc:
        raise ParameterError(
            f"cannot reach a dask scheduler at {address} ({type(exc).__name__}); start one with "
            "'dask scheduler' and 'dask worker ADDRESS', or use --scheduler threads"
        ) from None


@contextlib.contextmanager
def scheduler_session(scheduler: str | None = None) -> Iterator[str]:
    """Yield a scheduler name that is cheap to use for many ``compute`` calls.

    ``distributed`` and ``tcp://`` addresses start (or connect) one cluster for
    the whole block instead of one per call.
    """
    name = resolve_scheduler(scheduler)
    if name == "distributed" or "://" in name:
        # not the process-wide default: dask's global config stays as it was
        with cluster(address=name if "://" in name else None, set_as_default=False):
            yield "client"
    else:
        yield name


class TqdmCallback(Callback):
    """A dask local-scheduler callback that drives a tqdm bar over tasks."""

    def __init__(self, desc: str | None = None, **tqdm_kwargs: Any):
        super().__init__()
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self.bar = None

    def _start_state(self, dsk, state):
        from tqdm.auto import tqdm

        total = sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))
        self.bar = tqdm(total=total, desc=self.desc, unit="task", file=sys.stderr, **self.tqdm_kwargs)

    def _posttask(self, key, result, dsk, state, worker_id):
        if self.bar is not None:
            self.bar.update(1)

    def _finish(self, dsk, state, errored):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _want_progress(progress: bool | None) -> bool:
    """Explicit ``progress`` wins; otherwise the option (``--no-progress``, ``LAZYASTRO_PROGRESS``)."""
    return bool(get_option("progress")) if progress is None else bool(progress)


def compute(
    *objs: Any,
    scheduler: str | None = None,
    progress: bool | None = None,
    desc: str | None = None,
    optimize_graph: bool = True,
) -> tuple:
    """Compute dask/xarray objects with the chosen scheduler and a progress bar.

    Returns a tuple with one result per argument, like :func:`dask.compute`.

    >>> import dask.array as da
    >>> compute(da.arange(10).sum(), scheduler="sync", progress=False)
    (np.int64(45),)
    """
    try:
        return _compute(objs, scheduler, progress, desc, optimize_graph)
    except Exception as exc:
        # A task's LazyAstroError comes back as itself under sync/threads/distributed; dask's
        # ``processes`` scheduler may wrap it (RemoteException, with the traceback in its str).
        err = as_lazyastro_error(exc)
        if err is None or err is exc:
            raise
        raise err.with_traceback(exc.__traceback__) from None


def _compute(objs, scheduler, progress, desc, optimize_graph) -> tuple:
    name = resolve_scheduler(scheduler)
    show = _want_progress(progress)
    if name == "client":
        return _compute_distributed(active_client(), objs, show, desc, optimize_graph)
    if name == "distributed" or "://" in name:
        with cluster(address=name if "://" in name else None, set_as_default=False) as client:
            return _compute_distributed(client, objs, show, desc, optimize_graph)
    sched = {"sync": "sync", "threads": "threads", "processes": "processes"}[name]
    kwargs: dict[str, Any] = {}
    if sched == "processes":
        kwargs["pool"] = _process_pool()
    cm = TqdmCallback(desc=desc) if show else contextlib.nullcontext()
    with cm:
        try:
            return dask.compute(*objs, scheduler=sched, optimize_graph=optimize_graph, **kwargs)
        except (BrokenProcessPool, OSError) as exc:
            if sched != "processes" or (isinstance(exc, OSError) and not isinstance(exc, BrokenProcessPool)
                                        and exc.errno != errno.EBADF):
                raise
            # the pool broke (its children died, or their pipes closed while they started)
            _reset_process_pool()
            main = sys.modules.get("__main__")
            if getattr(main, "__file__", None) and getattr(main, "__spec__", None) is None:
                raise ParameterError(
                    "worker processes died while starting; a script that uses scheduler='processes' "
                    "or lazyastro.cluster() must keep its code under 'if __name__ == \"__main__\":'"
                ) from None
            raise


def _process_pool():
    """One reusable pool of spawned worker processes (spawning re-imports lazyastro, ~1-2 s each).

    "spawn", not "fork": forking a process that runs h5py or blosc threads can deadlock.
    """
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _require_main_guard("scheduler='processes'")
        import atexit
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn"))
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
        _POOL = (os.getpid(), pool)
    return _POOL[1]


def _reset_process_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL[1].shutdown(wait=False, cancel_futures=True)
    _POOL = None


def _compute_distributed(client, objs, show, desc, optimize_graph) -> tuple:
    futures = client.compute(list(objs), optimize_graph=optimize_graph)
    if show:
        from distributed import progress as dist_progress

        # distributed's own task-level bar; sent to stderr so stdout stays clean for results.
        with contextlib.redirect_stdout(sys.stderr):
            dist_progress(futures, notebook=False)
            print(file=sys.stderr)
    return tuple(client.gather(futures))
