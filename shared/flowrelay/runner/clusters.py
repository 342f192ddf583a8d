"""The runner's side of a run's ephemeral Dask cluster (``DaskExecutor`` with a cluster class
such as ``dask_cloudprovider.aws.FargateCluster``): what the cluster gets from the run's target,
what the run's history says about it, and the sweep after it closed.

The order is what makes "a run's cluster exists only while the run does" hold whatever happens
to this process:

1. **Before the cluster exists**, its name and where to find it are put on the bus ("starting");
   the control plane records it for the monitor. If the bus does not take it, the cluster is
   not created and the run fails saying so.
2. The cluster is created with the launcher kind's supply merged in
   (``flowrelay.core.clusters.ClusterSupply``): every task it starts carries the run's marks.
   What flowrelay had to replace of the flow's own ``cluster_kwargs`` is logged, never silent.
3. "started" (scheduler, workers, dashboard) and "scaled" notes while it runs.
4. On every ending (success, failure, SIGTERM, SIGINT) ``DaskExecutor`` closes it; then this
   module sweeps what the library leaves behind (dask-cloudprovider's own finalizers run at
   interpreter exit, when their event loop is closed, and fail) and says what it found.
5. SIGKILL skips 4: the monitor sweeps every cluster of a run that is over
   (``flowrelay.control.monitor``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowrelay.core.clusters import CLOUD_CLUSTERS, ClusterPhase, ClusterSupply
from flowrelay.sdk.importing import import_object

if TYPE_CHECKING:
    from flowrelay.control.store import Store
    from flowrelay.core.runs import FlowRun
    from flowrelay.runner.reporting import Reporter

log = logging.getLogger("flowrelay.runner")

#: How often the number of workers is looked at, and how many scaling notes a run gets at most.
SCALE_POLL_SECONDS = 1.0
MAX_SCALE_NOTES = 50


class ClusterRefused(RuntimeError):
    """The flow's cluster cannot be created on this run's infrastructure; the message says why."""


def class_path(cluster_class: Any) -> str:
    """``module.Name`` of a cluster class, as people write it."""
    return f"{getattr(cluster_class, '__module__', '?')}.{getattr(cluster_class, '__name__', '?')}"


def _is_kind_of(cluster_class: Any, path: str) -> bool:
    """Whether ``cluster_class`` is (a subclass of) the class at import path ``path``; False
    when that library is not installed (then it cannot be that class). The library is imported
    only when the class has a base from it: a LocalCluster run does not pay for importing
    dask-cloudprovider and aiobotocore."""
    library = path.split(".", 1)[0]
    bases = getattr(cluster_class, "__mro__", ())
    if not any(str(getattr(base, "__module__", "")).startswith(library) for base in bases):
        return False
    try:
        known = import_object(path)
    except Exception:
        return False
    return (
        isinstance(cluster_class, type)
        and isinstance(known, type)
        and issubclass(cluster_class, known)
    )


class RunClusters:
    """The ``ClusterWatcher`` the runner gives a run's ``DaskExecutor``.

    ``make_client(service)`` makes AWS clients (the launcher kind reads the run's task
    definition, and sweeps); the supply is read only when a cluster is actually created.
    """

    def __init__(
        self,
        run: FlowRun,
        store: Store,
        reporter: Reporter,
        make_client: Callable[[str], Any],
    ) -> None:
        self.run = run
        self.store = store
        self.reporter = reporter
        self.make_client = make_client
        self.supply: ClusterSupply | None = None
        self._cluster_class = ""
        self._stop_watching = threading.Event()
        self._watcher: threading.Thread | None = None

    # --- ClusterWatcher ------------------------------------------------------------------------

    def starting(self, cluster_class: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The supply merged into the flow's ``kwargs``; reported before the cluster exists."""
        path = class_path(cluster_class)
        cloud = next((known for known in CLOUD_CLUSTERS if _is_kind_of(cluster_class, known)), None)
        if cloud is None:
            return kwargs  # a LocalCluster or the flow's own class: nothing to supply or sweep
        supply = self._read_supply(path)
        if not any(_is_kind_of(cluster_class, known) for known in supply.classes):
            raise ClusterRefused(
                f"{path} cannot run on this run's {supply.sweep.kind} target "
                f"{self.run.target!r}: it supplies {', '.join(supply.classes)}"
            )
        try:
            merged, replaced = supply.merged(kwargs)
        except ValueError as exc:
            raise ClusterRefused(f"{path}: {exc}") from None
        for line in replaced:
            log.warning(
                "cluster_kwargs: %s (flowrelay's teardown of the cluster rests on it)", line
            )
        missing = [key for key in supply.required if not merged.get(key)]
        if missing:
            where = "; ".join(f"{key}: {supply.required[key]}" for key in missing)
            raise ClusterRefused(
                f"{path} on target {self.run.target!r}: no {', '.join(missing)}, and flowrelay "
                f"does not let the cluster create its own (set {where}; or the flow's "
                "cluster_kwargs)"
            )
        sweep = supply.sweep.model_copy(update={"cluster_class": path})
        self.supply = supply.model_copy(update={"sweep": sweep})
        self._cluster_class = path.rsplit(".", 1)[-1]
        details: dict[str, Any] = {"class": path}
        if replaced:
            details["replaced"] = replaced
        if not self._report(
            "starting",
            f"Dask cluster {sweep.name} starting: {self._cluster_class}",
            details=details,
        ):
            raise ClusterRefused(
                f"could not record Dask cluster {sweep.name} on the bus before creating "
                "it; not creating a cluster that could not be found again"
            )
        return merged

    def started(self, cluster: Any) -> None:
        """Report the scheduler, workers and dashboard; watch the number of workers. Never
        raises: what happens to the run does not depend on a report."""
        if self.supply is None:
            return
        try:
            self._started(cluster)
        except Exception:
            log.exception("Could not report the Dask cluster's start")

    def ended(self, cluster: Any, error: BaseException | None) -> None:
        """After the cluster was closed (or failed to start): say so, then sweep. Never raises
        (the monitor sweeps what this could not)."""
        if self.supply is None:
            return
        try:
            self._ended(cluster, error)
        except Exception:
            log.exception("Could not close out the Dask cluster (the monitor sweeps it)")

    def _started(self, cluster: Any) -> None:
        assert self.supply is not None
        workers = _workers(cluster)
        address = getattr(cluster, "scheduler_address", None)
        dashboard = getattr(cluster, "dashboard_link", None)
        # A SpecCluster (FargateCluster) has asked for its workers; they join shortly after.
        asked = len(getattr(cluster, "worker_spec", None) or {})
        count = (
            f"{workers} of {asked} workers joined"
            if asked > workers
            else f"{workers} worker{'' if workers == 1 else 's'}"
        )
        message = (
            f"Dask cluster {self.supply.sweep.name} started: {self._cluster_class}, scheduler "
            f"{address}, {count}"
        )
        if dashboard:
            message += f" (dashboard {dashboard})"
        self._report(
            "started",
            message,
            workers=workers,
            details={"scheduler": address, "dashboard": dashboard},
        )
        self._watcher = threading.Thread(
            target=self._watch_scale,
            args=(cluster, workers),
            name="flowrelay-cluster-scale",
            daemon=True,
        )
        self._watcher.start()

    def _ended(self, cluster: Any, error: BaseException | None) -> None:
        assert self.supply is not None
        self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        name = self.supply.sweep.name
        if cluster is None:
            self._report(
                "failed",
                f"Dask cluster {name} failed to start: {type(error).__name__}: {error}",
            )
        else:
            self._report("closed", f"Dask cluster {name} closed")
        self._sweep()

    # --- helpers ---------------------------------------------------------------------------------

    def _read_supply(self, path: str) -> ClusterSupply:
        from flowrelay.launchers.base import LaunchError
        from flowrelay.launchers.kinds import cluster_supply

        run = self.run
        if not run.target or not run.infrastructure:
            raise ClusterRefused(
                f"{path} needs the run's launch target to supply it, and run {run.run_id} "
                "records none"
            )
        target = self.store.targets.get(run.target)
        if target is None:
            raise ClusterRefused(
                f"{path}: the run's target {run.target!r} no longer exists, so nothing can say "
                "which network and roles its cluster gets"
            )
        try:
            supply = cluster_supply(run, target, self.make_client)
        except LaunchError as exc:
            raise ClusterRefused(f"{path} on target {target.name!r}: {exc}") from None
        if supply is None:
            raise ClusterRefused(
                f"{path} cannot run on {target.kind} target {target.name!r}: its runs cannot "
                "create cloud clusters (use a LocalCluster, or a target of kind ecs or "
                "kubernetes)"
            )
        return supply

    def _watch_scale(self, cluster: Any, workers: int) -> None:
        noted = 0
        while not self._stop_watching.wait(SCALE_POLL_SECONDS):
            now = _workers(cluster)
            if now == workers:
                continue
            # Only a count that held for a whole poll is noted: adaptive scaling comes in steps.
            if self._stop_watching.wait(SCALE_POLL_SECONDS) or _workers(cluster) != now:
                continue
            noted += 1
            if noted > MAX_SCALE_NOTES:
                if noted == MAX_SCALE_NOTES + 1:
                    log.info("Further scaling of the Dask cluster is not noted in the history")
                workers = now
                continue
            assert self.supply is not None
            self._report(
                "scaled",
                f"Dask cluster {self.supply.sweep.name} scaled from {workers} to {now} "
                f"worker{'' if now == 1 else 's'}",
                workers=now,
            )
            workers = now

    def _sweep(self) -> None:
        from flowrelay.launchers.kinds import sweep_cluster_from_runner

        assert self.supply is not None
        cluster = self.supply.sweep
        try:
            swept = sweep_cluster_from_runner(self.run, cluster, self.make_client)
        except Exception as exc:  # the monitor sweeps it once the run is over
            log.warning(
                "Sweeping Dask cluster %s failed (the monitor will): %s: %s",
                cluster.name,
                type(exc).__name__,
                exc,
            )
            return
        if swept is None:
            log.info("Dask cluster %s: the monitor checks that nothing is left", cluster.name)
        elif swept.found:
            self._report(
                "swept",
                f"Dask cluster {cluster.name} swept by the runner: {swept.summary()}",
                details=swept.bounded(),
            )
        else:
            log.info("Dask cluster %s: nothing of it is left", cluster.name)

    def _report(
        self,
        phase: ClusterPhase,
        message: str,
        *,
        workers: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> bool:
        assert self.supply is not None
        return self.reporter.report_cluster(
            phase, self.supply.sweep, message, workers=workers, details=details
        )


def _workers(cluster: Any) -> int:
    info = getattr(cluster, "scheduler_info", None) or {}
    return len(info.get("workers") or {})
