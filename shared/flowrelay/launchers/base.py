"""The one launcher contract: everything the control plane may ask of any kind of infrastructure.

A launcher starts a run's infrastructure (an ECS task, later a Kubernetes Job), finds it again,
says how it is doing, and stops it. The control plane (dispatch, the recorder, the monitor, the
canceller) holds launchers by their kind and reasons only about what this module defines:

- ``Launched``: what a launch started, as the run records it (``FlowRun.infrastructure``): the
  launcher ``kind``, a ``ref`` naming the launched thing (each attempt's is its own), the
  ``attempt``, and where its logs are. Each kind adds its own fields.
- ``InfraStatus``: how that infrastructure is doing now, in kind-neutral words (``phase``) plus
  the kind's own one-line account (``message``), its exit code, and whether a failure to start
  may pass (``transient``).
- ``InfraEvent``: an infrastructure event (ECS's "ECS Task State Change") read into the run it
  is about and an ``InfraStatus``; a kind's ``EventReader`` does the reading.
- ``LaunchError``: why a launch (or a stop, a lookup) did not happen, and whether to try again.

>>> status = InfraStatus(phase="stopped", ref="task-1", noun="ECS task", state="STOPPED",
...                      message="ECS task stopped (EssentialContainerExited)", exit_code=1)
>>> status.ended
True
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, TypeVar

from pydantic import ConfigDict, Field

from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.modeling import Model
from flowrelay.core.routing import Target
from flowrelay.core.run_configs import RunConfig
from flowrelay.core.run_configs.base import RunConfigBase
from flowrelay.core.runs import FlowRun


class LaunchError(Exception):
    """A run's infrastructure could not be launched, found or stopped.

    ``retryable``: whether the same call may succeed later (throttling, capacity), so the
    dispatcher retries with backoff instead of failing the run. ``reason``: the platform's own
    text when it refused (verbatim, e.g. ``"Cluster not found."`` or ``"RESOURCE:MEMORY"``),
    otherwise flowrelay's explanation. ``code``: the platform's error code, when there is one.
    ``outcome_unknown``: the launch got no answer (connection lost, timeout, a server error),
    so it may have happened; the same attempt must be tried again, looking for what it started
    first (``launch(resume=True)``), rather than counted as failed. ``throttled``: the platform
    refused the call for its rate (ECS ``ThrottlingException``, Kubernetes 429), so it started
    nothing and says nothing about the run: not a failed attempt (docs/scaling.md).
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: str | None = None,
        code: str | None = None,
        outcome_unknown: bool = False,
        throttled: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason if reason is not None else message
        self.code = code
        self.outcome_unknown = outcome_unknown
        self.throttled = throttled


def run_config_of(run: FlowRun) -> RunConfig | None:
    """The run's config, as every launcher reads it; ``LaunchError`` (final) when it does not
    parse (a run recorded before a rule it breaks)."""
    if run.run_config is None:
        return None
    from pydantic import ValidationError

    from flowrelay.core.events import describe
    from flowrelay.core.run_configs import parse_run_config

    try:
        return parse_run_config(run.run_config)
    except ValidationError as exc:
        raise LaunchError(
            f"run {run.run_id} has an invalid run config: {describe(exc, 'run_config')}",
            retryable=False,
        ) from None


C = TypeVar("C", bound=RunConfigBase)


def run_config_as(run: FlowRun, kind: type[C], target_kind: str) -> C:
    """The run's config as a ``kind`` (the run config of ``target_kind`` targets): none, or a
    ``UniversalRun``, means the target's defaults (a ``kind`` with only the run's ``env`` and
    ``labels``); any other run config is a final ``LaunchError``."""
    from flowrelay.core.run_configs import UniversalRun
    from flowrelay.core.wording import with_article

    config = run_config_of(run)
    if config is None:
        return kind()
    if isinstance(config, kind):
        return config
    if isinstance(config, UniversalRun):
        return kind(env=config.env, labels=config.labels)
    raise LaunchError(
        f"{with_article(config.type)} cannot run on {with_article(target_kind)} target",
        retryable=False,
    )


def container_environment(
    run: FlowRun,
    config: RunConfigBase,
    attempt: int,
    *,
    table_name: str,
    bus_name: str,
    region: str | None,
) -> dict[str, str]:
    """The variables a launched container gets: the run's own ``env``, the region, then what the
    runner needs (which wins on a clash: a run config must not be able to point the runner at
    another run or table)."""
    from flowrelay.core.contract import runner_environment

    env = dict(config.env or {})
    if region:
        env["AWS_REGION"] = region
    env.update(
        runner_environment(run.run_id, table_name=table_name, bus_name=bus_name, attempt=attempt)
    )
    return env


class Launched(Model):
    """What a launch started, as its run records it. ``ref`` names it uniquely (an event about
    another ``ref`` is about an earlier attempt); ``log_group``/``log_stream``/``log_region``
    say where its CloudWatch logs are, when it logs there."""

    # Each kind's model adds its own fields; read as this base, a run's infrastructure keeps
    # only what every kind has.
    model_config = ConfigDict(extra="ignore")

    kind: str
    ref: str
    attempt: int = Field(ge=1)
    log_group: str | None = None
    log_stream: str | None = None
    log_region: str | None = None

    @property
    def label(self) -> str:
        """How a message names it: ``task arn:aws:ecs:...``."""
        return self.ref


#: Where a launched run's infrastructure is: still starting (pulling its image, waiting for a
#: node), running, on its way down, stopped (with a reason and an exit code), or gone (the
#: platform no longer knows it: it ended long ago, or never existed).
Phase = Literal["starting", "running", "stopping", "stopped", "gone"]


class InfraStatus(Model):
    """How a launched run's infrastructure is doing, as the monitor and the recorder read it.

    ``noun`` names what runs (``"ECS task"``) and ``state`` is its platform status word
    (``"PROVISIONING"``), for messages such as "its ECS task is RUNNING". ``message`` is the
    kind's own one-line account (for ``stopped`` and ``gone``: why it ended, with exit codes);
    ``reason`` the platform's short reason. ``transient``: it failed to start for a reason that
    usually passes (the run may be launched again as its next attempt). ``cannot_start``: it
    has not ended but never will start by itself (an image that cannot be pulled, a container
    that cannot be created): the control plane stops it and ends the run with ``message``.
    ``sequence`` orders the events of one launch (older ones are ignored); ``details`` go into
    the run's history.
    """

    phase: Phase
    ref: str
    noun: str
    state: str
    message: str
    reason: str | None = None
    exit_code: int | None = None
    transient: bool = False
    cannot_start: bool = False
    sequence: int | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @property
    def ended(self) -> bool:
        """Stopped or gone: nothing of it runs any more."""
        return self.phase in ("stopped", "gone")


class InfraEvent(Model):
    """An infrastructure event, read: the run it is about (None when it is not a flowrelay run's
    infrastructure) and what it says."""

    run_id: str | None
    status: InfraStatus


#: Reads one infrastructure event's ``detail``; raises ``pydantic.ValidationError`` when the
#: detail is not what that event type carries.
EventReader = Callable[[Mapping[str, Any]], InfraEvent]


class Swept(Model):
    """What a sweep of a run's Dask cluster found still there and removed (one line each, such
    as ``"task 3f2a… (dask-worker)"``), and what it could not remove; ``stop_noun``,
    ``remove_verb`` and ``remove_noun`` are the kind's words for them.

    >>> Swept(stopped=["a", "b", "c"], removed=["d", "e"], remove_verb="deregistered",
    ...       remove_noun="task definition").summary()
    'stopped 3 tasks, deregistered 2 task definitions'
    >>> Swept().summary()
    'nothing left'
    """

    stopped: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)
    stop_noun: str = "task"
    remove_verb: str = "removed"
    remove_noun: str = "resource"

    @property
    def found(self) -> bool:
        """Whether anything was left behind."""
        return bool(self.stopped or self.removed or self.failed)

    def bounded(self, most: int = 20) -> dict[str, Any]:
        """What was found, as a history item's details: at most ``most`` of each list, and how
        many there were (a cluster of hundreds of workers must not outgrow a history item)."""
        shown: dict[str, Any] = {}
        for key in ("stopped", "removed", "failed"):
            items: list[str] = getattr(self, key)
            if items:
                shown[key] = [item[:200] for item in items[:most]]
                if len(items) > most:
                    shown[f"{key}_count"] = len(items)
        return shown

    def summary(self) -> str:
        """What was stopped and removed, in one line."""

        def counted(count: int, noun: str) -> str:
            return f"{count} {noun}{'' if count == 1 else 's'}"

        parts = []
        if self.stopped:
            parts.append(f"stopped {counted(len(self.stopped), self.stop_noun)}")
        if self.removed:
            parts.append(f"{self.remove_verb} {counted(len(self.removed), self.remove_noun)}")
        if self.failed:
            parts.append(f"could not remove {len(self.failed)}: {'; '.join(self.failed[:3])}")
        return ", ".join(parts) or "nothing left"


class Launcher(Protocol):
    """What every kind of infrastructure provides; the control plane knows launchers only by
    this.

    ``reports_events``: the platform puts an event on the bus when what a launch started
    changes (ECS's task state changes), so the monitor asks ``status`` only when a run is late.
    A kind without (Kubernetes: flowrelay keeps no watcher running) has ``status`` asked at
    every monitor pass for each of its active runs.
    """

    kind: str
    reports_events: bool

    def launch(
        self, run: FlowRun, target: Target, *, attempt: int = 1, resume: bool = False
    ) -> Launched:
        """Start attempt ``attempt`` of ``run`` on ``target``, at most once per attempt.
        ``resume``: the attempt was begun before and may have started something; look for it
        first. Raises ``LaunchError``."""

    def stop_launched(self, infrastructure: Mapping[str, Any], reason: str) -> None:
        """Stop what ``launch`` started (as the run recorded it), giving ``reason`` (cut to what
        the platform takes: callers do not bound it); stopping what is already stopped or gone
        is not an error. Raises ``LaunchError``."""

    def status(self, infrastructure: Mapping[str, Any]) -> InfraStatus:
        """How what ``launch`` started is doing now (``phase="gone"`` when the platform no
        longer knows it). Raises ``LaunchError``."""

    def find_unrecorded(
        self, run: FlowRun, attempt: int, targets: Iterable[Target]
    ) -> Launched | None:
        """What attempt ``attempt`` of ``run`` started on one of ``targets`` without the run
        recording it (its dispatcher died, or the launch went unanswered); None when nothing."""

    def sweep_cluster(self, run: FlowRun, cluster: ClusterSweep) -> Swept:
        """Stop and remove everything of ``run``'s ephemeral Dask cluster ``cluster`` that is
        still there, looking where the run's recorded launch says (never where a report says);
        finding nothing is the normal case. Raises ``LaunchError`` when the platform cannot be
        asked."""
