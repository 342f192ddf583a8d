"""The composition root of the Lambda functions: what each function's objects are made of.

The store, the launchers (one per target kind this deployment can start, from
``flowrelay.launchers.kinds``), the publisher and the policies are built here on first use and
kept for the life of the execution environment, as Lambda reuses it across invocations.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from flowrelay.aws.clients import Settings, client
from flowrelay.control.store import Store

if TYPE_CHECKING:
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.cancel import Canceller
    from flowrelay.control.dispatch import Dispatcher
    from flowrelay.control.monitor import Monitor
    from flowrelay.control.recorder import StateRecorder
    from flowrelay.control.slots import Slots
    from flowrelay.core.events import DetailReader
    from flowrelay.core.policies import RetryPolicy, Timeouts
    from flowrelay.core.runs import FlowRun
    from flowrelay.launchers.base import Launcher

logger = Logger(service="flowrelay")
#: CloudWatch metrics as embedded-metric-format log lines (namespace from the template).
metrics = Metrics(namespace="flowrelay")


def reset() -> None:
    """Forget the clients, settings and objects cached by earlier invocations in this process,
    as a fresh execution environment would (the dev stack and ``flowrelay invoke`` point the same
    process at other endpoints and tables)."""
    import boto3

    boto3.DEFAULT_SESSION = None
    for cached in (
        client,
        settings,
        store,
        launchers,
        event_readers,
        dispatcher,
        retry_policy,
        default_timeouts,
        queue_url,
    ):
        cached.cache_clear()


@cache
def settings() -> Settings:
    return Settings.from_environment()


@cache
def store() -> Store:
    return Store(client("dynamodb"), settings().table_name)


def publisher() -> Publisher:
    from flowrelay.aws.bus import Publisher

    return Publisher(client("events"), settings().bus_name)


@cache
def retry_policy() -> RetryPolicy:
    from flowrelay.core.policies import RetryPolicy

    return RetryPolicy.from_environment(os.environ)


@cache
def default_timeouts() -> Timeouts:
    from flowrelay.core.policies import Timeouts

    return Timeouts.from_environment(os.environ)


@cache
def launchers() -> dict[str, Launcher]:
    """The launcher of each target kind this deployment can start (imported here only: a
    function that never launches or stops anything never loads one)."""
    from flowrelay.launchers.kinds import build_launchers, launcher_kinds

    return build_launchers(
        client,
        table_name=settings().table_name,
        bus_name=settings().bus_name,
        kinds=launcher_kinds(os.environ),
    )


@cache
def event_readers() -> dict[tuple[str, str], DetailReader]:
    """The infrastructure events record_state takes (ECS task state changes), and their
    readers."""
    from flowrelay.launchers.kinds import event_readers as readers

    return dict(readers())


@cache
def dispatcher() -> Dispatcher:
    # Imported here: only the dispatch function launches, the others need not load it.
    from flowrelay.control.dispatch import Dispatcher

    return Dispatcher(
        store(), launchers(), retry=retry_policy(), timeouts=default_timeouts(), slots=slots()
    )


def canceller() -> Canceller:
    from flowrelay.control.cancel import Canceller

    return Canceller(store(), launchers(), slots=slots())


def recorder() -> StateRecorder:
    from flowrelay.control.recorder import StateRecorder

    return StateRecorder(
        store(), retry=retry_policy(), log_tail=log_tail, relaunch=relaunch, slots=slots()
    )


def slots() -> Slots:
    """Concurrency-limit slots; a run handed a freed slot is woken by a request on the bus."""
    from flowrelay.control.monitor import waking_by
    from flowrelay.control.slots import Slots

    return Slots(store(), wake=waking_by(publisher()))


def monitor() -> Monitor:
    from flowrelay.control.monitor import Monitor

    return Monitor(
        store(),
        launchers(),
        publisher(),
        defaults=default_timeouts(),
        retry=retry_policy(),
        log_tail=log_tail,
        slots=slots(),
    )


def log_tail(infrastructure: dict[str, Any]) -> str:
    """The end of a run's log as text for a Crashed message; empty when it cannot be read."""
    from flowrelay.launchers.kinds import crash_log_tail

    return crash_log_tail(infrastructure, launchers(), client("logs"))


def relaunch(run: FlowRun) -> None:
    """Ask dispatch for the next attempt of a run whose launch failed to start."""
    from flowrelay.control.monitor import request_for

    publisher().publish(request_for(run, "record_state"))


@cache
def queue_url(queue_arn: str) -> str:
    """The URL of the queue an SQS record came from (its ARN is in the record)."""
    account, name = queue_arn.split(":")[4:6]
    return str(
        client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    )
