"""What the UI says when AWS cannot be reached or a page's request is bad: one line, as the
CLI says it, on a page, in a live fragment and in the API (no dev stack: a client that cannot
connect is the one boundary stubbed)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from flowrelay.ui.app import StackAccess, create_app
from flowrelay.ui.server import served


@pytest.fixture(scope="module")
def unreachable() -> Iterator[str]:
    """The UI over a stack whose AWS endpoint answers nothing (a closed loopback port)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    make: Any = boto3.client  # boto3-stubs type each service separately

    def client(service: str) -> Any:
        return make(
            service,
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1),
        )

    access = StackAccess(
        table_name="t",
        bus_name="b",
        client=client,
        outputs=lambda: {},
        kubernetes=lambda: None,
    )
    with served(create_app(access)) as running:
        yield running.url


def test_aws_out_of_reach_is_one_line_everywhere(unreachable: str) -> None:
    page = httpx.get(f"{unreachable}/runs")
    assert page.status_code == 502
    assert "error:</strong> cannot reach AWS" in page.text
    assert "Traceback" not in page.text
    fragment = httpx.get(f"{unreachable}/runs/rows", headers={"HX-Request": "true"})
    assert fragment.status_code == 502
    assert fragment.text.startswith('<div class="error">error: cannot reach AWS')
    api = httpx.get(f"{unreachable}/api/runs")
    assert api.status_code == 502
    assert api.json()["error"].startswith("cannot reach AWS")


def test_a_page_without_the_stacks_outputs_says_how_to_name_it(unreachable: str) -> None:
    page = httpx.get(f"{unreachable}/dlq")
    assert page.status_code == 200
    assert "the stack has no DispatchDLQUrl" in page.text


def test_answers_only_to_the_names_of_this_machine(unreachable: str) -> None:
    assert httpx.get(f"{unreachable}/runs", headers={"host": "evil.example"}).status_code == 400
    with pytest.raises(ValueError, match="never to"):
        create_app(
            StackAccess("t", "b", client=lambda s: None, outputs=dict, kubernetes=lambda: None),
            allowed_hosts=("*",),
        )
