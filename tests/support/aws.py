"""Helpers for tests that talk to AWS (moto server over HTTP on loopback): pointing boto3 at it,
the run table from template.yaml, ECS tasks kept running, logs, a clock, figures for the summary.
The fixtures that use them are in tests/conftest.py."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.aws.clients import REAL_AWS_SETTINGS
from flowrelay.aws.logs import LogLocation
from flowrelay.control.store import Store
from flowrelay.core.storage import Module
from flowrelay.launchers.ecs.names import GROUP_PREFIX
from flowrelay.sdk.flow import registration_for

# Settings that could send boto3 somewhere other than the moto server, or to real credentials.
_AWS_SETTINGS_TO_CLEAR = (*REAL_AWS_SETTINGS, "AWS_ENDPOINT_URL_S3", "AWS_REGION")


def point_boto3_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, absent: str) -> None:
    """Every boto3 client made while ``monkeypatch`` holds talks to ``endpoint`` with fake
    credentials; no config file (``absent`` is a path that does not exist) is read."""
    for name in _AWS_SETTINGS_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", absent)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", absent)


ROOT = Path(__file__).resolve().parents[2]


def create_run_table(client: Any, name: str) -> None:
    """The DynamoDB table ``name``, created from template.yaml's ``Table`` resource (the one
    definition of it)."""
    from flowrelay.devstack.template import load_template, resource_properties

    properties = resource_properties(load_template(ROOT / "template.yaml"), "Table")
    client.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    ttl = properties["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )


# --- ECS in moto ----------------------------------------------------------------------------


def _moto_api(endpoint: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


@contextmanager
def ecs_tasks_kept_running(endpoint: str) -> Iterator[None]:
    """moto's ECS tasks stay RUNNING until stopped while the block runs.

    moto's default moves a task one state towards STOPPED on every DescribeTasks; the server is
    shared by the session, so its default is restored afterwards.
    """
    _moto_api(
        endpoint,
        "/moto-api/state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}},
    )
    try:
        yield
    finally:
        _moto_api(endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "ecs::task"})


def default_network() -> dict[str, Any]:
    """The default VPC's first subnet and default security group, as ECS target settings."""
    ec2 = boto3.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    groups = ec2.describe_security_groups(GroupNames=["default"])
    return {
        "subnets": [subnets["Subnets"][0]["SubnetId"]],
        "security_groups": [groups["SecurityGroups"][0]["GroupId"]],
    }


def tasks_of_run(ecs: Any, cluster: str, run_id: str) -> list[dict[str, Any]]:
    """Every task in moto that belongs to the run (running or stopped), with its tags."""
    arns = [
        arn
        for desired in ("RUNNING", "STOPPED")
        for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, desiredStatus=desired)
        for arn in page["taskArns"]
    ]
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ecs.describe_tasks(
            cluster=cluster, tasks=arns[start : start + 100], include=["TAGS"]
        )["tasks"]
    return [task for task in tasks if task.get("group") == f"{GROUP_PREFIX}{run_id}"]


def write_log(logs: Any, group: str, stream: str, messages: list[str]) -> LogLocation:
    """A stream holding ``messages``, one event each, a millisecond apart."""
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000) - len(messages)
    events = [
        {"timestamp": start + index, "message": message} for index, message in enumerate(messages)
    ]
    for first in range(0, len(events), 10_000):
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=events[first : first + 10_000]
        )
    return LogLocation(group=group, stream=stream)


class Clock:
    """The store's time, moved by the test (leases, backoffs and timeouts without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def register_etl(store: Store) -> Store:
    """``store``, with the example flow ``etl`` registered."""
    from flowrelay.sdk.examples.etl import flow

    store.flows.register(registration_for(flow, storage=Module("flowrelay.sdk.examples.etl:flow")))
    return store


#: Figures a test module measured (title, lines), shown at the end of every run, also `-q`.
FIGURES = pytest.StashKey[list[tuple[str, list[str]]]]()


def report_figures(config: pytest.Config, title: str, lines: list[str]) -> None:
    """Show ``lines`` under ``title`` in the summary at the end of the test run."""
    config.stash.setdefault(FIGURES, []).append((title, lines))


def violation_lines(violations: list[dict[str, Any]]) -> list[str]:
    """A fault-injection case that went wrong, and each of its deliveries, as summary lines."""
    lines = []
    for violation in violations:
        lines.append(f"  {violation['case']}: {'; '.join(violation['problems'])}")
        for number, delivery in enumerate(violation["deliveries"], 1):
            lines.append(f"      delivery {number}: {delivery}")
    return lines


def aligned(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells as text columns, each as wide as its widest cell (a figures table)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
