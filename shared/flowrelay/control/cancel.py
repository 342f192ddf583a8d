"""Cancellation: a "Flow Run Cancel Requested" event stops a run's infrastructure.

The control plane stops the run's infrastructure itself (its launcher's ``stop_launched``, with
the reason: ECS StopTask) rather than trusting the code inside the container to notice. What a
cancel does depends on where the run is:

- not launched (Scheduled, Pending, Queued) and no launch begun: Cancelled at once, in one
  conditional write that fails if a dispatcher claims the launch meanwhile; a Queued run
  leaves its limit's waiting list (and a slot handed to it goes to the next in line);
- being launched (a dispatcher holds the claim): Cancelling; the dispatcher stops the task it
  started as soon as it sees the run is cancelling (``flowrelay.control.dispatch``);
- a launch begun and never finished (its dispatcher died, or RunTask went unanswered):
  Cancelling; the monitor looks for that attempt's task and stops it;
- launched (Submitted, Running): Cancelling, then stopped. The run becomes Cancelled
  when its infrastructure is confirmed stopped: by its infrastructure event (ECS "STOPPED") or
  the monitor asking its launcher (the runner's own SIGTERM report does not end it);
- already Cancelling: stopped again (stopping what is stopped is not an error);
- final: nothing to do, said plainly.

>>> canceller = Canceller(store, {"ecs": launcher})                     # doctest: +SKIP
>>> canceller.cancel(FlowRunCancelRequested(flow_run_id=run_id, reason="wrong params")).state
... # doctest: +SKIP
<RunState.CANCELLING: 'Cancelling'>
"""

from __future__ import annotations

from collections.abc import Mapping

from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunCancelRequested
from flowrelay.core.lifecycle import WAITING_STATES, RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import Launched, Launcher


class CancelError(LookupError):
    """A cancel request that cannot be applied (no such run): reported, retried, and at last
    dead-lettered, since the run may not have been created yet when the cancel came."""


class CancelOutcome(Model):
    run_id: str
    state: RunState
    message: str
    stopped: bool = False


def cancel_message(request: FlowRunCancelRequested) -> str:
    """The run message a cancel leaves: who asked and why."""
    who = f" by {request.requested_by}" if request.requested_by else ""
    why = f": {request.reason}" if request.reason else ""
    return f"cancel requested{who}{why}"


class Canceller:
    """Applies cancel requests. ``launchers`` maps target kinds to launchers (to stop runs);
    ``slots`` gives back the slots of a run a cancel ends."""

    def __init__(
        self, store: Store, launchers: Mapping[str, Launcher], slots: Slots | None = None
    ) -> None:
        self.store = store
        self.launchers = launchers
        self.slots = slots or Slots(store)

    def cancel(self, request: FlowRunCancelRequested) -> CancelOutcome:
        run = self.store.runs.get(request.flow_run_id)
        if run is None:
            raise CancelError(f"no flow run {request.flow_run_id!r} to cancel")
        if run.state.is_final:
            # A first delivery may have ended it and died before giving back its slots.
            self.slots.give_back(run)
            return CancelOutcome(
                run_id=run.run_id,
                state=run.state,
                message=f"run {run.run_id} is already {run.state}; nothing to cancel",
            )
        message = cancel_message(request)
        # A waiting run whose launch was begun and not finished (its dispatcher died, or RunTask
        # went unanswered) may have a task nobody recorded: it goes through Cancelling, where
        # the monitor looks for that task and stops it before the run is Cancelled.
        if run.state in WAITING_STATES and run.claimed_attempt is None:
            result = self.store.runs.transition(
                run.run_id, RunState.CANCELLED, Source.USER, message=message, unless_claimed=True
            )
            if result.applied and result.run is not None:
                self.slots.give_back(result.run)
                return CancelOutcome(run_id=run.run_id, state=result.run.state, message=message)
        if run.state is not RunState.CANCELLING:
            result = self.store.runs.transition(
                run.run_id, RunState.CANCELLING, Source.USER, message=message
            )
            if result.run is None:  # pragma: no cover - a run is never deleted
                raise CancelError(f"flow run {run.run_id!r} disappeared")
            if result.run.state.is_final:
                return CancelOutcome(
                    run_id=run.run_id,
                    state=result.run.state,
                    message=f"run {run.run_id} became {result.run.state}; nothing to cancel",
                )
            run = result.run
        stopped = self.stop(run, request.reason)
        return CancelOutcome(run_id=run.run_id, state=run.state, message=message, stopped=stopped)

    def stop(self, run: FlowRun, reason: str | None) -> bool:
        """Stop the run's infrastructure; False when it has none yet (its dispatcher stops what
        it is launching, see ``flowrelay.control.dispatch``)."""
        if not run.infrastructure:
            return False
        kind = Launched.model_validate(run.infrastructure).kind
        launcher = self.launchers.get(kind)
        if launcher is None:
            raise CancelError(f"no launcher here can stop {kind!r} infrastructure")
        stop_reason = f"flowrelay: cancelled: {reason}" if reason else "flowrelay: cancelled"
        launcher.stop_launched(run.infrastructure, stop_reason)
        return True
