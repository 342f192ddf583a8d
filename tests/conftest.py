"""Fixtures for every test: a moto server over real HTTP on loopback (never real AWS), made
only when a test asks for it, and a guard that fails any test connecting anywhere but loopback.

``moto_server`` starts one server for the session; ``aws_env`` points every boto3 client of one
test at it (endpoint, fake credentials, region) and restores the environment afterwards, so tests
that do not ask for it see the environment unchanged. The helpers are in tests/support/aws.py.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from flowrelay.control.store import Store
from flowrelay.core.network import is_loopback_host
from tests.support.aws import (
    FIGURES,
    Clock,
    create_run_table,
    default_network,
    ecs_tasks_kept_running,
    point_boto3_at,
    register_etl,
)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 with an ephemeral port; yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.server import ThreadedMotoServer

    from flowrelay.devstack import moto_fixes

    # moto answering as AWS does where flowrelay's outcome depends on it (docs/devstack.md).
    moto_fixes.apply()
    MotoRequestHandler.protocol_version = "HTTP/1.1"  # keep-alive

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at the moto server for this test; returns the endpoint URL."""
    point_boto3_at(monkeypatch, moto_server, str(tmp_path / "no-aws-config"))
    return moto_server


@pytest.fixture
def run_table(aws_env: str) -> Iterator[str]:
    """A fresh run table in moto (``create_run_table``); yields its name and deletes it
    afterwards."""
    client = boto3.client("dynamodb")
    name = f"flowrelay-test-{uuid.uuid4().hex[:8]}"
    create_run_table(client, name)
    try:
        yield name
    finally:
        client.delete_table(TableName=name)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every integration test fails if anything in it connects anywhere but loopback."""
    outside: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not is_loopback_host(str(address[0])):
            outside.append(address)
            raise ConnectionRefusedError(f"test refused a connection to {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield outside
    assert outside == [], f"connections outside loopback: {outside}"


@pytest.fixture
def ecs(aws_env: str) -> Iterator[Any]:
    """An ECS client as the functions make it (standard retries), tasks kept RUNNING."""
    with ecs_tasks_kept_running(aws_env):
        yield boto3.client("ecs", config=Config(retries={"mode": "standard"}))


@pytest.fixture
def network(aws_env: str) -> dict[str, Any]:
    return default_network()


@pytest.fixture
def cluster(ecs: Any) -> str:
    name = f"flows-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture
def bus(aws_env: str) -> Iterator[str]:
    """An EventBridge bus of its own for the test."""
    events = boto3.client("events")
    name = f"flowrelay-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    yield name
    events.delete_event_bus(Name=name)


@pytest.fixture
def group(aws_env: str) -> Iterator[str]:
    """A CloudWatch Logs group of its own for the test."""
    logs = boto3.client("logs")
    name = f"/ecs/flowrelay-{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    yield name
    logs.delete_log_group(logGroupName=name)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def names(run_table: str, bus: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack named the way `flowrelay dev up` tells the user to: two exported names; no
    timeout defaults from the environment unless a test sets them; the CLI's watch loops poll
    quickly."""
    from flowrelay.cli import runs as cli_runs

    for name in ("FLOWRELAY_STACK", "FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", run_table)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", bus)
    monkeypatch.setattr(cli_runs, "POLL_SECONDS", 0.05)
    return {"table": run_table, "bus": bus}


@pytest.fixture
def store(run_table: str) -> Store:
    """The run table, with the example flow ``etl`` registered."""
    return register_etl(Store(boto3.client("dynamodb"), run_table))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for title, lines in config.stash.get(FIGURES, []):
        terminalreporter.write_sep("-", title)
        for line in lines:
            terminalreporter.write_line(line)
