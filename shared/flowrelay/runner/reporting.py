"""The runner's reports: "Flow Run State Changed" events on the bus, and heartbeats while the
flow runs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flowrelay.core.clusters import ClusterPhase, ClusterSweep
from flowrelay.core.events import FlowRunClusterChanged, FlowRunStateChanged
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.runner.config import RunnerConfig

if TYPE_CHECKING:
    from flowrelay.aws.bus import Publisher

log = logging.getLogger("flowrelay.runner")

#: ``FlowRunStateChanged.message`` is bounded; longer messages are cut to fit.
_MAX_MESSAGE = 8192


def _clip(message: str | None) -> str | None:
    if message is None or len(message) <= _MAX_MESSAGE:
        return message
    return message[: _MAX_MESSAGE - 1] + "…"


class Reporter:
    """Puts this run's state reports on the bus.

    A report that cannot be published is logged, not raised: the run's outcome and exit code must
    not depend on the bus, and the control plane still learns of the end from the task or pod
    stopping (and from missing heartbeats).
    """

    def __init__(self, publisher: Publisher, config: RunnerConfig) -> None:
        self.publisher = publisher
        self.config = config

    def report(
        self,
        state: RunState,
        message: str | None = None,
        *,
        heartbeat: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Publish one report; whether the bus accepted it."""
        event = FlowRunStateChanged(
            flow_run_id=self.config.run_id,
            state=state,
            source=Source.RUNNER,
            message=_clip(message),
            heartbeat=heartbeat,
            details=self._details(details),
        )
        if not self._publish(event, "heartbeat" if heartbeat else f"{state} report"):
            return False
        if not heartbeat:
            log.info("Reported %s%s", state, f": {event.message}" if event.message else "")
        return True

    def report_cluster(
        self,
        phase: ClusterPhase,
        cluster: ClusterSweep,
        message: str,
        *,
        workers: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Publish what happened to the run's Dask cluster; whether the bus accepted it."""
        event = FlowRunClusterChanged(
            flow_run_id=self.config.run_id,
            phase=phase,
            cluster=cluster,
            message=_clip(message) or "",
            workers=workers,
            details=self._details(details),
        )
        if not self._publish(event, f"cluster's {phase} report"):
            return False
        log.info("%s", event.message)
        return True

    def _details(self, details: Mapping[str, Any] | None) -> dict[str, Any]:
        """``details`` with the attempt, which every report carries."""
        all_details = dict(details or {})
        if self.config.attempt is not None:
            all_details.setdefault("attempt", self.config.attempt)
        return all_details

    def _publish(self, event: Any, what: str) -> bool:
        try:
            self.publisher.publish(event)
        except Exception:
            log.exception("Could not put the %s on bus %r", what, self.config.bus_name)
            return False
        return True


@contextmanager
def heartbeats(reporter: Reporter, interval: float) -> Iterator[None]:
    """Report ``Running`` heartbeats every ``interval`` seconds while the block runs.

    A daemon thread: a flow that hangs or ignores signals must not keep the process alive for the
    sake of its heartbeat. The thread is stopped (and joined) before the block's exit returns, so
    no heartbeat follows the final report.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            reporter.report(RunState.RUNNING, heartbeat=True)

    thread = threading.Thread(target=beat, name="flowrelay-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=max(interval, 5.0))
