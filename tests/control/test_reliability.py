"""Nothing stuck, nothing lost, nothing run twice: launch retries, cancellation at every state,
the monitor's duties and relaunching after transient start failures, against moto over HTTP
with the real store, the real ECS launcher, the real canceller and monitor.

AWS's refusals (throttling, no capacity) are AWS's answers: they are injected at the HTTP
boundary with botocore's ``before-call`` event, which lets a handler answer in AWS's place.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders

from flowrelay.aws.bus import Publisher
from flowrelay.control.cancel import CancelError, Canceller
from flowrelay.control.dispatch import LAUNCH_LEASE, Dispatcher, RetryLater
from flowrelay.control.monitor import Monitor
from flowrelay.control.recorder import StateRecorder
from flowrelay.control.store import Store
from flowrelay.core.events import (
    FlowRunCancelRequested,
    FlowRunStateChanged,
    ParsedEvent,
    parse_event,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.policies import RetryPolicy, Timeouts
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import InfraStatus, Swept
from flowrelay.launchers.ecs import EcsLauncher, LaunchResult
from flowrelay.launchers.ecs.status import EcsTaskStateChange, task_status
from flowrelay.launchers.kinds import event_readers
from tests.support.aws import Clock, tasks_of_run
from tests.support.strategies import envelope

CAPACITY = "Capacity is unavailable at this time. Please try again later."
NETWORK_TIMEOUT = "Timeout waiting for network interface provisioning to complete."


@pytest.fixture
def store(store: Store, clock: Clock) -> Store:
    """conftest's store (``etl`` registered), on the test's clock."""
    store.clock = clock
    return store


@pytest.fixture
def target(store: Store, cluster: str, network: dict[str, Any]) -> Target:
    target = Target(
        name="fargate",
        kind="ecs",
        settings={"cluster": cluster, "image": f"example/flows:{uuid.uuid4().hex[:6]}", **network},
    )
    store.targets.put(target)
    return target


@pytest.fixture
def launcher(ecs: Any, store: Store, bus: str) -> EcsLauncher:
    return EcsLauncher(ecs, table_name=store.table_name, bus_name=bus)


POLICY = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60)
#: The deployment's defaults in these tests; the dispatcher stores them on each run it launches.
LIMITS = Timeouts(
    start_seconds=60, start_limit_seconds=300, heartbeat_seconds=90, stop_grace_seconds=30
)


@pytest.fixture
def dispatcher(store: Store, launcher: EcsLauncher) -> Dispatcher:
    return Dispatcher(store, {"ecs": launcher}, retry=POLICY, timeouts=LIMITS)


def request(**detail: Any) -> ParsedEvent:
    detail = {"flow": "etl", "flow_run_id": f"run-{uuid.uuid4().hex[:12]}", **detail}
    return parse_event(envelope("Flow Run Requested", detail, event_id=str(uuid.uuid4())))


def run_of(store: Store, run_id: str) -> FlowRun:
    run = store.runs.get(run_id)
    assert run is not None
    return run


def running_tasks_of_run(ecs: Any, cluster: str, run_id: str) -> list[dict[str, Any]]:
    return [
        task for task in tasks_of_run(ecs, cluster, run_id) if task["desiredStatus"] != "STOPPED"
    ]


@pytest.fixture
def aws_answers(ecs: Any) -> Iterator[Callable[..., None]]:
    """``aws_answers("RunTask", error=(code, message), times=n)`` or ``failures=[...]``: ECS
    answers the next ``times`` calls of the operation that way instead of doing them."""
    handlers: list[Any] = []

    def answer(
        operation: str,
        *,
        error: tuple[str, str] | None = None,
        failures: list[dict[str, str]] | None = None,
        times: int = 1,
    ) -> None:
        left = [times]

        def handler(**_: Any) -> Any:
            if left[0] <= 0:
                return None
            left[0] -= 1
            if error is not None:
                status = 400
                parsed: dict[str, Any] = {"Error": {"Code": error[0], "Message": error[1]}}
            else:
                status, parsed = 200, {"tasks": [], "failures": failures or []}
            parsed["ResponseMetadata"] = {"HTTPStatusCode": status}
            return AWSResponse("http://127.0.0.1/", status, HTTPHeaders(), None), parsed

        ecs.meta.events.register(f"before-call.ecs.{operation}", handler)
        handlers.append((f"before-call.ecs.{operation}", handler))

    yield answer
    for event, handler in handlers:
        ecs.meta.events.unregister(event, handler)


# --- launch retries -----------------------------------------------------------------------------


def test_capacity_refusals_are_retried_as_new_attempts_with_backoff(
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
    aws_answers: Callable[..., None],
) -> None:
    aws_answers("RunTask", failures=[{"reason": CAPACITY}], times=2)
    event = request()
    run_id = event.detail.flow_run_id
    for attempt in (1, 2):
        with pytest.raises(RetryLater) as later:
            dispatcher.handle_request(event)
        assert POLICY.floor_seconds <= later.value.delay <= POLICY.ceiling(attempt)
        run = run_of(store, run_id)
        assert run.state is RunState.PENDING
        assert run.attempt == attempt + 1
        assert run.retry_at == clock.now + timedelta(seconds=later.value.delay)
        assert f"launch attempt {attempt} of 3 on 'fargate' failed: {CAPACITY}" in str(run.message)
        # Delivered again before its backoff is over: it waits, nothing is launched.
        with pytest.raises(RetryLater):
            dispatcher.handle_request(event)
        clock.advance(later.value.delay)
    outcome = dispatcher.handle_request(event)
    assert outcome.launched
    run = run_of(store, run_id)
    assert run.state is RunState.SUBMITTED
    assert run.message == "launched on 'fargate' (attempt 3)"
    (task,) = tasks_of_run(ecs, cluster, run_id)
    assert {t["key"]: t["value"] for t in task["tags"]}["flowrelay:attempt"] == "3"
    reasons = [entry.details.get("reason") for entry in store.runs.history(run_id)]
    assert reasons.count(CAPACITY) == 2


def test_a_run_that_exhausts_its_attempts_fails_with_every_reason_in_its_history(
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
    aws_answers: Callable[..., None],
) -> None:
    aws_answers("RunTask", error=("ServiceUnavailableException", "Service unavailable"), times=10)
    event = request()
    run_id = event.detail.flow_run_id
    for _ in range(2):
        with pytest.raises(RetryLater) as later:
            dispatcher.handle_request(event)
        clock.advance(later.value.delay)
    outcome = dispatcher.handle_request(event)
    assert outcome.state is RunState.FAILED
    run = run_of(store, run_id)
    assert run.message == "launch on 'fargate' failed (after 3 attempts): Service unavailable"
    attempts = [
        (entry.details.get("attempt"), entry.details.get("reason"))
        for entry in store.runs.history(run_id)
        if "reason" in entry.details
    ]
    assert attempts == [(n, "Service unavailable") for n in (1, 2, 3)]
    assert tasks_of_run(ecs, cluster, run_id) == []


def test_throttling_does_not_spend_attempts_until_the_start_limit(
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
    aws_answers: Callable[..., None],
) -> None:
    """ECS refusing RunTask for its rate started nothing: the run waits, longer each time, as
    the same attempt, for as long as its start limit allows; then refusals count again."""
    aws_answers("RunTask", error=("ThrottlingException", "Rate exceeded"), times=1000)
    event = request()
    run_id = event.detail.flow_run_id
    started = clock.now
    waits = 0
    while clock.now < started + timedelta(seconds=LIMITS.start_limit_seconds):
        with pytest.raises(RetryLater) as later:
            dispatcher.handle_request(event)
        waits += 1
        run = run_of(store, run_id)
        assert run.state is RunState.PENDING
        assert run.attempt == 1, "a throttled launch is not a failed attempt"
        assert run.throttled == waits
        assert "launch attempt 1 on 'fargate' was throttled: Rate exceeded" in str(run.message)
        assert POLICY.floor_seconds <= later.value.delay <= POLICY.ceiling(waits)
        clock.advance(later.value.delay)
    assert waits > POLICY.max_attempts
    # Past its start limit, a refusal spends an attempt, and the attempts run out.
    for _ in range(POLICY.max_attempts - 1):
        with pytest.raises(RetryLater) as later:
            dispatcher.handle_request(event)
        clock.advance(later.value.delay)
    outcome = dispatcher.handle_request(event)
    assert outcome.state is RunState.FAILED
    assert run_of(store, run_id).message == (
        f"launch on 'fargate' failed (after {POLICY.max_attempts} attempts): Rate exceeded"
    )
    throttled = [e for e in store.runs.history(run_id) if e.details.get("throttled")]
    assert len(throttled) == waits
    assert tasks_of_run(ecs, cluster, run_id) == []


# --- cancellation at every state ----------------------------------------------------------------


@pytest.fixture
def canceller(store: Store, launcher: EcsLauncher) -> Canceller:
    return Canceller(store, {"ecs": launcher})


def cancel(canceller: Canceller, run_id: str, reason: str = "not needed") -> Any:
    return canceller.cancel(
        FlowRunCancelRequested(flow_run_id=run_id, reason=reason, requested_by="ops")
    )


def ecs_event_of(task: dict[str, Any]) -> ParsedEvent:
    """The "ECS Task State Change" event AWS puts for the task as it is now."""
    detail = {k: v for k, v in task.items() if k != "tags"}
    detail["version"] = task.get("version", 0) + 1
    return parse_event(
        envelope(
            "ECS Task State Change",
            json.loads(json.dumps(detail, default=str)),
            source="aws.ecs",
            event_id=str(uuid.uuid4()),
            resources=[task["taskArn"]],
        ),
        event_readers(),
    )


def test_cancelling_a_scheduled_run_cancels_it_without_launching(
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    ecs: Any,
    cluster: str,
) -> None:
    run, _ = store.runs.create("run-scheduled-1", "etl", state=RunState.SCHEDULED)
    outcome = cancel(canceller, run.run_id)
    assert outcome.state is RunState.CANCELLED
    assert run_of(store, run.run_id).message == "cancel requested by ops: not needed"
    dispatcher.handle_request(request(flow_run_id=run.run_id))
    assert run_of(store, run.run_id).state is RunState.CANCELLED
    assert tasks_of_run(ecs, cluster, run.run_id) == []


def test_cancelling_a_pending_run_cancels_it_and_it_is_never_launched(
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    ecs: Any,
    cluster: str,
    network: dict[str, Any],
) -> None:
    event = request(labels=["gpu"])
    run_id = event.detail.flow_run_id
    assert dispatcher.handle_request(event).state is RunState.PENDING  # no target yet
    assert cancel(canceller, run_id).state is RunState.CANCELLED
    store.targets.put(
        Target(name="gpu", kind="ecs", labels=["gpu"], settings={"cluster": cluster, **network})
    )
    dispatcher.handle_request(event)
    assert run_of(store, run_id).state is RunState.CANCELLED
    assert tasks_of_run(ecs, cluster, run_id) == []


def test_a_cancel_that_arrives_while_the_task_is_starting_stops_that_task(
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    launcher: EcsLauncher,
    target: Target,
    bus: str,
    ecs: Any,
    cluster: str,
) -> None:
    event = request()
    run_id = event.detail.flow_run_id
    outcomes = []

    def cancel_now(**_: Any) -> None:
        outcomes.append(cancel(canceller, run_id, "changed my mind"))

    ecs.meta.events.register_first("before-call.ecs.RunTask", cancel_now)
    try:
        dispatcher.handle_request(event)
    finally:
        ecs.meta.events.unregister("before-call.ecs.RunTask", cancel_now)
    # The dispatcher held the launch claim: the cancel could not end the run at once.
    assert [o.state for o in outcomes] == [RunState.CANCELLING]
    run = run_of(store, run_id)
    assert run.state is RunState.CANCELLING
    (task,) = tasks_of_run(ecs, cluster, run_id)
    assert run.infrastructure["task_arn"] == task["taskArn"]
    assert task["desiredStatus"] == "STOPPED"
    monitor = Monitor(store, {"ecs": launcher}, Publisher(boto3.client("events"), bus))
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("cancelled", RunState.CANCELLED)
    assert running_tasks_of_run(ecs, cluster, run_id) == []


@pytest.mark.parametrize("reached", [RunState.SUBMITTED, RunState.RUNNING])
def test_cancelling_a_launched_run_stops_its_task_and_it_ends_cancelled(
    reached: RunState,
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    ecs: Any,
    cluster: str,
) -> None:
    event = request()
    run_id = event.detail.flow_run_id
    dispatcher.handle_request(event)
    if reached is RunState.RUNNING:
        store.runs.transition(run_id, RunState.RUNNING, Source.RUNNER)
    outcome = cancel(canceller, run_id)
    assert (outcome.state, outcome.stopped) == (RunState.CANCELLING, True)
    (task,) = tasks_of_run(ecs, cluster, run_id)
    assert task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "flowrelay: cancelled: not needed"
    # A second cancel (the user pressed twice): StopTask on a stopped task is not an error.
    assert cancel(canceller, run_id).state is RunState.CANCELLING
    # The runner reports being stopped (SIGTERM), and the task's STOPPED event comes.
    store.runs.transition(
        run_id, RunState.FAILED, Source.RUNNER, message="Flow run stopped by SIGTERM"
    )
    ecs.stop_task(cluster=cluster, task=task["taskArn"], reason="stopped")
    (stopped,) = tasks_of_run(ecs, cluster, run_id)
    StateRecorder(store).handle(ecs_event_of(stopped | {"lastStatus": "STOPPED"}))
    run = run_of(store, run_id)
    assert run.state is RunState.CANCELLED
    assert running_tasks_of_run(ecs, cluster, run_id) == []
    assert (
        cancel(canceller, run_id).message == f"run {run_id} is already Cancelled; nothing to cancel"
    )


class DispatcherDied(BaseException):
    """The dispatcher's process died here (nothing in flowrelay can catch it)."""


@pytest.mark.parametrize("how", ["killed after RunTask", "RunTask unanswered"])
def test_a_cancel_finds_and_stops_a_task_its_dispatcher_never_recorded(
    how: str,
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    launcher: EcsLauncher,
    target: Target,
    clock: Clock,
    bus: str,
    ecs: Any,
    cluster: str,
) -> None:
    from botocore.exceptions import ReadTimeoutError

    event = request()
    run_id = event.detail.flow_run_id

    def fail_after_run_task(**_: Any) -> None:
        if how == "killed after RunTask":
            raise DispatcherDied("between RunTask and recording the task")
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1/ (RunTask)")

    ecs.meta.events.register("after-call.ecs.RunTask", fail_after_run_task)
    try:
        with pytest.raises((DispatcherDied, RetryLater)):
            dispatcher.handle_request(event)
    finally:
        ecs.meta.events.unregister("after-call.ecs.RunTask", fail_after_run_task)
    (task,) = running_tasks_of_run(ecs, cluster, run_id)
    assert run_of(store, run_id).infrastructure == {}  # the run does not know its task

    # Not Cancelled at once: a task may exist. The monitor looks once no claim is live.
    assert cancel(canceller, run_id).state is RunState.CANCELLING
    monitor = Monitor(store, {"ecs": launcher}, Publisher(boto3.client("events"), bus))
    if how == "killed after RunTask":
        assert monitor.run_once().actions == []  # the dead dispatcher's lease still runs
        clock.advance(LAUNCH_LEASE.total_seconds() + 1)
    (action,) = monitor.run_once().actions
    assert action.action == "stopped", action
    assert task["taskArn"] in action.message
    run = run_of(store, run_id)
    assert run.state is RunState.CANCELLING
    assert run.infrastructure["task_arn"] == task["taskArn"]
    assert running_tasks_of_run(ecs, cluster, run_id) == []
    (stopped,) = tasks_of_run(ecs, cluster, run_id)
    assert stopped["stoppedReason"] == "flowrelay: cancelled (a task started unrecorded)"
    StateRecorder(store).handle(ecs_event_of(stopped | {"lastStatus": "STOPPED"}))
    assert run_of(store, run_id).state is RunState.CANCELLED


def test_a_cancel_after_a_launch_that_started_nothing_ends_cancelled(
    canceller: Canceller,
    dispatcher: Dispatcher,
    store: Store,
    launcher: EcsLauncher,
    target: Target,
    clock: Clock,
    bus: str,
    ecs: Any,
    cluster: str,
) -> None:
    event = request()
    run_id = event.detail.flow_run_id

    def die_before_run_task(**_: Any) -> None:
        raise DispatcherDied("before RunTask")

    ecs.meta.events.register("before-call.ecs.RunTask", die_before_run_task)
    try:
        with pytest.raises(DispatcherDied):
            dispatcher.handle_request(event)
    finally:
        ecs.meta.events.unregister("before-call.ecs.RunTask", die_before_run_task)
    assert cancel(canceller, run_id).state is RunState.CANCELLING
    clock.advance(LAUNCH_LEASE.total_seconds() + 1)
    monitor = Monitor(store, {"ecs": launcher}, Publisher(boto3.client("events"), bus))
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("cancelled", RunState.CANCELLED)
    assert action.message == "cancelled before it was launched"
    assert tasks_of_run(ecs, cluster, run_id) == []


def test_cancelling_an_unknown_run_is_an_error_naming_it(canceller: Canceller) -> None:
    with pytest.raises(CancelError, match="no flow run 'nope' to cancel"):
        cancel(canceller, "nope")


# --- the monitor ---------------------------------------------------------------------------------


@pytest.fixture
def monitor(store: Store, launcher: EcsLauncher, bus: str) -> Monitor:
    return Monitor(
        store,
        {"ecs": launcher},
        Publisher(boto3.client("events"), bus),
        defaults=LIMITS,
        retry=POLICY,
        log_tail=lambda infrastructure: "",
    )


def launched(dispatcher: Dispatcher, store: Store, **detail: Any) -> FlowRun:
    event = request(**detail)
    dispatcher.handle_request(event)
    return run_of(store, event.detail.flow_run_id)


def test_a_submitted_run_whose_task_stopped_unseen_is_crashed_after_the_start_timeout(
    monitor: Monitor,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
) -> None:
    run = launched(dispatcher, store)
    ecs.stop_task(
        cluster=cluster,
        task=run.infrastructure["task_arn"],
        reason="Essential container in task exited",
    )
    assert monitor.run_once().actions == []  # within the start timeout: not asked yet
    clock.advance(61)
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("crashed", RunState.CRASHED)
    assert "Essential container in task exited" in action.message
    assert "not started after 61 s" in action.message


def test_a_submitted_run_whose_task_ecs_forgot_is_crashed(
    monitor: Monitor, store: Store, clock: Clock, cluster: str
) -> None:
    run, _ = store.runs.create("run-forgotten", "etl")
    task_arn = f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/0123456789abcdef"
    store.runs.transition(
        run.run_id,
        RunState.SUBMITTED,
        Source.DISPATCHER,
        infrastructure=LaunchResult(
            task_arn=task_arn, cluster=cluster, task_definition_arn="td", attempt=1
        ).model_dump(mode="json", exclude_none=True),
    )
    clock.advance(3600)
    (action,) = monitor.run_once().actions
    assert action.action == "crashed"
    assert "ECS no longer knows its task" in action.message


def test_a_silent_runner_whose_task_runs_is_a_warning_not_a_crash(
    monitor: Monitor,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = launched(dispatcher, store)
    store.runs.transition(run.run_id, RunState.RUNNING, Source.RUNNER)
    clock.advance(60)
    store.runs.heartbeat(run.run_id)
    clock.advance(60)
    assert monitor.run_once().actions == []  # heard from 60 s ago
    clock.advance(60)
    (action,) = monitor.run_once().actions
    assert action.action == "runner_silent"
    assert "no heartbeat for 120 s but its ECS task is RUNNING" in action.message
    assert run_of(store, run.run_id).state is RunState.RUNNING
    assert any(r.levelname == "WARNING" and run.run_id in r.getMessage() for r in caplog.records)


def test_a_running_run_whose_task_stopped_unseen_is_crashed_after_the_heartbeat_timeout(
    monitor: Monitor,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
) -> None:
    run = launched(dispatcher, store)
    store.runs.transition(run.run_id, RunState.RUNNING, Source.RUNNER)
    ecs.stop_task(
        cluster=cluster,
        task=run.infrastructure["task_arn"],
        reason="OutOfMemoryError: Container killed due to memory usage",
    )
    clock.advance(91)
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("crashed", RunState.CRASHED)
    assert "OutOfMemoryError" in action.message
    assert "no heartbeat for 91 s" in action.message


def test_a_run_past_its_timeout_is_stopped_then_timed_out(
    monitor: Monitor,
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
) -> None:
    run = launched(dispatcher, store, timeout_seconds=120)
    assert run.timeouts is not None
    assert run.timeouts.run_seconds == 120
    store.runs.transition(run.run_id, RunState.RUNNING, Source.RUNNER)
    for _ in range(3):  # heartbeats keep it healthy; only the run timeout stops it
        clock.advance(50)
        store.runs.heartbeat(run.run_id)
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("timed_out", RunState.TIMED_OUT)
    assert (
        action.message
        == "timed out: running for 150 s, over its limit of 120 s; its task was stopped"
    )
    (task,) = tasks_of_run(ecs, cluster, run.run_id)
    assert task["desiredStatus"] == "STOPPED"
    # The task's STOPPED event comes after: TimedOut stays.
    StateRecorder(store).handle(ecs_event_of(task | {"lastStatus": "STOPPED"}))
    assert run_of(store, run.run_id).state is RunState.TIMED_OUT


def test_pending_runs_are_offered_when_due_and_a_target_fits(
    monitor: Monitor,
    dispatcher: Dispatcher,
    store: Store,
    clock: Clock,
    cluster: str,
    network: dict[str, Any],
) -> None:
    waiting = launched(dispatcher, store, labels=["gpu"])
    assert waiting.state is RunState.PENDING
    assert monitor.run_once().actions == []  # nothing fits yet
    store.targets.put(
        Target(name="gpu", kind="ecs", labels=["gpu"], settings={"cluster": cluster, **network})
    )
    (action,) = monitor.run_once().actions
    assert (action.run_id, action.action) == (waiting.run_id, "offered")
    store.runs.claim_launch(waiting, 1, LAUNCH_LEASE)
    assert monitor.run_once().actions == []  # a dispatcher is on it


# --- transient start failures --------------------------------------------------------------------


def test_a_transient_start_failure_relaunches_as_the_next_attempt(
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    clock: Clock,
    ecs: Any,
    cluster: str,
) -> None:
    relaunched: list[str] = []
    recorder = StateRecorder(
        store, retry=POLICY, relaunch=lambda run: relaunched.append(run.run_id)
    )
    run = launched(dispatcher, store)
    first = run.infrastructure["task_arn"]
    ecs.stop_task(cluster=cluster, task=first, reason=NETWORK_TIMEOUT)
    (task,) = tasks_of_run(ecs, cluster, run.run_id)
    failed_to_start = ecs_event_of(
        task
        | {
            "lastStatus": "STOPPED",
            "stopCode": "TaskFailedToStart",
            "stoppedReason": NETWORK_TIMEOUT,
            "containers": [{"name": "flow"}],
        }
    )
    outcome = recorder.handle(failed_to_start)
    assert outcome.state is RunState.PENDING
    assert relaunched == [run.run_id]
    waiting = run_of(store, run.run_id)
    assert waiting.attempt == 2
    assert f"attempt 1 of 3 failed to start (transient): {NETWORK_TIMEOUT}" in str(waiting.message)
    assert waiting.retry_at is not None
    clock.advance((waiting.retry_at - clock.now).total_seconds())
    dispatcher.handle_request(request(flow_run_id=run.run_id))
    again = run_of(store, run.run_id)
    assert again.state is RunState.SUBMITTED
    assert again.infrastructure["task_arn"] != first
    # The first task's event, delivered again late, is about an earlier attempt: ignored.
    assert not recorder.handle(failed_to_start).applied
    assert run_of(store, run.run_id).state is RunState.SUBMITTED
    assert len(tasks_of_run(ecs, cluster, run.run_id)) == 2


def test_a_start_failure_that_is_not_transient_crashes_the_run(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    run = launched(dispatcher, store)
    reason = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
    (task,) = tasks_of_run(ecs, cluster, run.run_id)
    event = ecs_event_of(
        task
        | {
            "lastStatus": "STOPPED",
            "stopCode": "TaskFailedToStart",
            "stoppedReason": reason,
            "containers": [],
        }
    )
    assert StateRecorder(store, retry=POLICY).handle(event).state is RunState.CRASHED
    assert run_of(store, run.run_id).message == (
        f"ECS task stopped (TaskFailedToStart): {reason}; no container ran"
    )


def test_runner_state_events_still_apply(store: Store) -> None:
    """The recorder's other path is unchanged by relaunching (a smoke check of the wiring)."""
    run, _ = store.runs.create("run-smoke", "etl")
    change = FlowRunStateChanged(
        flow_run_id=run.run_id, state=RunState.RUNNING, source=Source.RUNNER
    )
    event = parse_event(
        {
            "version": "0",
            "id": "e",
            "detail-type": "Flow Run State Changed",
            "source": "flowrelay",
            "time": "2026-11-23T12:00:00Z",
            "region": "us-east-1",
            "detail": json.loads(change.model_dump_json()),
        }
    )
    assert StateRecorder(store).handle(event).state is RunState.RUNNING
    assert isinstance(event.detail, FlowRunStateChanged)


class StillStarting:
    """ECS as it answers for a task stuck in PROVISIONING (moto's tasks start at once): the one
    boundary stubbed here, so the monitor's hard start limit can be seen."""

    kind = "ecs"
    reports_events = True

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def launch(self, run: Any, target: Any, *, attempt: int = 1, resume: bool = False) -> Any:
        raise NotImplementedError("this stub only answers the monitor")

    def status(self, infrastructure: Any) -> InfraStatus:
        return task_status(
            EcsTaskStateChange(
                taskArn=infrastructure["task_arn"], lastStatus="PROVISIONING", version=1
            )
        )

    def stop_launched(self, infrastructure: Any, reason: str) -> None:
        self.stopped.append(reason)

    def find_unrecorded(self, run: Any, attempt: int, targets: Any) -> None:
        return None

    def sweep_cluster(self, infrastructure: Any, cluster: Any) -> Swept:
        raise NotImplementedError("this stub only answers the monitor's status checks")


def test_a_task_still_starting_is_left_alone_until_the_start_limit_then_stopped(
    dispatcher: Dispatcher, store: Store, target: Target, clock: Clock, bus: str
) -> None:
    run = launched(dispatcher, store)
    ecs_stub = StillStarting()
    monitor = Monitor(
        store, {"ecs": ecs_stub}, Publisher(boto3.client("events"), bus), defaults=LIMITS
    )
    clock.advance(120)
    assert monitor.run_once().actions == []  # past the start timeout, within the limit
    clock.advance(200)
    (action,) = monitor.run_once().actions
    assert (action.action, action.state) == ("crashed", RunState.CRASHED)
    assert action.message == (
        "the ECS task did not start within 300 s (still PROVISIONING); it was stopped"
    )
    assert ecs_stub.stopped == ["flowrelay: did not start within 300 s"]
    assert run_of(store, run.run_id).state is RunState.CRASHED


# --- dead letters --------------------------------------------------------------------------------


def test_a_message_failing_its_last_delivery_leaves_the_reason_on_its_run(
    store: Store, bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from flowrelay.handlers import wiring
    from flowrelay.handlers.batches import noting_dead_letters

    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", store.table_name)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", bus)
    wiring.reset()
    run, _ = store.runs.create("run-dead-letter", "etl")
    body = json.dumps(
        {
            "version": "0", "id": "e-1", "detail-type": "Flow Run Cancel Requested",
            "source": "flowrelay", "time": "2026-11-23T12:00:00Z", "region": "us-east-1",
            "detail": {"flow_run_id": run.run_id},
        }
    )  # fmt: skip

    def broken(record: SQSRecord) -> dict[str, Any]:
        raise RuntimeError("the table is being restored")

    handle = noting_dead_letters("cancel", broken)
    for receives, noted in ((4, False), (5, True)):
        record = SQSRecord(
            {
                "messageId": f"m-{receives}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": str(receives)},
            }
        )
        with pytest.raises(RuntimeError):
            handle(record)
        message = str(run_of(store, run.run_id).message)
        assert ("dead-letter queue" in message) is noted
    assert message == (
        "a cancel message for this run failed 5 times and is now in the cancel dead-letter "
        "queue (flowrelay dlq ls): RuntimeError: the table is being restored"
    )
    assert run_of(store, run.run_id).state is RunState.PENDING
    wiring.reset()
