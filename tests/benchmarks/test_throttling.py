"""The throttling benchmark's middleware answers as AWS does: botocore, given its answers (by a
``before-send`` hook, no server, no network), retries what it retries for AWS, and flowrelay
reads what is left as it would read AWS's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from benchmarks.throttling import MARK, Throttler, VirtualClock, botocore_sleeps_in
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from flowrelay.aws.clients import RETRIES
from flowrelay.control.store.table import condition_failed, conflicted


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def passed_through(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
    return [b"{}"]


def client_behind(throttler: Throttler, service: str, marked: bool = True) -> Any:
    """A client of ``service`` whose requests ``throttler`` answers (or ``passed_through``)."""
    retries: Any = dict(RETRIES)
    config = Config(retries=retries, user_agent_extra=MARK if marked else None)
    make: Any = boto3.client
    client = make(
        service,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )

    def answer(request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        headers = {
            key: str(value, "utf-8") if isinstance(value, bytes) else value
            for key, value in request.headers.items()
        }
        environ = {
            "HTTP_X_AMZ_TARGET": headers.get("X-Amz-Target", ""),
            "HTTP_USER_AGENT": headers.get("User-Agent", ""),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        status: dict[str, Any] = {}

        def start_response(line: str, response_headers: list[tuple[str, str]]) -> None:
            status["code"], status["headers"] = int(line.split(maxsplit=1)[0]), response_headers

        payload = b"".join(throttler(environ, start_response))
        response_headers: Any = dict(status["headers"])
        return AWSResponse(request.url, status["code"], response_headers, _Raw(payload))

    client.meta.events.register("before-send", answer)
    return client


def test_a_throttled_run_task_is_retried_by_botocore_then_raised_as_ecs_raises_it() -> None:
    throttler = Throttler(passed_through)
    throttler.configure("ecs", 1.0, "t")
    clock = VirtualClock()
    with botocore_sleeps_in(clock), pytest.raises(ClientError) as raised:
        client_behind(throttler, "ecs").run_task(taskDefinition="family")
    error = raised.value.response["Error"]
    assert (error["Code"], error["Message"]) == ("ThrottlingException", "Rate exceeded")
    # flowrelay's max_attempts of 5 is botocore's count of retries: 6 attempts.
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 5
    assert clock.retries == 5
    assert 0 < clock.backoff <= 1 + 2 + 4 + 8 + 16
    assert throttler.answered == {"RunTask: ThrottlingException": 6}


def test_only_the_dispatchers_calls_of_the_series_are_throttled() -> None:
    throttler = Throttler(passed_through)
    throttler.configure("ecs", 1.0, "t")
    client_behind(throttler, "ecs", marked=False).run_task(taskDefinition="family")
    client_behind(throttler, "dynamodb").describe_limits()  # not this series' service
    throttler.configure("ecs", 0.0, "t")
    client_behind(throttler, "ecs").run_task(taskDefinition="family")
    assert not throttler.answered


def test_a_throttled_transaction_is_cancelled_as_dynamodb_cancels_it() -> None:
    throttler = Throttler(passed_through)
    throttler.configure("dynamodb", 1.0, "t")
    clock = VirtualClock()
    put = {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}}}}
    with botocore_sleeps_in(clock), pytest.raises(ClientError) as raised:
        client_behind(throttler, "dynamodb").transact_write_items(TransactItems=[put, put])
    response = raised.value.response
    assert response["Error"]["Code"] == "TransactionCanceledException"
    assert [reason["Code"] for reason in response["CancellationReasons"]] == [
        "ThrottlingError",
        "None",
    ]
    assert clock.retries == 0  # botocore does not retry a cancelled transaction
    # Not a lost race; but a moment's refusal, which flowrelay tries again in-process
    # (``retrying_conflicts``), as botocore does not.
    assert not condition_failed(raised.value)
    assert conflicted(raised.value)


def test_other_dynamodb_calls_get_the_two_throttling_errors_and_are_retried() -> None:
    throttler = Throttler(passed_through)
    throttler.configure("dynamodb", 1.0, "t")
    with botocore_sleeps_in(VirtualClock()), pytest.raises(ClientError) as raised:
        client_behind(throttler, "dynamodb").get_item(TableName="t", Key={"pk": {"S": "a"}})
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 5
    assert throttler.answered == {
        "GetItem: ThrottlingException": 3,
        "GetItem: ProvisionedThroughputExceededException": 3,
    }
