"""Dispatch: a "Flow Run Requested" event becomes exactly one launched run.

For each request: create the run once (its id comes from ``flow_run_id``, else the idempotency
key, else the EventBridge event id, so every redelivery finds the same run), resolve the
registered flow and the run's config and labels, pick a target, claim the launch, launch it with
the target kind's launcher, and record Submitted with what was launched.

What can go wrong, and where it ends up:

- The request reuses a run's id or idempotency key with other values (``RequestConflict``):
  refused without touching that run; the function dead-letters it at once with the reason.
- The user must fix it (unknown flow or version, parameters that do not fit, a run config the
  target kind cannot run, a launch the platform refuses for good): the run is Failed with the
  reason.
- A restart (``restart_of``) of a run that does not exist, is of another flow or version, has
  not ended or succeeded: the new run is Failed with the reason. A restart runs the
  version its original ran; the link is in both histories (the new run's first item, a note
  on the original keyed by the restart, so redeliveries leave one).
- Nothing can take the run yet (no target fits): the run waits in Pending with a message naming
  what is missing; the monitor asks for it again once a target fits
  (``flowrelay.control.monitor``).
- A concurrency limit it is subject to (its labels, its flow, the chosen target) has no free
  slot: the slots are taken in the same write as the launch claim, all or none, so the run is
  not launched; it waits in Queued with a message naming the limit and its holders, in that
  limit's waiting list, until a slot is handed to it (``flowrelay.control.slots``).
- The platform says "not now" (throttling, capacity): the attempt is recorded as failed with
  the platform's reason (in the run's history), and ``RetryLater`` says when to try the next
  attempt (exponential backoff with jitter, ``flowrelay.core.policies``); the function queues
  the request again with that delay. A run that exhausts ``max_attempts`` is Failed with the
  last reason.
- The launch goes unanswered (timeout, connection lost): what it started may exist, so the same
  attempt is tried again, looking for it first; it is never counted as a new attempt.
- The run was cancelled while it was being launched: what was started is stopped at once and
  recorded on the run, so the monitor can confirm it stopped.

Launch attempts are numbered on the run, not by message deliveries: a dispatcher that dies
mid-launch leaves the claim and the attempt number behind, and whoever takes over after the
claim's lease repeats the same attempt (for ECS, with the same ``clientToken``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from flowrelay.control.slots import Slots
from flowrelay.control.store import LaunchClaim, Refused, Store
from flowrelay.control.store.flows import flow_key, registration_from_item
from flowrelay.control.store.runs import run_from_item, run_key
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.core.events import FlowRunRequested, ParsedEvent
from flowrelay.core.lifecycle import WAITING_STATES, RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.policies import RetryPolicy, Timeouts, resolve_timeouts
from flowrelay.core.registration import FlowRegistration, ParameterError, not_registered
from flowrelay.core.routing import Target, TargetChoice, choose_target, unlaunchable
from flowrelay.core.runs import (
    RUN_ID_PATTERN,
    FlowRun,
    requested_run_id,
    restart_key,
    restart_note_id,
    restart_refusal,
    run_id_for,
)
from flowrelay.launchers.base import Launched, Launcher, LaunchError

LAUNCH_LEASE = timedelta(minutes=5)
#: How soon a request is looked at again while another delivery holds the launch claim.
CLAIM_BUSY_DELAY = 30.0


class RetryLater(Exception):
    """Raised so the request is delivered again after ``delay`` seconds."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


#: How long a dispatcher's container trusts the targets it read (``TargetCache``).
TARGETS_TTL_SECONDS = 10.0


class TargetCache:
    """The launch targets, read at most once every ``ttl`` seconds per container (Lambda keeps
    a container for many requests): targets change rarely and every dispatch needs them. A
    run that no cached target fits is looked at against a fresh read before it is told to
    wait, so a target just added is used at once; a target changed or removed is seen within
    ``ttl`` (docs/decisions.md). Time is the store's clock."""

    def __init__(
        self,
        read: Callable[[], list[Target]],
        launchable: Collection[str],
        clock: Callable[[], datetime],
        ttl: float = TARGETS_TTL_SECONDS,
    ) -> None:
        self.read = read
        self.launchable = launchable
        self.clock = clock
        self.ttl = timedelta(seconds=ttl)
        self._targets: list[Target] | None = None
        self._read_at: datetime | None = None

    def choose(self, labels: list[str], run_config: Mapping[str, Any] | None) -> TargetChoice:
        """The target a run with these labels and config goes to (``choose_target``)."""
        now = self.clock()
        fresh = self._read_at is None or not self._read_at <= now < self._read_at + self.ttl
        choice = choose_target(self._current(fresh, now), labels, run_config, self.launchable)
        if choice.target is None and not fresh:
            choice = choose_target(self._current(True, now), labels, run_config, self.launchable)
        return choice

    def _current(self, refresh: bool, now: datetime) -> list[Target]:
        if refresh or self._targets is None:
            self._targets = self.read()
            self._read_at = now
        return self._targets


class LaunchPlan(Model):
    """Where a run goes (``target``) and the limits it is subject to there; or why it waits
    for a target (``waiting``), or why it can never be launched (``problem``)."""

    target: Target | None = None
    limits: list[ConcurrencyLimit] = Field(default_factory=list)
    waiting: str | None = None
    problem: str | None = None

    @property
    def claims_at_creation(self) -> bool:
        """Whether a new run can be created with its launch claimed: it has a target and no
        limit, whose slots would have to be taken in the same write."""
        return self.target is not None and not self.limits


class RequestConflict(ValueError):
    """A request names an existing run (by its ``flow_run_id`` or ``idempotency_key``) but asks
    for something else: refused, as ECS refuses a reused clientToken with other parameters,
    and the run is left alone. The message names the run and what differs."""


class DispatchOutcome(Model):
    run_id: str
    state: RunState
    message: str | None = None
    created: bool = False
    launched: bool = False
    retry_in: float | None = None


class Dispatcher:
    """Turns run requests into launched runs. ``launchers`` maps target kinds to launchers."""

    def __init__(
        self,
        store: Store,
        launchers: Mapping[str, Launcher],
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.store = store
        self.launchers = launchers
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.slots = slots or Slots(store)
        # The store's clock is read at each call: tests replace it.
        clock = lambda: self.store.clock()  # noqa: E731, PLW0108
        self.targets = TargetCache(store.targets.list, launchable=self.launchers, clock=clock)

    def handle_request(self, event: ParsedEvent) -> DispatchOutcome:
        """Dispatch one request (any number of deliveries of it end in one run, one launch).

        A new run's launch costs five calls: one ``BatchGetItem`` (the run, not there yet, and
        its flow), the limits' ``Query``, the ``PutItem`` that creates the run with its launch
        claimed, the launch (``RunTask``), and the ``TransactWriteItems`` that records
        Submitted. Targets come from a short-lived cache (``TargetCache``). A request for a
        run that is past waiting costs the one ``BatchGetItem``."""
        request: FlowRunRequested = event.detail
        # A restart is keyed by the run it restarts, whoever sends it: a run is restarted once.
        key = request.idempotency_key
        if key is None and request.flow_run_id is None and request.restart_of is not None:
            key = restart_key(request.restart_of)
        run_id = requested_run_id(request.flow_run_id, key, event.envelope.id)
        found, registration, original = self._read(run_id, request)
        version = request.version
        if version is None and original is not None and original.flow_name == request.flow:
            # A restart runs the code its original ran, not whatever was registered since.
            version = original.flow_version
            registration = self.store.flows.get(request.flow, version)
        problem = self._problem(request, run_id, registration, version, original)
        plan = None
        if found is not None:
            run, created = found, False
        else:
            if problem is None:
                plan = self._plan(
                    _labels(request, registration), _run_config(request, registration), request.flow
                )
            run, created = self._create(request, run_id, registration, version, plan)
        if not created:
            self._refuse_conflict(request, run)
            plan = None
        if run.state not in WAITING_STATES:
            # An ending decided by another delivery that died before giving back its slots.
            self.slots.give_back(run)
            return DispatchOutcome(run_id=run_id, state=run.state, message=run.message)
        if problem:
            return self._fail(run, problem, created)
        if original is not None:
            self._note_restarted(original, run)
        return self.launch(run, created=created, plan=plan)

    def _create(
        self,
        request: FlowRunRequested,
        run_id: str,
        registration: FlowRegistration | None,
        version: int | None,
        plan: LaunchPlan | None,
    ) -> tuple[FlowRun, bool]:
        return self.store.runs.create(
            run_id,
            request.flow,
            flow_version=registration.version if registration else version,
            parameters=request.parameters,
            labels=_labels(request, registration),
            run_config=_run_config(request, registration),
            idempotency_key=request.idempotency_key,
            timeout_seconds=request.timeout_seconds
            or (registration.timeout_seconds if registration else None),
            restart_of=request.restart_of,
            # The link in the new run's history, written with the run: no extra call.
            message=f"restart of run {request.restart_of}" if request.restart_of else None,
            details={"restart_of": request.restart_of} if request.restart_of else None,
            # Nothing stands between a new run and its launch: it is created claimed.
            claim=(1, LAUNCH_LEASE) if plan is not None and plan.claims_at_creation else None,
        )

    def _read(
        self, run_id: str, request: FlowRunRequested
    ) -> tuple[FlowRun | None, FlowRegistration | None, FlowRun | None]:
        """The run (if a delivery created it already), its flow as requested, and the run it
        restarts: one ``BatchGetItem``."""
        keys = [run_key(run_id), flow_key(request.flow, request.version)]
        if request.restart_of is not None and request.restart_of != run_id:
            keys.append(run_key(request.restart_of))  # (DynamoDB refuses a key asked twice)
        items = self.store.table.get_many(keys)
        found = items.get(f"RUN#{run_id}")
        flow = items.get(f"FLOW#{request.flow}")
        original = items.get(f"RUN#{request.restart_of}") if request.restart_of else None
        return (
            run_from_item(found) if found else None,
            registration_from_item(flow) if flow else None,
            run_from_item(original) if original else None,
        )

    def _refuse_conflict(self, request: FlowRunRequested, run: FlowRun) -> None:
        """``RequestConflict`` when the request names an existing run but asks for something
        else."""
        differences = request.differences(run)
        if not differences:
            return
        key = (
            f"idempotency key {request.idempotency_key!r}"
            if request.flow_run_id is None and request.idempotency_key is not None
            else "flow_run_id"
        )
        raise RequestConflict(
            f"run {run.run_id} ({run.state.value}) was requested with this {key} and "
            f"other values: {'; '.join(differences)}; use a new key to run with these"
        )

    def _problem(
        self,
        request: FlowRunRequested,
        run_id: str,
        registration: FlowRegistration | None,
        version: int | None,
        original: FlowRun | None,
    ) -> str | None:
        """Why the request cannot be run (its run is Failed with it), or None."""
        if request.restart_of is not None:
            problem = _restart_problem(request, request.restart_of, original, run_id)
            if problem:
                return problem
        if registration is None:
            return not_registered(request.flow, version)
        return _parameter_problem(request.parameters, registration)

    def _note_restarted(self, original: FlowRun, restart: FlowRun) -> None:
        """The link in the original's history: one conditional ``PutItem`` keyed by the
        restart, so every delivery of the request leaves one note."""
        self.store.runs.note(
            original,
            Source.DISPATCHER,
            f"restarted as run {restart.run_id}",
            at=self.store.clock(),
            event_id=restart_note_id(restart.run_id),
            details={"restarted_as": restart.run_id},
        )

    def _plan(
        self, labels: list[str], run_config: Mapping[str, Any] | None, flow: str
    ) -> LaunchPlan:
        """Where a run with these labels and config would be launched, and the limits it
        would be subject to there."""
        never = unlaunchable(run_config, self.launchers)
        if never is not None:
            return LaunchPlan(problem=f"this run cannot be launched: {never}")
        choice = self.targets.choose(labels, run_config)
        if choice.target is None:
            reason = choice.reason.removeprefix("no target fits: ")
            return LaunchPlan(waiting=f"waiting for a launch target: {reason}")
        target = choice.target
        if target.kind not in self.launchers:
            return LaunchPlan(problem=f"no launcher for {target.kind} targets here")
        return LaunchPlan(target=target, limits=self.slots.needed_for(labels, flow, target.name))

    def launch(
        self, run: FlowRun, created: bool = False, plan: LaunchPlan | None = None
    ) -> DispatchOutcome:
        """Pick a target for a waiting run and launch its current attempt (at most one task per
        attempt). ``plan``: decided for this run already, which was created claimed when the
        plan allowed it. Raises ``RetryLater`` when the request must come back later."""
        now = self.store.clock()
        if run.retry_at is not None and run.retry_at > now:
            delay = (run.retry_at - now).total_seconds()
            raise RetryLater(f"attempt {run.attempt} of run {run.run_id} is due later", delay)
        if plan is None:
            plan = self._plan(run.labels, run.run_config, run.flow_name)
        if plan.problem is not None:
            return self._fail(run, plan.problem, created)
        if plan.target is None:
            return self._wait_for_target(
                run, plan.waiting or "waiting for a launch target", created
            )
        target = plan.target
        launcher = self.launchers[target.kind]
        limits = plan.limits
        names = [limit.name for limit in limits]
        claim: LaunchClaim | Refused | None
        if run.claimed_attempt == run.attempt and created and run.launch_claimed(now):
            claim = LaunchClaim(attempt=run.attempt)  # claimed as it was created
        else:
            claim = self.store.runs.claim_launch(run, run.attempt, LAUNCH_LEASE, slots=names)
        if isinstance(claim, Refused):
            queued = self._wait_for_slot(run, claim, limits, created)
            if isinstance(queued, DispatchOutcome):
                return queued
            claim = queued
        stale = set(run.limits) - set(names)
        if claim is not None and stale:
            # Limits it waited for or was handed a slot of that no longer apply (changed,
            # removed, another target): their slots and places go to the runs they apply to.
            self.slots.release(run.run_id, stale)
        if claim is None:
            current = self.store.runs.get(run.run_id)
            state = current.state if current else run.state
            if state in WAITING_STATES:
                raise RetryLater(
                    f"run {run.run_id} is being launched by another delivery", CLAIM_BUSY_DELAY
                )
            return DispatchOutcome(run_id=run.run_id, state=state, created=created)
        if claim.resumed and run.unanswered >= self.retry.max_attempts:
            return self._last_look(run, target, launcher, created)
        try:
            launched = launcher.launch(run, target, attempt=claim.attempt, resume=claim.resumed)
        except LaunchError as exc:
            return self._launch_failed(run, target, exc, created)
        except Exception:
            # A bug, not an answer from the platform: what it launched may or may not exist.
            self.store.runs.release_launch(run.run_id, maybe_launched=True)
            raise
        return self._launched(run, target, launcher, launched, created)

    def _wait_for_target(self, run: FlowRun, message: str, created: bool) -> DispatchOutcome:
        """No target fits: the run waits in Pending, saying what is missing. A slot it holds
        (handed to it while it was Queued) goes to the next waiting run meanwhile."""
        if run.limits:
            self.slots.release(run.run_id, run.limits, only_if_waiting=True)
        if run.state is RunState.QUEUED:
            result = self.store.runs.transition(
                run.run_id, RunState.PENDING, Source.DISPATCHER, message=message, held=run
            )
            state = result.run.state if result.run else RunState.PENDING
            return DispatchOutcome(run_id=run.run_id, state=state, message=message, created=created)
        if run.message != message:
            self.store.runs.note_waiting(run.run_id, message)
        return DispatchOutcome(
            run_id=run.run_id, state=RunState.PENDING, message=message, created=created
        )

    def _wait_for_slot(
        self, run: FlowRun, refused: Refused, limits: list[ConcurrencyLimit], created: bool
    ) -> LaunchClaim | DispatchOutcome | None:
        """A limit had no slot for the run: it joins that limit's waiting list and gives back
        any slot it holds of the limits ordered after it (``applicable``'s order, by name),
        keeping those ordered before it. A run so waits only for a limit ordered after every
        one it holds: two runs never hold one slot each while waiting for the other's (no
        deadlock), and a slot is not passed round and round among runs that each need
        another (no livelock: giving back every other slot made three runs under two limits
        hand two slots to each other for ever). A slot freed before it joined the list had
        nobody to hand it to: it is handed now, to the oldest in the list. Handed one, the run
        claims again (a repeat of the slot it holds; another limit may refuse it in turn); else
        it waits in Queued, saying which limit holds it back and who holds its slots. Returns
        the claim when a second try took every slot; None when it must be tried again shortly
        (the limit was removed, or another delivery launched or ended the run meanwhile).

        Slots are given back only while the run waits and no delivery is launching it
        (``only_if_waiting``): a duplicate delivery must not take the slots of a launch that
        another delivery of the same run has just made."""
        names = [limit.name for limit in limits]
        held = [
            name
            for name in run.limits
            if name != refused.limit and not _ordered_before(name, refused.limit, names)
        ]
        if held:
            self.slots.release(run.run_id, held, only_if_waiting=True)
        for attempt in range(len(limits) + 1):
            if not self.store.limits.wait(run.run_id, refused.limit, run.created_at):
                return None
            state = self.store.limits.get(refused.limit)
            if state is not None and state.free > 0 and state.waiting:
                self.slots.hand_over(state, quiet=run.run_id)
                state = self.store.limits.get(refused.limit)
            if state is None:
                return None
            if run.run_id not in state.holders or attempt == len(limits):
                refused = Refused(
                    limit=refused.limit, holders=state.holders, max_runs=state.limit.max_runs
                )
                break
            again = self.store.runs.claim_launch(run, run.attempt, LAUNCH_LEASE, slots=names)
            if not isinstance(again, Refused):
                return again
            if again.limit != refused.limit and not _ordered_before(
                refused.limit, again.limit, names
            ):
                # Waiting for a limit ordered before it now: the slot it was handed goes on
                # meanwhile.
                self.slots.release(run.run_id, [refused.limit], only_if_waiting=True)
            refused = again
        return self._queued(run, refused, limits, created)

    def _queued(
        self, run: FlowRun, refused: Refused, limits: list[ConcurrencyLimit], created: bool
    ) -> DispatchOutcome:
        """The run waits in Queued for a slot of ``refused.limit`` (its message and history
        say which, and who holds its slots)."""
        limit = next((limit for limit in limits if limit.name == refused.limit), None)
        message = refused.message(limit)
        details = {
            "limit": refused.limit,
            "holders": sorted(refused.holders),
            "max_runs": refused.max_runs,
        }
        if run.state is RunState.QUEUED:
            if run.message != message:
                self.store.runs.note_waiting(run.run_id, message)
            state = RunState.QUEUED
        else:
            result = self.store.runs.transition(
                run.run_id,
                RunState.QUEUED,
                Source.DISPATCHER,
                message=message,
                details=details,
                held=run,
            )
            state = result.run.state if result.run else RunState.QUEUED
        return DispatchOutcome(run_id=run.run_id, state=state, message=message, created=created)

    def _launch_failed(
        self, run: FlowRun, target: Target, failure: LaunchError, created: bool
    ) -> DispatchOutcome:
        if failure.outcome_unknown:
            raise self._unanswered(run, target, str(failure), failure.reason) from failure
        if failure.throttled:
            deadline = self._start_deadline(run, target)
            if self.store.clock() < deadline:
                raise self._throttled(run, target, failure, deadline) from failure
        attempts = f"attempt {run.attempt} of {self.retry.max_attempts}"
        if failure.retryable and run.attempt < self.retry.max_attempts:
            delay = self.retry.delay(run.attempt)
            retry_at = self.store.clock() + timedelta(seconds=delay)
            message = (
                f"launch {attempts} on {target.name!r} failed: {failure.reason}; "
                f"trying again in {delay:.0f} s"
            )
            self.store.runs.fail_attempt(
                run, failure.reason, retry_at, message=message, details={"target": target.name}
            )
            raise RetryLater(message, delay) from failure
        after = f" (after {run.attempt} attempts)" if failure.retryable else ""
        return self._fail(
            run,
            f"launch on {target.name!r} failed{after}: {failure.reason}",
            created,
            details={"attempt": run.attempt, "reason": failure.reason},
        )

    def _start_deadline(self, run: FlowRun, target: Target) -> datetime:
        """Until when a run may be kept from its launch by the platform's request rate: its
        start limit, from its request."""
        timeouts = resolve_timeouts(self.timeouts, target.timeouts, run.timeout_seconds)
        return run.created_at + timedelta(seconds=timeouts.start_limit_seconds)

    def _throttled(
        self, run: FlowRun, target: Target, failure: LaunchError, deadline: datetime
    ) -> RetryLater:
        """The platform refused the launch for its request rate: nothing started, so the
        attempt is not spent; the run waits longer each time (until ``deadline``, after which a
        refusal counts as a failed attempt), and says so."""
        delay = self.retry.delay(run.throttled + 1)
        message = (
            f"launch attempt {run.attempt} on {target.name!r} was throttled: {failure.reason}; "
            f"trying again in {delay:.0f} s (throttling does not spend attempts until "
            f"{deadline:%Y-%m-%d %H:%M:%S} UTC)"
        )
        retry_at = self.store.clock() + timedelta(seconds=delay)
        self.store.runs.note_throttled(
            run, failure.reason, retry_at, message=message, details={"target": target.name}
        )
        return RetryLater(message, delay)

    def _unanswered(self, run: FlowRun, target: Target, what: str, reason: str) -> RetryLater:
        """Count a try of the run's attempt that went unanswered, say so on the run, and say
        when to try again (looking for what this try may have started first)."""
        tries = run.unanswered + 1
        budget = self.retry.max_attempts
        delay = self.retry.delay(tries)
        then = (
            f"its task is looked for, then it is tried again in {delay:.0f} s"
            if tries < budget
            else f"its task is looked for one last time in {delay:.0f} s"
        )
        message = (
            f"attempt {run.attempt} on {target.name!r}: {what}; whether it started a task is "
            f"unknown (it went unanswered; try {tries} of {budget}): {then}"
        )
        retry_at = self.store.clock() + timedelta(seconds=delay)
        self.store.runs.note_unanswered(
            run, reason, retry_at, message=message, details={"target": target.name}
        )
        return RetryLater(message, delay)

    def _last_look(
        self, run: FlowRun, target: Target, launcher: Launcher, created: bool
    ) -> DispatchOutcome:
        """Every try of the run's attempt went unanswered: look for a task one of them started;
        record it as the launch if there is one, else fail the run with the last answer."""
        try:
            found = launcher.find_unrecorded(run, run.attempt, [target])
        except LaunchError as exc:
            if run.unanswered < 2 * self.retry.max_attempts:
                raise self._unanswered(
                    run, target, f"looking for its task failed: {exc}", exc.reason
                ) from exc
            found = None
            reason = f"{exc}; so is looking for a task they may have started"
        else:
            reason = "none of them started a task"
        if found is not None:
            return self._launched(run, target, launcher, found, created)
        last = next(
            (
                entry.details.get("reason")
                for entry in reversed(self.store.runs.history(run.run_id))
                if not entry.note and entry.details.get("unanswered")
            ),
            None,
        )
        return self._fail(
            run,
            f"launch on {target.name!r} failed: {run.unanswered} tries of attempt "
            f"{run.attempt} went unanswered ({reason}); the last answer: {last}",
            created,
            details={"attempt": run.attempt, "unanswered": run.unanswered, "reason": last},
        )

    def _launched(
        self, run: FlowRun, target: Target, launcher: Launcher, launched: Launched, created: bool
    ) -> DispatchOutcome:
        infrastructure = launched.model_dump(mode="json", exclude_none=True)
        message = f"launched on {target.name!r}"
        if run.attempt > 1:
            message += f" (attempt {run.attempt})"
        timeouts = resolve_timeouts(self.timeouts, target.timeouts, run.timeout_seconds)
        result = self.store.runs.transition(
            run.run_id,
            RunState.SUBMITTED,
            Source.DISPATCHER,
            message=message,
            infrastructure=infrastructure,
            target=target.name,
            details={"attempt": run.attempt},
            updates={"retry_at": None, "timeouts": timeouts, "launched_at": self.store.clock()},
            held=run,
        )
        current = result.run
        if not result.applied and current is not None and _cancelled(current.state):
            return self._stop_cancelled_launch(current, launcher, infrastructure, created)
        state = current.state if current else RunState.SUBMITTED
        return DispatchOutcome(
            run_id=run.run_id, state=state, message=message, created=created, launched=True
        )

    def _stop_cancelled_launch(
        self,
        run: FlowRun,
        launcher: Launcher,
        infrastructure: dict[str, Any],
        created: bool,
    ) -> DispatchOutcome:
        """The run was cancelled while its task was being started: stop the task, and record it
        on the run so the monitor can see it stopped."""
        reason = "flowrelay: the run was cancelled while its task was being started"
        launcher.stop_launched(infrastructure, reason)
        message = "cancelled while being launched: the task that was starting is being stopped"
        if run.state is RunState.CANCELLING:
            self.store.runs.amend(
                run, Source.DISPATCHER, message, {"infrastructure": infrastructure}
            )
        return DispatchOutcome(
            run_id=run.run_id, state=run.state, message=message, created=created, launched=True
        )

    def _fail(
        self,
        run: FlowRun,
        message: str,
        created: bool,
        details: Mapping[str, Any] | None = None,
    ) -> DispatchOutcome:
        # Read again, not decided from ``run``: the slots to give back are those the run holds
        # now (taking and waiting for slots does not change its version).
        result = self.store.runs.transition(
            run.run_id, RunState.FAILED, Source.DISPATCHER, message=message, details=details
        )
        self.slots.give_back(result.run)
        state = result.run.state if result.run else RunState.FAILED
        return DispatchOutcome(run_id=run.run_id, state=state, message=message, created=created)


def _ordered_before(name: str, other: str, order: list[str]) -> bool:
    """Whether limit ``name`` comes before limit ``other`` in the order slots are taken in
    (a limit no longer in ``order`` comes after every one: it is given back)."""
    if name not in order:
        return False
    return other not in order or order.index(name) < order.index(other)


def _cancelled(state: RunState) -> bool:
    return state is RunState.CANCELLING or state is RunState.CANCELLED


def _labels(request: FlowRunRequested, registration: FlowRegistration | None) -> list[str]:
    """The request's labels, else its run config's, else the registered flow's."""
    if request.labels is not None:
        return sorted(set(request.labels))
    if request.run_config is not None and request.run_config.labels:
        return sorted(set(request.run_config.labels))
    return list(registration.labels) if registration else []


def _run_config(
    request: FlowRunRequested, registration: FlowRegistration | None
) -> dict[str, Any] | None:
    config = request.run_config or (registration.run_config if registration else None)
    return config.model_dump(mode="json") if config is not None else None


def _restart_problem(
    request: FlowRunRequested, restart_of: str, original: FlowRun | None, run_id: str
) -> str | None:
    """Why a request to restart run ``restart_of`` cannot be run (its run is Failed with it),
    or None: it must be keyed as the restart of that run (a run is restarted once), and the
    original must exist, be of the same flow and version, and have ended Failed, Crashed,
    TimedOut or Cancelled."""
    if run_id != run_id_for(restart_key(restart_of)):
        return (
            f"cannot restart run {restart_of} as run {run_id}: a restart is keyed by the run it "
            f"restarts (idempotency key {restart_key(restart_of)!r}, or none, and no "
            f"flow_run_id), so that a run is restarted once"
        )
    if original is None:
        return f"cannot restart run {restart_of}: there is no such run"
    if original.flow_name != request.flow:
        return (
            f"cannot restart run {restart_of} as a run of flow {request.flow!r}: it is a run of "
            f"flow {original.flow_name!r}"
        )
    if (
        request.version is not None
        and original.flow_version is not None
        and request.version != original.flow_version
    ):
        return (
            f"cannot restart run {restart_of} with version {request.version} of flow "
            f"{request.flow!r}: a restart runs the version its original ran "
            f"({original.flow_version})"
        )
    return restart_refusal(original)


def _parameter_problem(given: Mapping[str, Any], registration: FlowRegistration) -> str | None:
    try:
        registration.check_run_parameters(given)
    except ParameterError as exc:
        return str(exc)
    return None


def reject_request(store: Store, body: str, reason: str, slots: Slots | None = None) -> str | None:
    """A malformed request that still names its run and flow is recorded on that run as Failed
    with the reason, so the person who sent it sees why; returns that run's id. None when it
    names no usable run id, or names a run already past waiting (a bad duplicate of a launched
    run's request must not fail that run): the message then fails, and ends in the DLQ."""
    try:
        detail = json.loads(body).get("detail", {})
        run_id, flow = detail.get("flow_run_id"), detail.get("flow")
    except (ValueError, AttributeError, RecursionError):
        return None
    if not (
        isinstance(run_id, str)
        and re.fullmatch(RUN_ID_PATTERN, run_id)
        and isinstance(flow, str)
        and flow
    ):
        return None
    run, created = store.runs.create(run_id, flow)
    if not created and run.state not in WAITING_STATES:
        (slots or Slots(store)).give_back(run)  # a first delivery may have died before it
        return None
    applied = store.runs.transition(
        run.run_id, RunState.FAILED, Source.DISPATCHER, message=f"rejected request: {reason}"
    )
    (slots or Slots(store)).give_back(applied.run)
    return run.run_id if applied.applied else None
