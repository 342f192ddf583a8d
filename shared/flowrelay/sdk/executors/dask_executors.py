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
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from flowrelay.sdk.executors.base import Executor
from flowrelay.sdk.importing import import_object

T = TypeVar("T")
log = logging.getLogger("flowrelay.sdk.executors")

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
        self._graph: dict[str, Any] = {}
        self._results: dict[str, Any] = {}
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
            self._graph, self._results = {}, {}
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
        """Add one call to the run's graph; returns a ``PendingResult`` naming it."""
        name = (extra_context or {}).get("task_name", "task")
        key = f"{name}-{next(self._keys)}"
        dependencies: list[str] = []
        args_template = _template(args, self._results, dependencies)
        kwargs_template = _template(kwargs, self._results, dependencies)
        call = partial(_call_filled, fn, args_template, kwargs_template)
        self._graph[key] = (call, *dependencies)
        return PendingResult(key)

    def wait(self, futures: T) -> T:
        """Compute everything submitted and not computed yet (in one pass of the scheduler, so a
        task never runs twice when the engine waits more than once), then return ``futures``
        with each ``PendingResult`` replaced by its value."""
        if self._graph:
            import dask

            graph, self._graph = self._graph, {}
            keys = list(graph)
            with dask.config.set(self.dask_config):
                values = self._get(graph, keys)
            self._results.update(zip(keys, values, strict=True))
        return _template(futures, self._results, [])  # type: ignore[no-any-return]

    def _get(self, graph: dict[str, Any], keys: list[str]) -> Any:
        if self.scheduler == "threads":
            from dask.threaded import get as threaded_get

            return threaded_get(graph, keys, pool=self._pool)
        if self.scheduler == "processes":
            from dask.multiprocessing import get as process_get

            # chunksize 1: dask otherwise sends up to 6 ready tasks to one worker process as a
            # batch, which runs them one after another (e.g. the children of a map).
            return process_get(graph, keys, pool=self._pool, chunksize=1)
        from dask.local import get_sync

        return get_sync(graph, keys)

    def __repr__(self) -> str:
        return f"<LocalDaskExecutor scheduler={self.scheduler!r}>"


def pin_inproc_host() -> None:
    """Name in-process Dask addresses after 127.0.0.1.

    distributed names them after the machine's outward IP address, which it finds with a UDP
    ``connect`` to a public address (no packet is sent, but the lookup itself and the links it
    logs point off the machine). Setting the name first avoids both.
    """
    from distributed.comm import inproc

    manager: Any = inproc.global_manager
    if getattr(manager, "_ip", "unknown") is None:
        manager._ip = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class PendingResult:
    """What ``LocalDaskExecutor.submit`` returns: the key of a call in the run's graph."""

    key: str


@dataclass(frozen=True, slots=True)
class _Dependency:
    """In an argument template: the value of the call's ``index``-th dependency."""

    index: int


@dataclass(frozen=True, slots=True)
class _Filled:
    """In an argument template: a list, tuple or dict that holds dependencies somewhere inside."""

    kind: type
    items: list[Any]


def _template(value: Any, results: Mapping[str, Any], dependencies: list[str]) -> Any:
    """``value`` with each computed ``PendingResult`` replaced by its value and each pending one
    by a ``_Dependency`` (its key appended to ``dependencies``).

    Only plain lists, tuples and dicts are searched (that is where the engine puts results);
    containers with nothing to replace are returned as they are, so constants are not copied.
    """
    kind = type(value)
    if kind is PendingResult:
        if value.key in results:
            return results[value.key]
        dependencies.append(value.key)
        return _Dependency(len(dependencies) - 1)
    if kind is list or kind is tuple:
        old_items = value
        new_items = [_template(item, results, dependencies) for item in value]
    elif kind is dict:
        old_items = list(value.values())
        new_items = [_template(item, results, dependencies) for item in old_items]
    else:
        return value
    if any(type(item) is _Dependency or type(item) is _Filled for item in new_items):
        return _Filled(
            kind, list(zip(value, new_items, strict=True)) if kind is dict else new_items
        )
    if all(new is old for new, old in zip(new_items, old_items, strict=True)):
        return value
    return dict(zip(value, new_items, strict=True)) if kind is dict else kind(new_items)


def _fill(template: Any, values: tuple[Any, ...]) -> Any:
    kind = type(template)
    if kind is _Dependency:
        return values[template.index]
    if kind is _Filled:
        if template.kind is dict:
            return {key: _fill(item, values) for key, item in template.items}
        return template.kind([_fill(item, values) for item in template.items])
    return template


def _call_filled(fn: Callable[..., Any], args: Any, kwargs: Any, *values: Any) -> Any:
    """Run ``fn`` with its templates filled from the computed dependency ``values``."""
    return fn(*_fill(args, values), **_fill(kwargs, values))


#: How long closing a temporary cluster may take before the run goes on without it (a cloud
#: cluster waits for its tasks to stop; what is left is swept, see ``ClusterWatcher.ended``).
CLOSE_TIMEOUT_SECONDS = 60.0
INTERRUPTED_CLOSE_SECONDS = 20.0


class ClusterWatcher(Protocol):
    """Told about a temporary cluster's life by ``DaskExecutor`` (the flow runner uses this to
    supply what the cluster gets from the run's infrastructure, to report it, and to sweep what
    it leaves behind). ``starting`` returns the keyword arguments to create it with."""

    def starting(self, cluster_class: Any, kwargs: dict[str, Any]) -> dict[str, Any]: ...

    def started(self, cluster: Any) -> None: ...

    def ended(self, cluster: Any, error: BaseException | None) -> None: ...


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
        self.watcher: ClusterWatcher | None = None
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
                    kwargs.setdefault("worker_dashboard_address", "127.0.0.1:0")
                    pin_inproc_host()
                log.info(
                    "Creating a temporary %s for this run",
                    getattr(cluster_class, "__name__", cluster_class),
                )
                watcher = self.watcher
                if watcher is not None:
                    kwargs = watcher.starting(cluster_class, kwargs)
                    created: list[Any] = []
                    # Runs last, after the cluster is closed: told even when creating it failed
                    # half-way (a scheduler task started, its workers not).
                    stack.push(
                        lambda _type, error, _tb: watcher.ended(
                            created[0] if created else None, error
                        )
                    )
                self.cluster = target = cluster_class(**kwargs)
                stack.push(self._close_cluster)
                if watcher is not None:
                    created.append(self.cluster)
                    watcher.started(self.cluster)
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
        # Stopped (SIGTERM) or failed: the platform's stop timeout is running (30 s on Fargate
        # by default); leave time for the report and the sweep after closing.
        timeout = CLOSE_TIMEOUT_SECONDS if exc_type is None else INTERRUPTED_CLOSE_SECONDS
        try:
            try:
                cluster.close(timeout=timeout)
            except TypeError:  # a cluster class whose close() takes no timeout
                cluster.close()
        except Exception as exc:  # the run's outcome does not depend on it; a watcher sweeps
            log.warning(
                "Closing the temporary Dask cluster failed: %s: %s", type(exc).__name__, exc
            )

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
            try:
                cluster.sync(
                    worker.close, executor_wait=False, nanny=False, reason="flow-run-interrupted"
                )
            except Exception:  # cluster.close() below still runs
                log.warning("Could not close Dask worker %s early", worker.name, exc_info=True)
