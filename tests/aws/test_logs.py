"""Where a run's logs are and reading them back (flowrelay.aws.logs), against moto's CloudWatch Logs
over HTTP; the error paths against a loopback endpoint that answers as AWS does when it refuses.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from flowrelay.aws.logs import (
    LINE_CHARS,
    LogLocation,
    format_tail,
    log_location,
    read_all,
    tail,
)
from flowrelay.launchers.ecs import LaunchResult
from tests.support.aws import write_log

TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/flows/0123456789abcdef"


def launched(**changes: Any) -> dict[str, Any]:
    """A run's ``infrastructure`` as the dispatcher stores it."""
    fields: dict[str, Any] = {
        "task_arn": TASK_ARN,
        "cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/flows",
        "task_definition_arn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/fr-1:1",
        "attempt": 1,
        "log_group": "/ecs/flowrelay",
        "log_stream_prefix": "flowrelay",
        **changes,
    }
    return LaunchResult(**fields).model_dump(mode="json", exclude_none=True)


# --- where ----------------------------------------------------------------------------------


def test_location_of_an_ecs_run_is_awslogs_stream_name() -> None:
    infrastructure = launched()
    location = log_location(infrastructure)
    assert location == LogLocation(
        group="/ecs/flowrelay", stream="flowrelay/flow/0123456789abcdef", region="eu-west-1"
    )
    # The launcher's own rule and this one agree.
    assert location.stream == LaunchResult.model_validate(infrastructure).log_stream
    custom = log_location(launched(container="main", log_stream_prefix="etl"))
    assert custom is not None
    assert custom.stream == "etl/main/0123456789abcdef"


def test_location_takes_an_explicit_stream_and_region() -> None:
    location = log_location(
        {"kind": "other", "log_group": "g", "log_stream": "s/1", "log_region": "ap-south-1"}
    )
    assert location == LogLocation(group="g", stream="s/1", region="ap-south-1")
    # An explicit stream wins over the awslogs rule.
    explicit = log_location({**launched(), "log_stream": "mine"})
    assert explicit is not None
    assert (explicit.stream, explicit.region) == ("mine", "eu-west-1")


@pytest.mark.parametrize(
    "infrastructure",
    [
        {},  # not launched
        launched(log_group=None, log_stream_prefix=None),  # no awslogs
        launched(log_stream_prefix=None),  # awslogs without a prefix: stream unknowable
        {"log_group": "g", "log_stream_prefix": "p"},  # no task
        {"log_group": 7, "log_stream": ["s"]},  # not text
    ],
)
def test_no_location_without_a_log_config(infrastructure: dict[str, Any]) -> None:
    assert log_location(infrastructure) is None


def test_console_url_escapes_names_as_the_console_does() -> None:
    location = LogLocation(group="/ecs/flow relay", stream="p/flow/abc")
    assert location.console_url() is None  # no region known
    assert location.console_url("us-east-2") == (
        "https://us-east-2.console.aws.amazon.com/cloudwatch/home?region=us-east-2"
        "#logsV2:log-groups/log-group/$252Fecs$252Fflow$2520relay/log-events/p$252Fflow$252Fabc"
    )
    assert str(location.console_url("cn-north-1")).startswith(
        "https://cn-north-1.console.amazonaws.cn/"
    )


# --- reading --------------------------------------------------------------------------------


@pytest.fixture
def logs(aws_env: str) -> Any:
    return boto3.client("logs")


def test_tail_is_the_last_lines_oldest_first(logs: Any, group: str) -> None:
    location = write_log(logs, group, "p/flow/t1", [f"line {index}" for index in range(50)])
    assert tail(logs, location, lines=5) == [f"line {index}" for index in range(45, 50)]
    assert tail(logs, location) == [f"line {index}" for index in range(30, 50)]  # 20 by default
    assert tail(logs, location, lines=500) == [f"line {index}" for index in range(50)]
    assert tail(logs, location, lines=0) == []


def test_tail_splits_cleans_and_clips(logs: Any, group: str) -> None:
    messages = [
        "x" * 1000,
        "\x1b[31mred\x1b[0m  ",
        " ",  # an empty line, as the dev stack and awslogs send one
        "Traceback (most recent call last):\n  File 'flow.py'\nValueError: boom\n",
    ]
    location = write_log(logs, group, "p/flow/t2", messages)
    assert tail(logs, location, lines=3) == [
        "Traceback (most recent call last):",
        "  File 'flow.py'",
        "ValueError: boom",
    ]
    lines = tail(logs, location, lines=10)
    assert lines[0] == "x" * (LINE_CHARS - 1) + "…"
    assert lines[1] == "red"  # colour codes and trailing blanks gone, the blank event skipped
    assert len(lines) == 5

    # The total fits max_chars, counting newlines, and the newest lines are the ones kept.
    assert tail(logs, location, lines=10, max_chars=40) == [
        "  File 'flow.py'",
        "ValueError: boom",
    ]
    assert tail(logs, location, lines=10, max_chars=10) == ["ValueErro…"]


def test_tail_of_a_missing_group_or_stream_is_empty_and_quiet(
    logs: Any, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flowrelay.aws.logs")
    assert tail(logs, LogLocation(group=group, stream="p/flow/none")) == []
    assert tail(logs, LogLocation(group="/no/such/group", stream="s")) == []
    assert [record for record in caplog.records if record.name == "flowrelay.aws.logs"] == []


class Refusing(BaseHTTPRequestHandler):
    """Answers every request as CloudWatch Logs does when the caller may not read the group."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(
            {"__type": "AccessDeniedException", "message": "not authorized to GetLogEvents"}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def refusing_endpoint(aws_env: str) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_tail_warns_and_gives_nothing_when_aws_refuses(
    refusing_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    refusing = boto3.client("logs", endpoint_url=refusing_endpoint)
    location = LogLocation(group="/ecs/flowrelay", stream="p/flow/abc")
    with caplog.at_level(logging.WARNING, logger="flowrelay.aws.logs"):
        assert tail(refusing, location) == []
    (record,) = [record for record in caplog.records if record.name == "flowrelay.aws.logs"]
    assert record.levelno == logging.WARNING
    assert "AccessDeniedException" in record.getMessage()
    assert "p/flow/abc" in record.getMessage()


def test_tail_warns_and_gives_nothing_when_aws_is_unreachable(
    aws_env: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = boto3.client(
        "logs",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )
    with caplog.at_level(logging.WARNING, logger="flowrelay.aws.logs"):
        assert tail(unreachable, LogLocation(group="g", stream="s")) == []
    ours = [record for record in caplog.records if record.name == "flowrelay.aws.logs"]
    assert [record.levelno for record in ours] == [logging.WARNING]
    assert ours[0].getMessage().startswith("cannot read log stream s in group g: ")


def test_read_all_follows_pages_both_ways(logs: Any, group: str) -> None:
    messages = [f"event {index}" for index in range(23)]
    location = write_log(logs, group, "p/flow/r1", messages)
    forward = list(read_all(logs, location, page_size=5))
    assert [event.message for event in forward] == messages
    assert forward[0].timestamp < forward[-1].timestamp
    assert [event.message for event in read_all(logs, location)] == messages
    backward = read_all(logs, location, start_from_head=False, page_size=4)
    assert [event.message for event in backward] == messages[::-1]


def test_read_all_of_an_empty_stream_ends(logs: Any, group: str) -> None:
    location = write_log(logs, group, "p/flow/empty", [])
    assert list(read_all(logs, location)) == []
    assert list(read_all(logs, location, start_from_head=False)) == []


def test_read_all_of_a_missing_stream_raises(logs: Any, group: str) -> None:
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        next(read_all(logs, LogLocation(group=group, stream="nope")))


def test_format_tail_is_indented_lines_after_a_heading() -> None:
    assert format_tail([]) == ""
    message = "the task stopped: Essential container in task exited" + format_tail(["a", "b"])
    assert message.splitlines() == [
        "the task stopped: Essential container in task exited",
        "last log lines:",
        "  a",
        "  b",
    ]
