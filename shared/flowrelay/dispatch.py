"""Dispatch: a "Flow Run Requested" event becomes exactly one launched run.

For each request: create the run once (its id comes from ``flow_run_id``, else the idempotency
key, else the EventBridge event id, so every redelivery finds the same run), resolve the
registered flow and the run's config and labels, pick a target, claim the launch, launch, and
record Submitted with the infrastructure reference.

What can go wrong, and where it ends up:

- The user must fix it (unknown flow or version, parameters that do not fit, a run config the
  target kind cannot run, a task definition ECS rejects): the run is Failed with the reason.
- Nothing can take the run yet (no target fits): the run waits in Pending with a message naming
  what is missing; the monitor asks for it again once a target fits (``requests_for_waiting_runs``).
- AWS says "not now" (throttling, capacity, transient start failures): ``RetryLater`` is raised,
  the message goes back to its queue and comes again after the visibility timeout; after
  ``max_attempts`` deliveries the run is Failed with the last reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from flowrelay.engine import ParameterError, check_parameters
from flowrelay.events import FlowRunRequested, ParsedEvent
from flowrelay.modeling import Model
from flowrelay.registry import FlowRegistration
from flowrelay.run_states import RunState, Source
from flowrelay.store import FlowRun, RunStore, run_id_for
from flowrelay.targets import Target, choose_target

LAUNCH_LEASE = timedelta(minutes=5)


class LaunchFailed(Exception):
    """What launchers raise: ``retryable`` when AWS may say yes later."""

    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Launcher(Protocol):
    def launch(self, run: FlowRun, target: Target, *, attempt: int = 1) -> Any:
        """Start the run's infrastructure; returns an object with ``model_dump()`` describing it
        (task ARN, cluster, ...)."""


class RetryLater(Exception):
    """Raised so the queue delivers the request again later (the batch reports it failed)."""


class DispatchOutcome(Model):
    run_id: str
    state: RunState
    message: str | None = None
    created: bool = False
    launched: bool = False


class Dispatcher:
    """Turns run requests into launched runs. ``launchers`` maps target kinds to launchers."""

    def __init__(
        self,
        store: RunStore,
        launchers: Mapping[str, Launcher],
        *,
        max_attempts: int = 5,
        launch_errors: Callable[[Exception], LaunchFailed | None] | None = None,
    ) -> None:
        self.store = store
        self.launchers = launchers
        self.max_attempts = max_attempts
        self.launch_errors = launch_errors or _launch_failure

    def handle_request(self, event: ParsedEvent, delivery: int = 1) -> DispatchOutcome:
        """Dispatch one request; ``delivery`` is how many times its message has been received."""
        request: FlowRunRequested = event.detail
        run_id = request.flow_run_id or run_id_for(
            request.idempotency_key or f"event:{event.envelope.id}"
        )
        registration = self.store.get_flow(request.flow, request.version)
        run, created = self.store.create_run(
            run_id,
            request.flow,
            flow_version=registration.version if registration else request.version,
            parameters=request.parameters,
            labels=_labels(request, registration),
            run_config=_run_config(request, registration),
            idempotency_key=request.idempotency_key,
        )
        if run.state not in (RunState.PENDING, RunState.SCHEDULED):
            return DispatchOutcome(run_id=run_id, state=run.state, message=run.message)
        if registration is None:
            version = f" version {request.version}" if request.version else ""
            return self._fail(run, f"flow {request.flow!r}{version} is not registered", created)
        problem = _parameter_problem(request.parameters, registration)
        if problem:
            return self._fail(run, problem, created)
        return self.launch(run, delivery=delivery, created=created)

    def launch(self, run: FlowRun, delivery: int = 1, created: bool = False) -> DispatchOutcome:
        """Pick a target for a waiting run and launch it (at most once per attempt)."""
        choice = choose_target(self.store.list_targets(), run.labels, run.run_config)
        if choice.target is None:
            message = (
                f"waiting for a launch target: {choice.reason.removeprefix('no target fits: ')}"
            )
            if run.message != message:
                self.store.note_pending(run.run_id, message)
            return DispatchOutcome(
                run_id=run.run_id, state=RunState.PENDING, message=message, created=created
            )
        target = choice.target
        launcher = self.launchers.get(target.kind)
        if launcher is None:
            return self._fail(run, f"no launcher for {target.kind} targets here", created)
        if not self.store.claim_launch(run.run_id, delivery, LAUNCH_LEASE):
            current = self.store.get_run(run.run_id)
            state = current.state if current else run.state
            if state in (RunState.PENDING, RunState.SCHEDULED):
                raise RetryLater(f"run {run.run_id} is being launched by another delivery")
            return DispatchOutcome(run_id=run.run_id, state=state, created=created)
        try:
            launched = launcher.launch(run, target, attempt=delivery)
        except Exception as exc:
            failure = self.launch_errors(exc)
            if failure is None:
                self.store.release_launch(run.run_id)
                raise
            if failure.retryable and delivery < self.max_attempts:
                self.store.release_launch(run.run_id)
                raise RetryLater(
                    f"attempt {delivery} of {self.max_attempts}: {failure.reason}"
                ) from exc
            attempts = f" (after {delivery} attempts)" if failure.retryable else ""
            return self._fail(
                run, f"launch on {target.name!r} failed{attempts}: {failure.reason}", created
            )
        infrastructure = launched.model_dump(mode="json", exclude_none=True)
        result = self.store.transition(
            run.run_id,
            RunState.SUBMITTED,
            Source.DISPATCHER,
            message=f"launched on {target.name!r}",
            infrastructure=infrastructure,
            target=target.name,
        )
        state = result.run.state if result.run else RunState.SUBMITTED
        return DispatchOutcome(
            run_id=run.run_id,
            state=state,
            message=f"launched on {target.name!r}",
            created=created,
            launched=True,
        )

    def _fail(self, run: FlowRun, message: str, created: bool) -> DispatchOutcome:
        result = self.store.transition(
            run.run_id, RunState.FAILED, Source.DISPATCHER, message=message
        )
        state = result.run.state if result.run else RunState.FAILED
        return DispatchOutcome(run_id=run.run_id, state=state, message=message, created=created)


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


def _parameter_problem(given: Mapping[str, Any], registration: FlowRegistration) -> str | None:
    required = {parameter.name: parameter.required for parameter in registration.parameters}
    try:
        check_parameters(registration.name, required, given)
    except ParameterError as exc:
        return str(exc)
    return None


def _launch_failure(exc: Exception) -> LaunchFailed | None:
    """Launchers' errors as LaunchFailed; anything else is a bug and propagates."""
    if isinstance(exc, LaunchFailed):
        return exc
    retryable = getattr(exc, "retryable", None)
    reason = getattr(exc, "reason", None)
    if isinstance(retryable, bool) and isinstance(reason, str):
        return LaunchFailed(reason, retryable)
    return None


def requests_for_waiting_runs(store: RunStore) -> list[FlowRunRequested]:
    """A new request for every run waiting in Pending that some target now fits (a target was
    added, or its labels changed). Dispatch takes them like any request: same run id, so the
    run is launched once, by the one function allowed to launch."""
    targets = store.list_targets()
    requests = []
    for run in store.active_runs(RunState.PENDING):
        if choose_target(targets, run.labels, run.run_config).target is None:
            continue
        requests.append(
            FlowRunRequested(
                flow=run.flow_name,
                version=run.flow_version,
                parameters=run.parameters,
                flow_run_id=run.run_id,
                requested_by="monitor",
            )
        )
    return requests
