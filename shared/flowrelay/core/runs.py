"""A flow run as the control plane records it, its history, and how a request names its run.

A run's id is fixed by its request, so every delivery of one request finds the same run:

>>> run_id_for("nightly-2026-11-23") == run_id_for("nightly-2026-11-23")
True
>>> requested_run_id("r-1", "nightly-2026-11-23", "e-1")
'r-1'

A restart of a run that failed (``flowrelay runs retry``) is a new run with ``restart_of`` naming
the original; its idempotency key, ``restart_key(original)``, makes every request to restart
one run make the same one new run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import Field

from flowrelay.core.lifecycle import FINAL_STATES, RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.policies import Timeouts

#: What a flow run id may look like: it names DynamoDB keys, ECS groups and Kubernetes labels.
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_RUN_ID_NAMESPACE = uuid.UUID("6f1c1f0e-3a59-4d2e-9a63-1c5d0d7f6b21")


def run_id_for(idempotency_key: str) -> str:
    """The run id a request with this idempotency key always gets: the same key can create only
    one run, with no extra item or lookup.

    >>> run_id_for("nightly-2026-11-23") == run_id_for("nightly-2026-11-23")
    True
    """
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, idempotency_key))


def requested_run_id(flow_run_id: str | None, idempotency_key: str | None, event_id: str) -> str:
    """The run a "Flow Run Requested" event makes: its ``flow_run_id``, else the id its
    idempotency key always gets, else one from its EventBridge event id (so redeliveries of one
    event make one run).

    >>> requested_run_id(None, "nightly-2026-11-23", "e-1") == run_id_for("nightly-2026-11-23")
    True
    """
    return flow_run_id or run_id_for(idempotency_key or f"event:{event_id}")


#: How a run may have ended to be restarted: every way but Success (there is nothing to redo).
RESTARTABLE_STATES = FINAL_STATES - {RunState.SUCCESS}


def restart_key(run_id: str) -> str:
    """The idempotency key of the restart of run ``run_id``: requests to restart one run make
    one new run, whoever sends them and however often (a double click, a redelivery).

    >>> restart_key("r-1")
    'restart:r-1'
    """
    return f"restart:{run_id}"


def restart_note_id(restarted_as: str) -> str:
    """The event id of the note "restarted as run ..." on the original run: one per restart, so
    writing it again (a redelivered request) keeps one note."""
    return f"restarted-as-{restarted_as}"


def restart_refusal(original: FlowRun) -> str | None:
    """Why ``original`` cannot be restarted (one line), or None when it can: only a run that
    ended other than Success is.

    >>> from datetime import UTC, datetime
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> run = FlowRun(run_id="r-1", flow_name="etl", state=RunState.SUCCESS,
    ...               created_at=now, updated_at=now, state_entered_at=now)
    >>> restart_refusal(run)
    'run r-1 succeeded: there is nothing to restart'
    >>> restart_refusal(run.model_copy(update={"state": RunState.CRASHED})) is None
    True
    """
    if original.state in RESTARTABLE_STATES:
        return None
    if original.state is RunState.SUCCESS:
        return f"run {original.run_id} succeeded: there is nothing to restart"
    return (
        f"run {original.run_id} is {original.state}: only a run that ended Failed, Crashed, "
        f"TimedOut or Cancelled can be restarted"
    )


class FlowRun(Model):
    """A flow run as the control plane records it."""

    run_id: str
    flow_name: str
    flow_version: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    run_config: dict[str, Any] | None = None
    idempotency_key: str | None = None
    restart_of: str | None = Field(
        default=None,
        description="The run this one restarts: it reuses that run's checkpointed task results.",
    )
    state: RunState = RunState.PENDING
    message: str | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime
    heartbeat_at: datetime | None = None
    target: str | None = None
    infrastructure: dict[str, Any] = Field(default_factory=dict)
    infra_sequence: int | None = Field(
        default=None,
        description="The newest infrastructure event applied for its current launch (older ones"
        " are ignored).",
    )
    attempt: int = Field(default=1, ge=1, description="The launch attempt now under way.")
    retry_at: datetime | None = Field(
        default=None, description="A failed attempt's backoff: not launched again before this."
    )
    unanswered: int = Field(
        default=0,
        ge=0,
        description="Tries of the current attempt whose launch went unanswered (its outcome is "
        "unknown: it may have started something, which each next try looks for first).",
    )
    throttled: int = Field(
        default=0,
        ge=0,
        description="Launches refused for the platform's request rate (not counted as "
        "attempts; each waits longer than the one before).",
    )
    timeout_seconds: float | None = Field(default=None, description="The run's own time limit.")
    launched_at: datetime | None = Field(default=None, description="When its task was started.")
    timeouts: Timeouts | None = Field(
        default=None, description="The limits the monitor holds the run to (set at launch)."
    )
    claimed_until: datetime | None = Field(
        default=None,
        exclude=True,
        description="A dispatcher is launching the run until then (kept outside the run JSON).",
    )
    claimed_attempt: int | None = Field(
        default=None,
        exclude=True,
        description=(
            "The attempt a dispatcher claimed and did not finish: it may have started a task "
            "it never recorded (kept outside the run JSON)."
        ),
    )

    limits: list[str] = Field(
        default_factory=list,
        exclude=True,
        description=(
            "The concurrency limits the run took a slot of or waited for, by name: what it "
            "gives back when it ends (kept outside the run JSON)."
        ),
    )

    def launch_claimed(self, now: datetime) -> bool:
        """Whether a dispatcher holds the claim to launch this run at ``now``."""
        return self.claimed_until is not None and self.claimed_until > now


#: Details key of a note that records a state reached late (``HistoryEntry.late_state``).
LATE_STATE = "late_state"


class HistoryEntry(Model):
    """One applied transition; or, with ``note``, something that happened to the run without
    changing its state (its Dask cluster started, scaled, closed, was swept), with the state
    and version the run had when it was noted."""

    version: int
    state: RunState
    previous: RunState | None
    source: Source
    message: str | None = None
    at: datetime
    event_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    note: bool = False

    @property
    def late_state(self) -> RunState | None:
        """The state a note records as reached late: one reported after the run had moved
        past it (the runner's Running arriving after its Success), which the run's history
        keeps with the time it was reached."""
        if not self.note or LATE_STATE not in self.details:
            return None
        return RunState(self.details[LATE_STATE])


def states_reached(history: Iterable[HistoryEntry]) -> list[tuple[RunState, datetime]]:
    """The states a run reached and when, in the order it reached them: its transitions, and
    each state it reached late (a note, ``HistoryEntry.late_state``) just before the
    transition that overtook it.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 11, 30, tzinfo=UTC)
    >>> def entry(version, state, seconds, **extra):
    ...     return HistoryEntry(version=version, state=state, previous=None,
    ...                         source=Source.RUNNER, at=t + timedelta(seconds=seconds), **extra)
    >>> late = entry(3, RunState.SUCCESS, 2, note=True, details={LATE_STATE: "Running"})
    >>> history = [entry(1, RunState.PENDING, 0), entry(2, RunState.SUBMITTED, 1),
    ...            entry(3, RunState.SUCCESS, 5), late]
    >>> [(str(state), (at - t).seconds) for state, at in states_reached(history)]
    [('Pending', 0), ('Submitted', 1), ('Running', 2), ('Success', 5)]
    """
    entries = list(history)
    late: dict[int, list[HistoryEntry]] = {}
    for entry in entries:
        if entry.late_state is not None:
            late.setdefault(entry.version, []).append(entry)
    reached: list[tuple[RunState, datetime]] = []
    for entry in sorted((e for e in entries if not e.note), key=lambda e: e.version):
        for overtaken in sorted(late.get(entry.version, []), key=lambda e: e.at):
            assert overtaken.late_state is not None
            reached.append((overtaken.late_state, overtaken.at))
        reached.append((entry.state, entry.at))
    return reached
