"""The lifecycle of a flow run in the control plane, and the one table that decides what may
follow what.

Every state change, from any source, goes through ``decide``. Because the store applies a change
only if the run is still in the state the decision was made from, duplicated and out-of-order
events cannot move a run backwards or out of a final state::

    >>> decide(RunState.RUNNING, RunState.SUBMITTED, Source.DISPATCHER).applies
    False
    >>> decide(RunState.SUBMITTED, RunState.RUNNING, Source.RUNNER).state
    <RunState.RUNNING: 'Running'>

Two kinds of final state differ in authority:

- ``Crashed`` is an *inference* made by the infrastructure watchers (the ECS task stopped, the
  heartbeat stopped). When the flow runner's own final report arrives later (events are not
  ordered), the runner's report replaces it: the runner knows how the flow ended. So does the
  monitor's ``TimedOut``: the monitor stops a run that ran too long, and the task stopping is
  the consequence, not the cause.
- A launched run goes back to ``Pending`` only when the infrastructure watchers say what was
  launched failed to start for a reason that may pass: it is launched again as the next
  attempt. Events about the earlier attempt's launch are told apart by its ``ref``
  (``RunStore.transition``).
- ``Queued`` is a run that a concurrency limit holds back (``flowrelay.core.concurrency``): it
  waits, not launched, until a slot of that limit is free. Like Pending it may be claimed and
  launched, and a cancel ends it at once. A launched run whose task is still starting stays
  ``Submitted`` (what the platform says goes in its history).
- A run that is ``Cancelling`` ends ``Cancelled`` when its infrastructure is confirmed stopped
  (its event, the monitor); the runner reporting that it was stopped does not end it. If the
  runner reports ``Success`` first, the run did finish and keeps that.

So every ordering of the same set of events ends in the same state (tested over all
permutations).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RunState(StrEnum):
    SCHEDULED = "Scheduled"
    PENDING = "Pending"
    SUBMITTED = "Submitted"
    QUEUED = "Queued"
    RUNNING = "Running"
    CANCELLING = "Cancelling"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMED_OUT = "TimedOut"
    CRASHED = "Crashed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self not in FINAL_STATES


class Source(StrEnum):
    """Who proposes a state change."""

    DISPATCHER = "dispatcher"
    RUNNER = "runner"
    INFRASTRUCTURE = "infrastructure"  # ECS task state changes, Kubernetes job status
    MONITOR = "monitor"
    USER = "user"  # cancellation requests


FINAL_STATES = frozenset(
    {RunState.SUCCESS, RunState.FAILED, RunState.CANCELLED, RunState.TIMED_OUT, RunState.CRASHED}
)
ACTIVE_STATES = frozenset(RunState) - FINAL_STATES
#: Not launched yet: what a dispatcher may claim and launch, and a cancel may end at once.
WAITING_STATES = frozenset({RunState.SCHEDULED, RunState.PENDING, RunState.QUEUED})

_S = RunState
_LAUNCHED = (_S.SUBMITTED, _S.RUNNING)

#: current state -> the states that may follow it. The single source of truth for transitions;
#: ``decide`` adds only the authority rules described in the module docstring.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    # Events from a launched run may be processed before the dispatcher's own record of the
    # launch: a run not yet marked launched accepts them.
    _S.SCHEDULED: frozenset({_S.PENDING, _S.QUEUED, *_LAUNCHED, _S.CANCELLING, *FINAL_STATES}),
    # Queued: a concurrency limit holds the run back; Pending again when, given its slot, no
    # target fits it.
    _S.PENDING: frozenset({_S.QUEUED, *_LAUNCHED, _S.CANCELLING, *FINAL_STATES}),
    _S.QUEUED: frozenset({_S.PENDING, *_LAUNCHED, _S.CANCELLING, *FINAL_STATES}),
    # Back to Pending: the task failed to start for a transient reason and is launched again.
    _S.SUBMITTED: frozenset({_S.PENDING, _S.RUNNING, _S.CANCELLING, *FINAL_STATES}),
    _S.RUNNING: frozenset({_S.CANCELLING, *FINAL_STATES}),
    _S.CANCELLING: frozenset({_S.CANCELLED, _S.SUCCESS, _S.TIMED_OUT}),
    _S.SUCCESS: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.TIMED_OUT: frozenset(),
    # A Crashed verdict is an inference; the runner's own final report (or the monitor's
    # timeout) replaces it.
    _S.CRASHED: frozenset({_S.SUCCESS, _S.FAILED, _S.TIMED_OUT}),
}


_WATCHERS = frozenset({Source.INFRASTRUCTURE, Source.MONITOR})


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a proposed change applies, the state it leads to, and why (for logs and tests)."""

    applies: bool
    state: RunState
    reason: str


def decide(current: RunState, proposed: RunState, source: Source) -> Decision:
    """What happens when ``source`` proposes ``proposed`` for a run that is ``current``."""
    if current is RunState.CRASHED and source not in (Source.RUNNER, Source.MONITOR):
        return Decision(False, current, "Crashed is replaced only by the runner or the monitor")
    if current is RunState.CANCELLING and proposed in (
        RunState.CANCELLED,
        RunState.FAILED,
        RunState.CRASHED,
    ):
        if source is Source.RUNNER:
            # The runner saying it was stopped is not its task being gone: a cancelled run is
            # Cancelled once its infrastructure is confirmed stopped (its event, the monitor).
            return Decision(False, current, "Cancelled once the infrastructure confirms it stopped")
        # The infrastructure stopped: that is the cancellation taking effect.
        return Decision(True, RunState.CANCELLED, f"{proposed} while cancelling means cancelled")
    if proposed is current:
        return Decision(False, current, f"already {current}")
    if proposed is RunState.PENDING and current not in WAITING_STATES and source not in _WATCHERS:
        return Decision(False, current, "only the infrastructure watchers relaunch a run")
    if proposed in TRANSITIONS[current]:
        return Decision(True, proposed, f"{current} -> {proposed}")
    return Decision(False, current, f"{current} may not become {proposed}")
