"""The web UI over HTTP against the dev stack: every page and API endpoint, filters, the live
fragments, cancel, retry and redrive with their confirmations, a run with 1,000 history items.

Everything is real: the dev stack (moto server, the functions fed by their queues, runs as local
processes), the UI served by uvicorn on a loopback port, and httpx speaking HTTP to it.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.store import Store
from flowrelay.control.store.runs import run_item
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.core.events import FlowRunRequested
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.core.storage import Module
from flowrelay.devstack import DevStack
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from flowrelay.ui.app import StackAccess, create_app
from flowrelay.ui.browser import INSTALL_CHROMIUM, find_chromium, rendered_dom
from flowrelay.ui.server import served
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation"),
]

FLOWS = (
    "flowrelay.sdk.examples.hello:flow",
    "flowrelay.sdk.examples.failing:flow",
    "tests.support.flows:flow",
    "tests.support.flows:ticker",
)


class UI:
    """The dev stack, and the UI served over it."""

    def __init__(self, dev: DevStack, http: httpx.Client) -> None:
        self.dev = dev
        self.http = http
        client = clients_of(dev)
        self.store = Store(client("dynamodb"), dev.outputs["TableName"])
        self.publisher = Publisher(client("events"), dev.outputs["BusName"])
        self.sqs = client("sqs")

    def request(self, flow: str, **parameters: Any) -> str:
        run_id = str(uuid.uuid4())
        self.publisher.publish(
            FlowRunRequested(flow=flow, flow_run_id=run_id, requested_by="t", parameters=parameters)
        )
        return run_id

    def wait(self, run_id: str, *states: RunState, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.runs.get(run_id)
            if run is not None and run.state in states:
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} not in {states}: {self.store.runs.get(run_id)}")

    def token(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, page.text
        found = re.search(r'name="token" value="([^"]+)"', page.text)
        assert found, f"no form token on {path}"
        return found.group(1)


@pytest.fixture(scope="module")
def ui() -> Iterator[UI]:
    lines: list[str] = []
    dev = DevStack(ROOT / "template.yaml", log=lines.append, poll_seconds=0.1)
    dev.start()
    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", str(ROOT))  # the runner processes import tests.support
    try:
        client = clients_of(dev)
        store = Store(client("dynamodb"), dev.outputs["TableName"])
        for path in FLOWS:
            flow = load_flow(Module(path))
            store.flows.register(registration_for(flow, storage=Module(path)))
        store.targets.put(Target(name="fargate", kind="ecs", settings=dev.ecs_target_settings()))

        def no_kubernetes() -> Any:
            raise AssertionError("no run here is on Kubernetes")

        access = StackAccess(
            table_name=dev.outputs["TableName"],
            bus_name=dev.outputs["BusName"],
            client=client,
            outputs=lambda: dev.outputs,
            kubernetes=no_kubernetes,
            requested_by="flowrelay-ui:test",
        )
        with served(create_app(access)) as running, httpx.Client(base_url=running.url) as http:
            yield UI(dev, http)
    finally:
        patch.undo()
        dev.stop()


@pytest.fixture(scope="module")
def finished(ui: UI) -> dict[str, str]:
    """A run that succeeded and one that failed, both over."""
    done = {"success": ui.request("hello"), "failed": ui.request("failing")}
    for run_id in done.values():
        ui.wait(run_id, RunState.SUCCESS, RunState.FAILED)
    return done


def test_the_runs_page_lists_runs_with_their_timelines_and_counts(
    ui: UI, finished: dict[str, str]
) -> None:
    page = ui.http.get("/runs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY"  # no Cancel button under a decoy
    for run_id in finished.values():
        assert f'href="/runs/{run_id}"' in page.text
    # Each row has a sparkline of its states, and the page counts them.
    assert 'class="spark"' in page.text
    assert re.search(r'class="badge state-success"[^>]*>Success \d+<', page.text)
    assert re.search(r'class="badge state-failed"[^>]*>Failed \d+<', page.text)
    # It polls its rows, which come as a fragment.
    assert 'hx-get="/runs/rows?' in page.text
    rows = ui.http.get("/runs/rows")
    assert rows.status_code == 200
    assert "<html" not in rows.text
    assert finished["success"] in rows.text


def test_filters_narrow_the_runs(ui: UI, finished: dict[str, str]) -> None:
    failed = ui.http.get("/runs", params={"state": "failed"}).text
    assert finished["failed"] in failed
    assert finished["success"] not in failed
    of_flow = ui.http.get("/runs", params={"flow": "hello"}).text
    assert finished["success"] in of_flow
    assert finished["failed"] not in of_flow
    on_target = ui.http.get("/runs", params={"target": "fargate"}).text
    assert finished["success"] in on_target
    assert finished["success"] not in ui.http.get("/runs", params={"target": "elsewhere"}).text
    assert finished["success"] not in ui.http.get("/runs", params={"label": "no-such-label"}).text
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert "no runs match" in ui.http.get("/runs", params={"since": tomorrow}).text
    api = ui.http.get("/api/runs", params={"state": "Success", "flow": "hello"}).json()
    assert [run["run_id"] for run in api["runs"]] == [finished["success"]]


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"state": "Sleeping"}, "state: 'Sleeping' is not a run state"),
        ({"since": "yesterday"}, "since: 'yesterday' is not a time"),
        ({"limit": "many"}, "limit: 'many' is not a number"),
        ({"limit": "0"}, "limit: 0 is not from 1 to 500"),
        ({"limit": "100000"}, "limit: 100000 is not from 1 to 500"),
        ({"active": "1", "state": "Success"}, "Success is final"),
        ({"before": "page-2"}, "before: 'page-2' is not the position a page of runs ended at"),
    ],
)
def test_bad_filters_get_one_clear_line(ui: UI, params: dict[str, str], says: str) -> None:
    page = ui.http.get("/runs", params=params)
    assert page.status_code == 400
    assert says in html.unescape(page.text)
    api = ui.http.get("/api/runs", params=params)
    assert api.status_code == 400
    assert says in api.json()["error"]


def test_the_run_page_shows_its_timeline_history_infrastructure_and_log(
    ui: UI, finished: dict[str, str]
) -> None:
    run_id = finished["success"]
    page = ui.http.get(f"/runs/{run_id}")
    assert page.status_code == 200
    gantt = page.text[page.text.index('class="gantt"') :]
    segments = re.findall(r'class="seg state-(\w+)', gantt)
    assert segments == ["pending", "submitted", "running", "success"]
    assert "task arn" in page.text  # the infrastructure it ran on
    assert "hx-get" in page.text
    assert f"/runs/{run_id}/log" in page.text
    # A finished run offers no cancel; a success no retry.
    assert "Cancel run" not in page.text
    assert "Retry</button>" not in page.text
    log = ui.http.get(f"/runs/{run_id}/log")
    assert log.status_code == 286  # final: htmx stops following
    assert "line" in log.text
    live = ui.http.get(f"/runs/{run_id}/live")
    assert live.status_code == 286
    api = ui.http.get(f"/api/runs/{run_id}").json()
    assert api["run"]["state"] == "Success"
    assert [segment["state"] for segment in api["timeline"]] == [
        "Pending",
        "Submitted",
        "Running",
        "Success",
    ]
    api_log = ui.http.get(f"/api/runs/{run_id}/log", params={"last": 5}).json()
    assert api_log["run_id"] == run_id
    assert 0 < len(api_log["events"]) <= 5


def test_a_failed_runs_page_shows_its_traceback_and_retries_it(
    ui: UI, finished: dict[str, str]
) -> None:
    run_id = finished["failed"]
    page = ui.http.get(f"/runs/{run_id}")
    assert "Traceback" in page.text
    assert "Retry</button>" in page.text
    assert "confirm(" in page.text  # asks before it restarts
    token = ui.token(f"/runs/{run_id}")
    retried = ui.http.post(f"/runs/{run_id}/retry", data={"token": token})
    assert retried.status_code == 303
    new_id = retried.headers["location"].split("/runs/")[1].split("?")[0]
    # Where the browser goes next: the new run's page, which waits for dispatch to create it.
    landing = ui.http.get(retried.headers["location"])
    assert landing.status_code == 200
    assert new_id in landing.text
    restart = ui.wait(new_id, RunState.FAILED, RunState.SUCCESS)
    assert restart.restart_of == run_id
    shown = ui.http.get(retried.headers["location"])
    assert 'class="gantt"' in shown.text
    assert "restarted as this run" in shown.text
    # The original no longer offers a retry: its restart is the run to retry.
    assert "Retry</button>" not in ui.http.get(f"/runs/{run_id}").text
    # Again is refused, naming the restart (the CLI's words), and nothing new is asked for.
    again = ui.http.post(f"/runs/{run_id}/retry", data={"token": token})
    assert again.status_code == 409
    assert f"already restarted as {new_id}" in html.unescape(again.text)
    api_again = ui.http.post(f"/api/runs/{run_id}/retry", json={})
    assert api_again.status_code == 409
    assert new_id in api_again.json()["error"]


def test_cancel_from_the_ui_stops_the_run(ui: UI) -> None:
    run_id = ui.request("sleepy")
    ui.wait(run_id, RunState.RUNNING)
    page = ui.http.get(f"/runs/{run_id}")
    assert "Cancel run" in page.text
    assert f'hx-get="/runs/{run_id}/live"' in page.text  # live while it runs
    assert ui.http.get(f"/runs/{run_id}/live").status_code == 200
    # Without this server's token (a page of another origin), nothing happens.
    forged = ui.http.post(f"/runs/{run_id}/cancel", data={"token": "guess"})
    assert forged.status_code == 409
    assert ui.store.runs.get(run_id).state is RunState.RUNNING  # type: ignore[union-attr]
    token = ui.token(f"/runs/{run_id}")
    cancelled = ui.http.post(
        f"/runs/{run_id}/cancel", data={"token": token, "reason": "from the UI test"}
    )
    assert cancelled.status_code == 303
    assert "cancel+requested" in cancelled.headers["location"]
    run = ui.wait(run_id, RunState.CANCELLED)
    history = ui.store.runs.history(run_id)
    assert any("from the UI test" in (entry.message or "") for entry in history)
    assert run.state is RunState.CANCELLED
    # Cancelling what has ended is a clear no-op, as in the CLI.
    api = ui.http.post(f"/api/runs/{run_id}/cancel", json={"reason": "again"})
    assert api.status_code == 200
    assert api.json()["cancel_requested"] is False


def test_the_api_takes_changes_only_as_json(ui: UI, finished: dict[str, str]) -> None:
    # A form post (what a page of another origin can send without asking) is refused.
    refused = ui.http.post(f"/api/runs/{finished['success']}/cancel", data={"reason": "x"})
    assert refused.status_code == 409
    assert "Content-Type: application/json" in refused.json()["error"]
    assert ui.http.post("/api/runs/nope/cancel", json={}).status_code == 404
    assert ui.http.post("/api/runs/nope/cancel", json={"reason": 5}).status_code in (404, 409)


def test_a_request_naming_another_host_is_refused(ui: UI) -> None:
    """A DNS-rebinding page reaches the port under its own host name."""
    refused = ui.http.get("/runs", headers={"host": "evil.example"})
    assert refused.status_code == 400


def test_unknown_runs_and_flows_are_404_with_one_line(ui: UI) -> None:
    for path in ("/runs/no-such-run", "/flows/no-such-flow", "/api/runs/no-such-run"):
        page = ui.http.get(path)
        assert page.status_code == 404, path
        assert "no-such" in page.text


def test_flows_page_shows_versions_schedules_and_success_rates(
    ui: UI, finished: dict[str, str]
) -> None:
    page = ui.http.get("/flows")
    assert page.status_code == 200
    for name in ("hello", "failing", "sleepy", "ticker"):
        assert f'href="/flows/{name}"' in page.text
    flows = {flow["name"]: flow for flow in ui.http.get("/api/flows").json()["flows"]}
    assert flows["hello"]["recent"]["success_rate"] == 1.0
    assert flows["failing"]["recent"]["success_rate"] == 0.0
    detail = ui.http.get("/flows/hello")
    assert detail.status_code == 200
    assert "Versions" in detail.text
    assert "v1" in detail.text
    assert finished["success"] in detail.text
    api = ui.http.get("/api/flows/hello").json()
    assert api["name"] == "hello"
    assert [version["version"] for version in api["versions"]] == [1]


def test_targets_page(ui: UI) -> None:
    page = ui.http.get("/targets")
    assert page.status_code == 200
    assert "fargate" in page.text
    assert "ecs" in page.text
    assert [target["name"] for target in ui.http.get("/api/targets").json()] == ["fargate"]


def test_limits_page_shows_who_holds_and_who_waits(ui: UI) -> None:
    ui.store.limits.put(
        ConcurrencyLimit(name="one-ticker", kind="flow", value="ticker", max_runs=1)
    )
    try:
        first = ui.request("ticker", times=60)
        ui.wait(first, RunState.RUNNING)
        second = ui.request("ticker", times=1)
        ui.wait(second, RunState.QUEUED)
        page = ui.http.get("/limits")
        assert page.status_code == 200
        table = page.text[page.text.index('id="limits-table"') :]
        assert "one-ticker" in table
        assert f'href="/runs/{first}"' in table
        assert f'1. <a href="/runs/{second}"' in table
        (limit,) = list(ui.http.get("/api/limits").json())
        assert limit["holders"] == [first]
        assert [waiter["run_id"] for waiter in limit["waiting"]] == [second]
        run_page = ui.http.get(f"/runs/{second}").text
        assert "waiting, 1 in line" in run_page
    finally:
        for run_id in (first, second):
            ui.http.post(f"/api/runs/{run_id}/cancel", json={"reason": "test over"})
        ui.wait(first, RunState.CANCELLED)
        ui.wait(second, RunState.CANCELLED)
        ui.store.limits.remove("one-ticker")


def test_dead_letters_are_listed_and_redriven(ui: UI) -> None:
    name = ui.dev.outputs["DispatchDLQUrl"].rsplit("/", 1)[1]
    dlq_url = ui.sqs.get_queue_url(QueueName=name)["QueueUrl"]
    sent = ui.sqs.send_message(QueueUrl=dlq_url, MessageBody="not an event at all")
    page = ui.http.get("/dlq")
    assert page.status_code == 200
    assert sent["MessageId"][:13] in page.text
    assert "(not an event)" in page.text
    letters = ui.http.get("/api/dlq").json()
    assert [letter["message_id"] for letter in letters] == [sent["MessageId"]]
    token = ui.token("/dlq")
    assert ui.http.post("/dlq/redrive", data={"token": token}).status_code == 409  # none chosen
    both = ui.http.post("/api/dlq/redrive", json={"message_ids": ["x"], "all": True})
    assert both.status_code == 409
    assert "not both" in both.json()["error"]
    moved = ui.http.post("/dlq/redrive", data={"token": token, "message_id": sent["MessageId"]})
    assert moved.status_code == 303
    assert "1+moved" in moved.headers["location"]
    # Sent back, it failed again (it is still not an event): a new dead letter, with why.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        letters = ui.http.get("/api/dlq").json()
        if letters:
            break
        time.sleep(0.2)
    (again,) = letters
    assert again["message_id"] != sent["MessageId"]
    assert "not JSON" in again["why"]
    assert "not JSON" in html.unescape(ui.http.get("/dlq").text)
    # The API's redrive, as `dlq redrive --json` answers.
    answer = ui.http.post("/api/dlq/redrive", json={"message_ids": [again["message_id"]]})
    assert answer.status_code == 200
    (result,) = answer.json()
    assert result["message_id"] == again["message_id"]
    assert result["status"] == "moved"
    missing = ui.http.post("/api/dlq/redrive", json={"message_ids": ["no-such-message"]})
    assert [result["status"] for result in missing.json()] == ["not_found"]


def test_a_run_with_1000_history_items_is_shown_whole(ui: UI, finished: dict[str, str]) -> None:
    run_id = ui.request("hello")
    run = ui.wait(run_id, RunState.SUCCESS)
    start = datetime.now(UTC)

    def note(number: int) -> None:
        ui.store.runs.note(
            run,
            Source.INFRASTRUCTURE,
            f"note number {number}",
            at=start + timedelta(milliseconds=number),
            event_id=f"bulk-{number}",
        )

    existing = len(ui.store.runs.history(run_id))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(note, range(1000 - existing)))
    page = ui.http.get(f"/runs/{run_id}")
    assert page.status_code == 200
    history = page.text[page.text.index('class="history"') :]
    assert history.count("<tr") == 1 + 1000  # the header, then every item
    assert 'History <span class="dim">(1000)</span>' in page.text
    api = ui.http.get(f"/api/runs/{run_id}").json()
    assert len(api["history"]) == 1000


def test_a_real_browser_runs_the_pages_scripts(ui: UI, finished: dict[str, str]) -> None:
    """Headless Chromium (when this machine has it) loads a run's page: htmx fetches its log
    into the page, which the server's HTML alone does not hold."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(INSTALL_CHROMIUM)
    run_id = finished["success"]
    served_html = ui.http.get(f"/runs/{run_id}").text
    assert "loading the log" in served_html
    dom = rendered_dom(chromium, f"{str(ui.http.base_url).rstrip('/')}/runs/{run_id}")
    assert "loading the log" not in dom
    log = ui.http.get(f"/runs/{run_id}/log").text
    first_line = re.search(r'<pre class="log">([^\n]+)', log)
    assert first_line is not None
    assert html.unescape(first_line.group(1)) in html.unescape(dom)


def test_a_flow_with_10000_runs_comes_in_pages(ui: UI) -> None:
    """Last in this module: the table holds 10,000 more runs afterwards."""
    hello = Module("flowrelay.sdk.examples.hello:flow")
    registration = registration_for(load_flow(hello), storage=hello)
    ui.store.flows.register(registration.model_copy(update={"name": "big"}))
    start = datetime.now(UTC) - timedelta(hours=5)
    runs = [
        FlowRun(
            run_id=f"big-{number:05d}",
            flow_name="big",
            flow_version=1,
            state=RunState.SUCCESS if number % 7 else RunState.FAILED,
            created_at=start + timedelta(seconds=number),
            updated_at=start + timedelta(seconds=number + 3),
            state_entered_at=start + timedelta(seconds=number + 3),
        )
        for number in range(10_000)
    ]
    items = [run_item(run) for run in runs]
    client = ui.store.table.client

    def write(first: int) -> None:
        pending: Any = {
            ui.store.table.table_name: [
                {"PutRequest": {"Item": item}} for item in items[first : first + 25]
            ]
        }
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(0, len(items), 25)))

    page = ui.http.get("/flows/big")
    assert page.status_code == 200
    assert page.text.count('data-run="') == 50
    assert re.findall(r'data-run="([^"]+)"', page.text) == [run.run_id for run in runs[::-1][:50]]
    older = re.search(r'href="\?([^"]*)" rel="next"', page.text)
    assert older is not None
    second = ui.http.get(f"/flows/big?{html.unescape(older.group(1))}")
    assert re.findall(r'data-run="([^"]+)"', second.text) == [
        run.run_id for run in runs[::-1][50:100]
    ]
    # Every run, once each, newest first, through the API's pages.
    seen: list[str] = []
    before = None
    while True:
        params = {"flow": "big", "limit": "500", **({"before": before} if before else {})}
        answer = ui.http.get("/api/runs", params=params).json()
        seen += [run["run_id"] for run in answer["runs"]]
        before = answer["next"]
        if before is None:
            break
    assert seen == [run.run_id for run in runs[::-1]]
    failed = ui.http.get("/api/runs", params={"flow": "big", "state": "Failed", "limit": "5"})
    assert [run["run_id"] for run in failed.json()["runs"]] == [
        run.run_id for run in runs[::-1] if run.state is RunState.FAILED
    ][:5]
