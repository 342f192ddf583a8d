"""What each Lambda function does with its input; the handlers in functions/ only call these.

Objects that hold clients are built on first use and kept for the life of the execution
environment, as Lambda reuses it across invocations.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

# Imported before pydantic on purpose: powertools' batch types build four parser models (SQS,
# DynamoDB, Kinesis, Kafka; about 30 ms) when pydantic is already loaded, only for annotations
# flowrelay does not use. tests/unit/test_cold_start.py keeps them out of the handlers.
import aws_lambda_powertools.utilities.batch  # noqa: F401
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.aws import Settings, client
from flowrelay.batch import process_sqs_batch
from flowrelay.events import RUN_ID_PATTERN, EventError, ParsedEvent, parse_event
from flowrelay.record import StateRecorder
from flowrelay.run_states import RunState, Source
from flowrelay.store import RunStore

if TYPE_CHECKING:
    from flowrelay.dispatch import Dispatcher, Launcher

logger = Logger(service="flowrelay")


def reset() -> None:
    """Forget the clients, settings and objects cached by earlier invocations in this process,
    as a fresh execution environment would (the dev stack and ``flowrelay invoke`` point the same
    process at other endpoints and tables)."""
    import boto3

    boto3.DEFAULT_SESSION = None
    for cached in (client, settings, store, dispatcher):
        cached.cache_clear()


@cache
def settings() -> Settings:
    return Settings.from_environment()


@cache
def store() -> RunStore:
    return RunStore(client("dynamodb"), settings().table_name)


@cache
def dispatcher() -> Dispatcher:
    # Imported here: only the dispatch function launches, the others need not load it.
    from flowrelay.dispatch import Dispatcher

    return Dispatcher(store(), launchers())


def launchers() -> dict[str, Launcher]:
    """The launcher for each target kind this deployment can start."""
    from flowrelay.launchers.ecs import EcsLauncher

    ecs = EcsLauncher(client("ecs"), table_name=settings().table_name, bus_name=settings().bus_name)
    return {"ecs": ecs}


def parse_record(record: SQSRecord) -> ParsedEvent:
    """The event in an SQS record; logs the reason and re-raises when it is unusable."""
    try:
        return parse_event(record.body)
    except EventError as exc:
        logger.error("Rejected message %s: %s", record.message_id, exc)
        raise


def dispatch_record(record: SQSRecord) -> dict[str, Any]:
    """Dispatch one "Flow Run Requested" message."""
    try:
        event = parse_record(record)
    except EventError as exc:
        if fail_named_run(record.body, str(exc)):
            return {"rejected": str(exc)}
        raise
    outcome = dispatcher().handle_request(
        event, delivery=int(record.attributes.approximate_receive_count)
    )
    logger.info("Dispatched", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


def record_state_record(record: SQSRecord) -> dict[str, Any]:
    """Apply one state event (runner, dispatcher, monitor or ECS) to its run."""
    outcome = StateRecorder(store()).handle(parse_record(record))
    logger.info("Recorded", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


def dispatch_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs_batch(event, context, dispatch_record, concurrent=True)


def record_state_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_sqs_batch(event, context, record_state_record)


def monitor(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled pass: ask dispatch again for waiting runs that a target now fits."""
    from flowrelay.dispatch import requests_for_waiting_runs
    from flowrelay.publish import Publisher

    requests = requests_for_waiting_runs(store())
    Publisher(client("events"), settings().bus_name).publish(*requests)
    offered = [request.flow_run_id for request in requests]
    logger.info("Monitor pass", extra={"pending_offered": offered})
    return {"pending_offered": offered}


def fail_named_run(body: str, reason: str) -> bool:
    """A malformed request that still names its run and flow is recorded on that run as Failed
    with the reason, so the person who sent it sees why. False when it names no run."""
    import re

    try:
        detail = json.loads(body).get("detail", {})
        run_id, flow = detail.get("flow_run_id"), detail.get("flow")
    except (ValueError, AttributeError):
        return False
    if not (
        isinstance(run_id, str)
        and re.match(RUN_ID_PATTERN, run_id)
        and isinstance(flow, str)
        and flow
    ):
        return False
    run, _ = store().create_run(run_id, flow)
    store().transition(
        run.run_id, RunState.FAILED, Source.DISPATCHER, message=f"rejected request: {reason}"
    )
    return True
