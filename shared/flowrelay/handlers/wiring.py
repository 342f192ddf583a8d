"""What each Lambda function does with its input; the handlers in functions/ only call these.

Objects that hold clients are built on first use and kept for the life of the execution
environment, as Lambda reuses it across invocations.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

# Imported before pydantic on purpose: powertools' batch types build four parser models (SQS,
# DynamoDB, Kinesis, Kafka; about 30 ms) when pydantic is already loaded, only for annotations
# flowrelay does not use. tests/unit/test_cold_start.py keeps them out of the handlers.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.aws.batch import process_sqs_batch
from flowrelay.aws.clients import Settings, client
from flowrelay.control.recorder import StateRecorder
from flowrelay.control.store import FlowRun, RunStore
from flowrelay.core.events import RUN_ID_PATTERN, EventError, ParsedEvent, parse_event
from flowrelay.core.lifecycle import WAITING_STATES, RunState, Source

if TYPE_CHECKING:
    from flowrelay.control.cancel import Canceller
    from flowrelay.control.dispatch import Dispatcher
    from flowrelay.control.monitor import Action, Monitor
    from flowrelay.core.retries import RetryPolicy
    from flowrelay.core.timeouts import Timeouts
    from flowrelay.launchers.ecs import EcsLauncher

logger = Logger(service="flowrelay")
#: CloudWatch metrics as embedded-metric-format log lines (namespace from the template).
metrics = Metrics(namespace="flowrelay")
#: SQS's longest DelaySeconds.
MAX_SQS_DELAY = 900
ACTIONS: tuple[Action, ...] = (
    "offered",
    "crashed",
    "relaunched",
    "stopped",
    "timed_out",
    "cancelled",
    "runner_silent",
)


def reset() -> None:
    """Forget the clients, settings and objects cached by earlier invocations in this process,
    as a fresh execution environment would (the dev stack and ``flowrelay invoke`` point the same
    process at other endpoints and tables)."""
    import boto3

    boto3.DEFAULT_SESSION = None
    for cached in (client, settings, store, dispatcher, retry_policy, default_timeouts, queue_url):
        cached.cache_clear()


@cache
def settings() -> Settings:
    return Settings.from_environment()


@cache
def store() -> RunStore:
    return RunStore(client("dynamodb"), settings().table_name)


@cache
def retry_policy() -> RetryPolicy:
    from flowrelay.core.retries import RetryPolicy

    return RetryPolicy.from_environment(os.environ)


@cache
def default_timeouts() -> Timeouts:
    from flowrelay.core.timeouts import Timeouts

    return Timeouts.from_environment(os.environ)


@cache
def dispatcher() -> Dispatcher:
    # Imported here: only the dispatch function launches, the others need not load it.
    from flowrelay.control.dispatch import Dispatcher

    return Dispatcher(store(), launchers(), retry=retry_policy(), timeouts=default_timeouts())


def canceller() -> Canceller:
    from flowrelay.control.cancel import Canceller

    return Canceller(store(), launchers())


def run_monitor() -> Monitor:
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.monitor import Monitor

    return Monitor(
        store(),
        launchers(),
        Publisher(client("events"), settings().bus_name),
        defaults=default_timeouts(),
        retry=retry_policy(),
        log_tail=log_tail,
    )


def log_tail(infrastructure: dict[str, Any]) -> str:
    """The end of a run's log as text for a Crashed message; empty when it cannot be read."""
    from flowrelay.aws.logs import crash_log_tail

    return crash_log_tail(client("logs"), infrastructure)


def relaunch(run: FlowRun) -> None:
    """Ask dispatch for the next attempt of a run whose task failed to start."""
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.monitor import request_for

    Publisher(client("events"), settings().bus_name).publish(request_for(run, "record_state"))


@cache
def queue_url(queue_arn: str) -> str:
    """The URL of the queue an SQS record came from (its ARN is in the record)."""
    account, name = queue_arn.split(":")[4:6]
    return str(
        client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    )


def launchers() -> dict[str, EcsLauncher]:
    """The launcher for each target kind this deployment can start."""
    from flowrelay.launchers.ecs import EcsLauncher

    ecs = EcsLauncher(client("ecs"), table_name=settings().table_name, bus_name=settings().bus_name)
    return {"ecs": ecs}


def parse_record(record: SQSRecord, detail_type: str | None = None) -> ParsedEvent:
    """The event in an SQS record, which must be of ``detail_type`` when one is given;
    ``EventError`` naming what is wrong otherwise."""
    event = parse_event(record.body)
    if detail_type is not None and event.envelope.detail_type != detail_type:
        raise EventError(
            f"this queue takes {detail_type!r} events, not {event.envelope.detail_type!r}"
        )
    return event


def dispatch_record(record: SQSRecord) -> dict[str, Any]:
    """Dispatch one "Flow Run Requested" message. A request that must wait (a failed attempt's
    backoff, a launch under way elsewhere) is queued again with that delay (SQS DelaySeconds)
    and this message is done."""
    from flowrelay.control.dispatch import RetryLater

    try:
        event = parse_record(record, "Flow Run Requested")
    except EventError as exc:
        run_id = fail_named_run(record.body, str(exc))
        if run_id is None:
            raise
        logger.warning(
            "Rejected message %s: %s (recorded on run %s)", record.message_id, exc, run_id
        )
        return {"rejected": str(exc), "flow_run_id": run_id}
    try:
        outcome = dispatcher().handle_request(event)
    except RetryLater as later:
        delay = max(1, min(MAX_SQS_DELAY, round(later.delay)))
        client("sqs").send_message(
            QueueUrl=queue_url(record.event_source_arn), MessageBody=record.body, DelaySeconds=delay
        )
        logger.info("Dispatch later", extra={"reason": later.reason, "delay_seconds": delay})
        return {"retry_in": delay, "reason": later.reason}
    logger.info("Dispatched", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


def record_state_record(record: SQSRecord) -> dict[str, Any]:
    """Apply one state event (runner, dispatcher, monitor or ECS) to its run."""
    recorder = StateRecorder(store(), retry=retry_policy(), log_tail=log_tail, relaunch=relaunch)
    outcome = recorder.handle(parse_record(record))
    logger.info("Recorded", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


def cancel_record(record: SQSRecord) -> dict[str, Any]:
    """Apply one "Flow Run Cancel Requested" message: stop the run's infrastructure."""
    from flowrelay.core.events import FlowRunCancelRequested

    event = parse_record(record, "Flow Run Cancel Requested")
    assert isinstance(event.detail, FlowRunCancelRequested)
    outcome = canceller().cancel(event.detail)
    logger.info("Cancel", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


#: The queues' maxReceiveCount (template.yaml): the delivery after which SQS dead-letters.
MAX_RECEIVES = 5


def noting_dead_letters(
    queue: str, handle: Callable[[SQSRecord], dict[str, Any]]
) -> Callable[[SQSRecord], dict[str, Any]]:
    """``handle``, with each failed record logged (its message id, delivery and reason); and
    when a record fails on its last delivery (SQS moves it to the queue's DLQ next), the reason
    written on its run, so the run shows why and where the message is."""

    def handle_noting(record: SQSRecord) -> dict[str, Any]:
        try:
            return handle(record)
        except Exception as exc:
            receives = int(record.attributes.approximate_receive_count or 1)
            # powertools logs a failed record only at DEBUG: say which message and why here.
            # Bad input (ValueError: EventError; LookupError: no such run) needs no traceback.
            bad_input = isinstance(exc, ValueError | LookupError)
            (logger.warning if bad_input else logger.exception)(
                "Message %s failed (delivery %d of %d): %s: %s",
                record.message_id,
                receives,
                MAX_RECEIVES,
                type(exc).__name__,
                exc,
            )
            if receives >= MAX_RECEIVES:
                note_dead_letter(record, queue, receives, exc)
            raise

    return handle_noting


def note_dead_letter(record: SQSRecord, queue: str, receives: int, exc: Exception) -> None:
    """Best effort: a failure here must not hide the original error."""
    from flowrelay.control.dead_letters import parse_body

    try:
        run_id = parse_body(record.body).run_id
        run = store().get_run(run_id) if run_id else None
        if run is None or run.state.is_final:
            return
        message = (
            f"a {queue} message for this run failed {receives} times and is now in the {queue} "
            f"dead-letter queue (flowrelay dlq ls): {type(exc).__name__}: {exc}"
        )
        store().amend(
            run,
            Source.MONITOR if queue == "state" else Source.DISPATCHER,
            message[:2000],
            {},
            {"dead_letter": {"queue": queue, "message_id": record.message_id}},
        )
    except Exception:
        logger.exception("Could not note the dead letter %s on its run", record.message_id)


def dispatch_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs_batch(
        event, context, noting_dead_letters("dispatch", dispatch_record), concurrent=True
    )


def record_state_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs_batch(event, context, noting_dead_letters("state", record_state_record))


def cancel_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs_batch(
        event, context, noting_dead_letters("cancel", cancel_record), concurrent=True
    )


def monitor(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled pass (``flowrelay.control.monitor``): every active run held to its limits."""
    report = run_monitor().run_once()
    counts: dict[str, int] = {action: report.count(action) for action in ACTIONS}
    for action, count in counts.items():
        # "RunnersSilent" is alarmed on (template.yaml): alive tasks whose runner cannot report.
        name = "RunnersSilent" if action == "runner_silent" else f"Runs{action.title()}"
        metrics.add_metric(name=name.replace("_", ""), unit=MetricUnit.Count, value=count)
    logger.info("Monitor pass", extra={"checked": report.checked, **counts})
    return report.model_dump(mode="json")


def fail_named_run(body: str, reason: str) -> str | None:
    """A malformed request that still names its run and flow is recorded on that run as Failed
    with the reason, so the person who sent it sees why; returns that run's id. None when it
    names no usable run id, or names a run already past waiting (a bad duplicate of a launched
    run's request must not fail that run): the message then fails, and ends in the DLQ."""
    import re

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
    run, created = store().create_run(run_id, flow)
    if not created and run.state not in WAITING_STATES:
        return None
    applied = store().transition(
        run.run_id, RunState.FAILED, Source.DISPATCHER, message=f"rejected request: {reason}"
    )
    return run.run_id if applied.applied else None
