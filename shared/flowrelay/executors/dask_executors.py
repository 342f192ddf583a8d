"""Executors on dask: ``LocalDaskExecutor`` (local schedulers) and ``DaskExecutor`` (distributed).

Both import dask only in ``start()``; constructing them is free.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

from flowrelay.executors.base import Executor
from flowrelay.importing import import_object

T = TypeVar("T")
log = logging.getLogger("flowrelay.executors")

_SCHEDULERS = {
    "threads": "threads",
    "threading": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
    "synchronous": "synchronous",
    "sync": "synchronous",
    "single-threaded": "synchronous",
}


class LocalDaskExecutor(Executor):
    """Runs tasks with dask's local schedulers: a thread pool, a process pool, or synchronously.

    Args:
        scheduler: ``"threads"`` (default), ``"processes"`` or ``"synchronous"``.
        **kwargs: dask configuration set while the run computes (e.g.
            ``{"array.chunk-size": "64MiB"}``); ``num_workers`` sizes the thread or process pool
            (default: the number of CPUs).

    >>> executor = LocalDaskExecutor(scheduler="threads", num_workers=64)
    """

    def __init__(self, scheduler: str = "threads", **kwargs: Any) -> None:
        if scheduler not in _SCHEDULERS:
            raise ValueError(
                f"LocalDaskExecutor: unknown scheduler {scheduler!r}; "
                f"use 'threads', 'processes' or 'synchronous'"
            )
        self.scheduler = _SCHEDULERS[scheduler]
        num_workers = kwargs.pop("num_workers", None)
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
            raise ValueError(
                f"LocalDaskExecutor: num_workers must be an int >= 1, got {num_workers!r}"
            )
        self.num_workers: int | None = num_workers
        self.dask_config: dict[str, Any] = kwargs
        self._pool: Any = None
        self._pending: list[Any] = []
        self._resolved: dict[Any, Any] = {}
        self._delayed_functions: dict[Callable[..., Any], Any] = {}
        self._keys = itertools.count()

    @contextmanager
    def start(self) -> Iterator[None]:
        from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

        workers = self.num_workers or os.cpu_count() or 1
        if self.scheduler == "threads":
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="flowrelay-task")
        elif self.scheduler == "processes":
            import dask
            from dask.multiprocessing import get_context

            # Worker processes do not inherit the dask config set around compute(): set it there.
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=get_context(),
                initializer=dask.config.set,
                initargs=(self.dask_config,),
            )
        completed = False
        try:
            yield
            completed = True
        finally:
            pool, self._pool = self._pool, None
            self._pending, self._resolved, self._delayed_functions = [], {}, {}
            if pool is not None:
                if not completed and isinstance(pool, ProcessPoolExecutor):
                    # Interrupted: do not wait for long tasks in child processes to finish.
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.terminate()
                pool.shutdown(wait=completed, cancel_futures=True)

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        delayed_fn = self._delayed_functions.get(fn)
        if delayed_fn is None:
            from dask.delayed import delayed

            delayed_fn = self._delayed_functions[fn] = delayed(fn, pure=False)
        name = (extra_context or {}).get("task_name", "task")
        lazy = delayed_fn(
            *self._swap_resolved(args),
            dask_key_name=f"{name}-{next(self._keys)}",
            **self._swap_resolved(kwargs),
        )
        self._pending.append(lazy)
        return lazy

    def wait(self, futures: T) -> T:
        """Compute ``futures`` together with everything submitted and not yet computed, so a
        task is never computed twice when the engine waits more than once in a run."""
        import dask
        from dask.base import compute

        pending, self._pending = self._pending, []
        with dask.config.set(self.dask_config):
            computed, computed_pending = compute(
                self._swap_resolved(futures),
                pending,
                scheduler=self.scheduler,
                pool=self._pool,
                optimize_graph=False,
            )
        for lazy, value in zip(pending, computed_pending, strict=True):
            self._resolved[lazy.key] = value
        return computed  # type: ignore[no-any-return]

    def _swap_resolved(self, value: Any) -> Any:
        """``value`` with every already computed lazy result replaced by its value."""
        if not self._resolved:
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self._swap_resolved(item) for item in value)
        if isinstance(value, dict):
            return {key: self._swap_resolved(item) for key, item in value.items()}
        key = getattr(value, "key", None)
        if key is not None and key in self._resolved and hasattr(value, "dask"):
            return self._resolved[key]
        return value

    def __repr__(self) -> str:
        return f"<LocalDaskExecutor scheduler={self.scheduler!r}>"


class DaskExecutor(Executor):
    """Runs tasks on ``dask.distributed``.

    By default a temporary ``distributed.LocalCluster`` is created when the run starts and closed
    when it ends, whether the run succeeded, failed or was interrupted. ``cluster_class`` (a class
    or an import string such as ``"dask_cloudprovider.aws.FargateCluster"``) and
    ``cluster_kwargs`` choose another; ``adapt_kwargs`` turns on adaptive scaling (only when
    given); ``address`` connects to a running scheduler instead (nothing is created or closed).
    Tasks tagged ``dask-resource:KEY=NUM`` ask for worker resources ``{KEY: NUM}``.

    >>> executor = DaskExecutor(cluster_kwargs={"n_workers": 2}, adapt_kwargs={"maximum": 8})
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        debug: bool | None = None,
    ) -> None:
        if address is not None and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "DaskExecutor: give either address (an existing scheduler) or "
                "cluster_class/cluster_kwargs/adapt_kwargs (a temporary cluster), not both"
            )
        if (
            cluster_class is not None
            and not isinstance(cluster_class, str)
            and not callable(cluster_class)
        ):
            raise TypeError(
                "DaskExecutor: cluster_class must be a class or an import string, "
                f"got {cluster_class!r}"
            )
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs: dict[str, Any] = dict(cluster_kwargs or {})
        self.adapt_kwargs: dict[str, Any] | None = (
            dict(adapt_kwargs) if adapt_kwargs is not None else None
        )
        self.client_kwargs: dict[str, Any] = dict(client_kwargs or {})
        self.debug = bool(debug)
        self.client: Any = None
        self.cluster: Any = None
        self._offered_resources: set[str] | None = None
        self._warned_resources: set[str] = set()

    def with_cluster_kwargs(self, cluster_kwargs: Mapping[str, Any]) -> DaskExecutor:
        """A copy of this executor that creates its cluster with ``cluster_kwargs``."""
        clone = copy.copy(self)
        clone.cluster_kwargs = dict(cluster_kwargs)
        return clone

    def resolve_cluster_class(self) -> Callable[..., Any]:
        """The cluster class to create (``distributed.LocalCluster`` unless set)."""
        if self.cluster_class is None:
            from distributed import LocalCluster

            return LocalCluster
        if isinstance(self.cluster_class, str):
            return import_object(self.cluster_class)  # type: ignore[no-any-return]
        return self.cluster_class

    @contextmanager
    def start(self) -> Iterator[None]:
        from distributed import Client, LocalCluster

        with ExitStack() as stack:
            if self.address is not None:
                target: Any = self.address
            else:
                cluster_class = self.resolve_cluster_class()
                kwargs = dict(self.cluster_kwargs)
                if isinstance(cluster_class, type) and issubclass(cluster_class, LocalCluster):
                    kwargs.setdefault(
                        "silence_logs", logging.INFO if self.debug else logging.WARNING
                    )
                    # The scheduler always serves HTTP (health, metrics, the dashboard when
                    # bokeh is installed); keep it on loopback and off the shared default port.
                    kwargs.setdefault("dashboard_address", "127.0.0.1:0")
                log.info(
                    "Creating a temporary %s for this run",
                    getattr(cluster_class, "__name__", cluster_class),
                )
                self.cluster = target = cluster_class(**kwargs)
                stack.push(self._close_cluster)
                if self.adapt_kwargs is not None:
                    self.cluster.adapt(**self.adapt_kwargs)
            self.client = stack.enter_context(Client(target, **self.client_kwargs))
            stack.callback(self._forget_client)
            if self.client.dashboard_link:
                log.info("Dask dashboard: %s", self.client.dashboard_link)
            yield

    def _close_cluster(self, exc_type: type[BaseException] | None, *_: object) -> None:
        cluster, self.cluster = self.cluster, None
        if cluster is None:
            return
        if exc_type is not None:
            _close_in_process_workers_now(cluster)
        log.info("Closing the temporary Dask cluster")
        cluster.close()

    def _forget_client(self) -> None:
        self.client = None
        self._offered_resources = None

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if self.client is None:
            raise RuntimeError("DaskExecutor.submit called outside executor.start()")
        options: dict[str, Any] = {"pure": False}
        if extra_context:
            name = extra_context.get("task_name")
            if name:
                options["key"] = f"{name}-{uuid.uuid4().hex}"
            resources = extra_context.get("resources")
            if resources:
                options["resources"] = dict(resources)
                self._warn_unoffered(name, resources)
        return self.client.submit(fn, *args, **options, **kwargs)

    def wait(self, futures: T) -> T:
        return self.client.gather(futures)  # type: ignore[no-any-return]

    def _warn_unoffered(self, task_name: str | None, resources: Mapping[str, float]) -> None:
        """Say once per resource when no worker offers it: such tasks wait for one forever."""
        if self._offered_resources is None:
            workers = self.client.scheduler_info().get("workers", {})
            if not workers:
                return
            self._offered_resources = {
                key for worker in workers.values() for key in worker.get("resources", {})
            }
        for key in resources:
            if key not in self._offered_resources and key not in self._warned_resources:
                self._warned_resources.add(key)
                log.warning(
                    "Task %r asks for Dask resource %r, which no worker of this cluster offers "
                    "(offered: %s); it waits until such a worker joins",
                    task_name,
                    key,
                    ", ".join(sorted(self._offered_resources)) or "none",
                )

    def __repr__(self) -> str:
        cluster = self.cluster_class
        where = self.address or getattr(cluster, "__name__", None) or cluster or "LocalCluster"
        return f"<DaskExecutor {where}>"


def _close_in_process_workers_now(cluster: Any) -> None:
    """Close the workers that run in this process (``LocalCluster(processes=False)``) without
    waiting for the tasks still running in their threads: a thread cannot be stopped, and
    ``cluster.close()`` would otherwise hold an interrupted run up until they end (or time out).
    The abandoned threads are daemons and die with the process."""
    from distributed import Worker

    for worker in list(getattr(cluster, "workers", {}).values()):
        if isinstance(worker, Worker):
            cluster.sync(
                worker.close, executor_wait=False, nanny=False, reason="flow-run-interrupted"
            )
