"""``find_runs``: pages of runs, newest first, by flow or across days, with filters, each page
going on from where the last stopped, against a real (moto) table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.control.store.runs import run_item
from flowrelay.core.lifecycle import RunState
from flowrelay.core.runs import FlowRun
from flowrelay.operations import RefusedError
from flowrelay.operations.runs import RunFilter, find_runs

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def seed(store: Store, runs: list[FlowRun]) -> None:
    """Runs as the functions would have left them (their items only)."""
    items = [run_item(run) for run in runs]
    for start in range(0, len(items), 25):
        pending: Any = {
            store.table.table_name: [
                {"PutRequest": {"Item": item}} for item in items[start : start + 25]
            ]
        }
        while pending:
            pending = store.table.client.batch_write_item(RequestItems=pending).get(
                "UnprocessedItems"
            )


def made(flow: str, created: datetime, **fields: Any) -> FlowRun:
    return FlowRun(
        run_id=str(uuid.uuid4()),
        flow_name=flow,
        created_at=created,
        updated_at=created,
        state_entered_at=created,
        **{"state": RunState.SUCCESS, **fields},
    )


def every_page(store: Store, wanted: RunFilter) -> list[list[FlowRun]]:
    pages, before = [], None
    while True:
        page = find_runs(store, wanted, before=before)
        pages.append(page.runs)
        if page.next is None:
            return pages
        before = page.next


def test_a_flows_runs_come_in_pages_newest_first_each_once(store: Store) -> None:
    runs = [made("big", NOW - timedelta(seconds=n)) for n in range(230)]
    seed(store, [*runs, *(made("other", NOW - timedelta(seconds=n)) for n in range(30))])
    pages = every_page(store, RunFilter(flow="big", limit=50))
    assert [len(page) for page in pages] == [50, 50, 50, 50, 30]
    assert [run.run_id for page in pages for run in page] == [run.run_id for run in runs]


def test_runs_of_every_flow_span_the_days_they_were_made(store: Store) -> None:
    runs = [made(f"flow-{n % 3}", NOW - timedelta(hours=7 * n)) for n in range(20)]
    seed(store, runs)
    pages = every_page(store, RunFilter(limit=6, days=10))
    assert [run.run_id for page in pages for run in page] == [run.run_id for run in runs]
    # Fewer days, fewer runs: those of the last two days (UTC) only.
    recent = [run for page in every_page(store, RunFilter(limit=50, days=2)) for run in page]
    oldest_day = (NOW - timedelta(days=1)).date()
    assert recent == [run for run in runs if run.created_at.date() >= oldest_day]


def test_filters_apply_to_every_page(store: Store) -> None:
    runs = [
        made(
            "etl",
            NOW - timedelta(seconds=n),
            labels=["gpu"] if n % 4 == 0 else [],
            target="big-box" if n % 5 == 0 else "small-box",
            state=RunState.FAILED if n % 3 == 0 else RunState.SUCCESS,
        )
        for n in range(120)
    ]
    seed(store, runs)
    for wanted, keep in (
        (RunFilter(flow="etl", label="gpu", limit=7), lambda run: "gpu" in run.labels),
        (RunFilter(flow="etl", target="big-box", limit=7), lambda run: run.target == "big-box"),
        (
            RunFilter(flow="etl", state=RunState.FAILED, limit=7),
            lambda run: run.state is RunState.FAILED,
        ),
        (RunFilter(label="gpu", limit=9), lambda run: "gpu" in run.labels),
        (
            RunFilter(flow="etl", since=NOW - timedelta(seconds=29), limit=7),
            lambda run: run.created_at >= NOW - timedelta(seconds=29),
        ),
    ):
        found = [run.run_id for page in every_page(store, wanted) for run in page]
        assert found == [run.run_id for run in runs if keep(run)], wanted


def test_a_filter_few_runs_pass_stops_and_says_where_to_go_on(store: Store) -> None:
    runs = [made("sparse", NOW - timedelta(seconds=n)) for n in range(60)]
    runs[-1] = runs[-1].model_copy(update={"labels": ["rare"]})
    seed(store, runs)
    first = store.runs.page(
        flow_name="sparse", keep=lambda run: "rare" in run.labels, limit=5, examine=25
    )
    assert first.runs == []
    assert first.next is not None  # examined 25, none passed: go on from there
    pages = every_page(store, RunFilter(flow="sparse", label="rare", limit=5))
    assert [run.run_id for page in pages for run in page] == [runs[-1].run_id]


def test_active_runs_are_the_unfinished_longest_waiting_first(store: Store) -> None:
    runs = [
        made("etl", NOW - timedelta(seconds=n), state=state)
        for n, state in enumerate(
            [RunState.RUNNING, RunState.SUCCESS, RunState.QUEUED, RunState.PENDING]
        )
    ]
    seed(store, runs)
    page = find_runs(store, RunFilter(active=True))
    assert [run.run_id for run in page.runs] == [runs[3].run_id, runs[2].run_id, runs[0].run_id]
    assert page.next is None


@pytest.mark.parametrize(
    ("wanted", "says"),
    [
        (RunFilter(flow=" "), "a flow's name cannot be empty"),
        (RunFilter(active=True, state=RunState.FAILED), "Failed is final"),
        (RunFilter(limit=0), "at least 1 run"),
    ],
)
def test_filters_no_run_can_pass_are_refused(store: Store, wanted: RunFilter, says: str) -> None:
    with pytest.raises(RefusedError, match=says):
        find_runs(store, wanted)


def test_a_position_before_since_finds_nothing(store: Store) -> None:
    seed(store, [made("etl", NOW)])
    before = f"{(NOW - timedelta(days=2)).isoformat()}#x"
    page = find_runs(store, RunFilter(flow="etl", since=NOW - timedelta(days=1)), before=before)
    assert page.runs == []
    assert page.next is None


@pytest.mark.parametrize("before", ["yesterday", "2026-11-30", "#abc", "2026-11-30T08:00#r"])
def test_a_position_no_page_gave_is_refused(store: Store, before: str) -> None:
    with pytest.raises(RefusedError, match="is not the position a page of runs ended at"):
        find_runs(store, RunFilter(), before=before)


def test_collect_runs_goes_on_past_short_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script asks for N runs and gets them, however few a page of a filter finds."""
    from flowrelay.control.store import runs as run_store
    from flowrelay.operations.runs import collect_runs

    monkeypatch.setattr(run_store, "PAGE_EXAMINES", 10)
    runs = [
        made("etl", NOW - timedelta(seconds=n), labels=["rare"] if n % 15 == 0 else [])
        for n in range(90)
    ]
    seed(store, runs)
    wanted = RunFilter(flow="etl", label="rare", limit=4)
    short = find_runs(store, wanted)
    assert len(short.runs) < 4
    assert short.next is not None
    collected = collect_runs(store, wanted)
    rare = [run.run_id for run in runs if "rare" in run.labels]
    assert [run.run_id for run in collected.runs] == rare[:4]
    assert collected.next is not None
    rest = collect_runs(store, wanted, before=collected.next)
    assert [run.run_id for run in rest.runs] == rare[4:]


def test_the_active_runs_of_every_flow_are_one_list(store: Store) -> None:
    seed(store, [made("etl", NOW - timedelta(seconds=n), state=RunState.RUNNING) for n in range(5)])
    page = find_runs(store, RunFilter(state=RunState.RUNNING, limit=3))
    assert len(page.runs) == 3
    assert page.more == 2
    assert page.next is None
    with pytest.raises(RefusedError, match="no page before"):
        find_runs(store, RunFilter(active=True), before=f"{NOW.isoformat()}#x")
    # One flow's, newest first, in pages.
    of_flow = find_runs(store, RunFilter(flow="etl", active=True, limit=3))
    assert [run.created_at for run in of_flow.runs] == sorted(
        (run.created_at for run in of_flow.runs), reverse=True
    )
    assert of_flow.next is not None


def test_a_page_of_every_flow_reads_a_month_of_days_at_most(store: Store) -> None:
    """A ``since`` years back: each page reads 31 days and says where to go on from."""
    old = made("etl", NOW - timedelta(days=70))
    seed(store, [made("etl", NOW), old])
    wanted = RunFilter(since=NOW - timedelta(days=400), limit=10)
    first = find_runs(store, wanted)
    assert [run.run_id for run in first.runs] != []
    assert first.next is not None
    assert first.next.endswith("#")
    pages = every_page(store, wanted)
    assert old.run_id in [run.run_id for page in pages for run in page]
    assert len(pages) == 13  # 400 days, 31 a page
