"""The web UI's page times on the dev stack (``make bench``'s ``ui`` section; ``--only ui``
runs it alone, in about a minute).

The dev stack runs in this process (moto server on loopback, as ``flowrelay dev up`` starts
it); the UI is served by uvicorn on a loopback port and asked over HTTP, as a browser would.
Runs are written straight into the stack's table (``BatchWriteItem`` of the items the store
writes, each with a history of four transitions), as the functions would have left them:

- flow ``big``: 10,000 runs, the acceptance case ("a page of a flow with 10,000 runs loads in
  under a second");
- flow ``small``: 50 runs, one page of them, the baseline measured in the same run (the ratio
  says whether a page's time depends on how many runs the flow has: it must not, a page reads
  50 runs whatever the flow holds);
- one run with 1,000 history items (its page shows them all).

Each page is asked ``REPEATS`` times after one warm-up; the median is reported.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.report import format_seconds

BIG = 10_000
SMALL = 50
HISTORY = 1_000
REPEATS = 7
#: The acceptance budget of a flow page.
BUDGET_SECONDS = 1.0


def _seed(client: Any, table: str, flow: str, count: int, start: datetime) -> list[str]:
    """``count`` finished runs of ``flow``, a second apart, each with its four transitions."""
    from flowrelay.control.store.runs import run_item
    from flowrelay.core.lifecycle import RunState, Source
    from flowrelay.core.runs import FlowRun, HistoryEntry

    items: list[dict[str, Any]] = []
    run_ids = []
    for number in range(count):
        created = start + timedelta(seconds=number)
        states = [RunState.PENDING, RunState.SUBMITTED, RunState.RUNNING]
        final = RunState.SUCCESS if number % 10 else RunState.FAILED
        run = FlowRun(
            run_id=str(uuid.uuid4()),
            flow_name=flow,
            flow_version=1,
            state=final,
            version=4,
            created_at=created,
            updated_at=created + timedelta(seconds=30),
            state_entered_at=created + timedelta(seconds=30),
            target="fargate",
            message="seeded",
        )
        run_ids.append(run.run_id)
        items.append(run_item(run))
        for version, (state, offset) in enumerate(
            zip([*states, final], (0, 1, 5, 30), strict=True), start=1
        ):
            entry = HistoryEntry(
                version=version,
                state=state,
                previous=None if version == 1 else states[version - 2],
                source=Source.DISPATCHER,
                at=created + timedelta(seconds=offset),
            )
            items.append(
                {
                    "pk": {"S": f"RUN#{run.run_id}"},
                    "sk": {"S": f"HIST#{version:08d}"},
                    "entry": {"S": entry.model_dump_json()},
                }
            )
    batches = [items[start : start + 25] for start in range(0, len(items), 25)]

    def write(batch: list[dict[str, Any]]) -> None:
        pending: Any = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, batches))
    return run_ids


def _timed(get: Callable[[str], Any], path: str) -> float:
    get(path)  # warm-up
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = get(path)
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {answer.status_code}")
    return statistics.median(times)


def measure() -> dict[str, float]:
    import httpx

    from flowrelay.control.store import Store
    from flowrelay.core.lifecycle import Source
    from flowrelay.core.storage import Module
    from flowrelay.devstack import DevStack
    from flowrelay.sdk.flow import registration_for
    from flowrelay.sdk.storage import load_flow
    from flowrelay.ui.app import StackAccess, create_app
    from flowrelay.ui.server import served

    with DevStack(log=lambda line: None) as stack:
        client = stack.clients()
        table = stack.outputs["TableName"]
        dynamodb = client("dynamodb")
        start = datetime.now(UTC) - timedelta(hours=4)
        _seed(dynamodb, table, "big", BIG, start)
        _seed(dynamodb, table, "small", SMALL, start)
        (long_run,) = _seed(dynamodb, table, "long", 1, start)
        store = Store(dynamodb, table)
        hello = Module("flowrelay.sdk.examples.hello:flow")
        registration = registration_for(load_flow(hello), storage=hello)
        for name in ("big", "small", "long"):
            store.flows.register(registration.model_copy(update={"name": name}))
        run = store.runs.get(long_run)
        assert run is not None

        def note(number: int) -> None:
            store.runs.note(
                run,
                Source.INFRASTRUCTURE,
                f"note {number}",
                at=start + timedelta(milliseconds=number),
                event_id=f"n-{number}",
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(note, range(HISTORY - 4)))
        access = StackAccess(
            table_name=table,
            bus_name=stack.outputs["BusName"],
            client=client,
            outputs=lambda: stack.outputs,
            kubernetes=lambda: None,
        )
        with served(create_app(access)) as running, httpx.Client(base_url=running.url) as http:
            page = http.get("/flows/big")
            if page.text.count('data-run="') != 50 or 'rel="next"' not in page.text:
                raise RuntimeError(
                    f"the page of flow big (HTTP {page.status_code}) does not show 50 runs and "
                    "a next page"
                )
            return {
                "small": _timed(http.get, "/api/runs?flow=small"),
                "big_api": _timed(http.get, "/api/runs?flow=big"),
                "big": _timed(http.get, "/runs?flow=big"),
                "big_flow": _timed(http.get, "/flows/big"),
                "small_flow": _timed(http.get, "/flows/small"),
                "history": _timed(http.get, f"/runs/{long_run}"),
            }


def report() -> str:
    """Measure; the section of BENCHMARKS.md."""
    figures = measure()
    ratio = figures["big_flow"] / figures["small_flow"]
    budget = f"< {BUDGET_SECONDS * 1000:.0f} ms"

    def verdict(ok: bool) -> str:
        return "pass" if ok else "**FAIL**"

    rows = [
        (
            "page of flow `big` (10,000 runs): `/flows/big`",
            format_seconds(figures["big_flow"]),
            budget,
            verdict(figures["big_flow"] < BUDGET_SECONDS),
        ),
        (
            "baseline: the page of flow `small` (50 runs, one page): `/flows/small`",
            format_seconds(figures["small_flow"]),
            "",
            "info",
        ),
        (
            "ratio `big` / `small`",
            f"{ratio:.2f}",
            "< 2 (a page reads 50 runs, whatever the flow holds)",
            verdict(ratio < 2),
        ),
        (
            "runs of flow `big`: `/runs?flow=big`",
            format_seconds(figures["big"]),
            budget,
            verdict(figures["big"] < BUDGET_SECONDS),
        ),
        ("as JSON: `/api/runs?flow=big`", format_seconds(figures["big_api"]), "", "info"),
        (
            "as JSON, flow `small`: `/api/runs?flow=small`",
            format_seconds(figures["small"]),
            "",
            "info",
        ),
        (
            "a run with 1,000 history items: `/runs/<id>`",
            format_seconds(figures["history"]),
            budget,
            verdict(figures["history"] < BUDGET_SECONDS),
        ),
    ]
    lines = [
        "## The web UI on the dev stack",
        "",
        f"Median of {REPEATS} requests after a warm-up, over HTTP to the UI served by uvicorn on "
        "loopback, against the dev stack's moto server, on the machine `make bench` ran on "
        "(benchmarks/ui.py). What is left of the difference between the two flows is moto's: "
        "its index query sorts every item of the partition before it takes a page, where "
        "DynamoDB reads the page.",
        "",
        "| page | time | target | |",
        "|---|---|---|---|",
        *[
            f"| {what} | {measured} | {target} | {status} |"
            for what, measured, target, status in rows
        ],
    ]
    return "\n".join(lines)
