"""The run store against DynamoDB (moto server over HTTP): exactly-once creation, conditional
transitions, history, the sparse active index, and order-independence of state events."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator

import boto3
import pytest

from flowrelay.control.store import RunNotFoundError, Store
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.runs import run_id_for
from tests.support.aws import Clock, report_figures
from tests.support.scenarios import SCENARIOS

S, R = RunState, Source


@pytest.fixture
def store(run_table: str, clock: Clock) -> Store:
    return Store(boto3.client("dynamodb"), run_table, clock=clock)


@pytest.fixture
def write_transactions(store: Store) -> Iterator[list[str]]:
    """Counts TransactWriteItems calls made by the store's client."""
    calls: list[str] = []

    def count(**_: object) -> None:
        calls.append("TransactWriteItems")

    store.client.meta.events.register("before-call.dynamodb.TransactWriteItems", count)
    yield calls
    store.client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", count)


def test_the_same_request_five_times_creates_one_run(store: Store) -> None:
    run_id = run_id_for("nightly-2026-11-23")
    outcomes = [
        store.runs.create(
            run_id, "etl", parameters={"rows": 10.5}, idempotency_key="nightly-2026-11-23"
        )
        for _ in range(5)
    ]
    assert [created for _, created in outcomes] == [True, False, False, False, False]
    assert {run.run_id for run, _ in outcomes} == {run_id}
    assert store.runs.get(run_id).parameters == {"rows": 10.5}  # type: ignore[union-attr]
    assert len(store.runs.history(run_id)) == 1


def test_concurrent_creations_of_one_run_create_it_once(store: Store) -> None:
    created: list[bool] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        created.append(store.runs.create("run-race", "etl")[1])

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False] * 7 + [True]


def test_a_run_through_its_life(store: Store, clock: Clock, write_transactions: list[str]) -> None:
    store.runs.create("r1", "etl", labels=["prod"], run_config={"type": "ECSRun"})
    clock.advance(1)
    submitted = store.runs.transition(
        "r1", S.SUBMITTED, R.DISPATCHER, infrastructure={"task_arn": "arn:task/1"}, target="fargate"
    )
    assert submitted.applied
    clock.advance(1)
    store.runs.transition("r1", S.RUNNING, R.RUNNER)
    clock.advance(5)
    done = store.runs.transition(
        "r1", S.SUCCESS, R.RUNNER, message="All reference tasks succeeded."
    )
    run = done.run
    assert run is not None
    assert run.state is S.SUCCESS
    assert run.version == 4
    assert run.infrastructure == {"task_arn": "arn:task/1"}
    assert run.target == "fargate"
    history = store.runs.history("r1")
    assert [(entry.previous, entry.state) for entry in history] == [
        (None, S.PENDING),
        (S.PENDING, S.SUBMITTED),
        (S.SUBMITTED, S.RUNNING),
        (S.RUNNING, S.SUCCESS),
    ]
    assert history[-1].message == "All reference tasks succeeded."
    assert [entry.at for entry in history] == sorted(entry.at for entry in history)
    # One per applied transition; the creation is a single PutItem, its history item being the
    # run item itself.
    assert len(write_transactions) == 3
    assert store.runs.active(S.RUNNING) == []


def test_refused_transitions_write_nothing(store: Store, write_transactions: list[str]) -> None:
    store.runs.create("r2", "etl")
    store.runs.transition("r2", S.RUNNING, R.RUNNER)
    writes = len(write_transactions)
    late = store.runs.transition("r2", S.SUBMITTED, R.DISPATCHER)
    duplicate = store.runs.transition("r2", S.RUNNING, R.RUNNER)
    assert not late.applied
    assert late.reason == "Running may not become Submitted"
    assert not duplicate.applied
    assert len(write_transactions) == writes
    assert store.runs.get("r2").state is S.RUNNING  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def orderings_replayed(pytestconfig: pytest.Config) -> Iterator[dict[str, int]]:
    """How many orderings of each scenario's events ended as in-order delivery does."""
    replayed: dict[str, int] = {}
    yield replayed
    if replayed:
        lines = [f"{name:<22} {count:>4} orderings" for name, count in sorted(replayed.items())]
        total = sum(replayed.values())
        lines.append(
            f"{len(replayed)} scenarios, {total} orderings (each with a redelivered "
            "prefix): every one ended in the in-order state, versions gap-free"
        )
        report_figures(
            pytestconfig,
            "fault injection: state events reordered and duplicated (DynamoDB over HTTP)",
            lines,
        )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_ordering_and_duplication_of_state_events_ends_the_same(
    store: Store, name: str, orderings_replayed: dict[str, int]
) -> None:
    events, expected = SCENARIOS[name]
    orderings = list(itertools.permutations(events))
    for number, ordering in enumerate(orderings):
        run_id = f"{name.replace(' ', '-')}-{number}"
        store.runs.create(run_id, "etl")
        for state, source in [*ordering, *ordering[:2]]:  # and some redelivered
            store.runs.transition(run_id, state, source)
        run = store.runs.get(run_id)
        assert run is not None
        assert run.state is expected, ordering
        versions = [entry.version for entry in store.runs.history(run_id)]
        assert versions == list(range(1, len(versions) + 1))
    orderings_replayed[name] = len(orderings)


def test_an_older_infrastructure_event_never_overrides_a_newer_one(store: Store) -> None:
    store.runs.create("r3", "etl")
    store.runs.transition("r3", S.SUBMITTED, R.DISPATCHER)
    stopped = store.runs.transition(
        "r3", S.CRASHED, R.INFRASTRUCTURE, infra_sequence=4, message="Essential container exited"
    )
    assert stopped.applied
    older = store.runs.transition("r3", S.RUNNING, R.INFRASTRUCTURE, infra_sequence=2)
    assert not older.applied
    assert older.reason == "event number 2 of its launch is not newer than 4"
    assert store.runs.get("r3").state is S.CRASHED  # type: ignore[union-attr]


def test_heartbeats_survive_transitions_and_stop_at_the_end(store: Store, clock: Clock) -> None:
    store.runs.create("r4", "etl")
    store.runs.transition("r4", S.RUNNING, R.RUNNER)
    clock.advance(30)
    assert store.runs.heartbeat("r4")
    beat = clock.now
    clock.advance(1)
    store.runs.transition("r4", S.CANCELLING, R.USER)
    assert store.runs.get("r4").heartbeat_at == beat  # type: ignore[union-attr]
    store.runs.transition("r4", S.CRASHED, R.INFRASTRUCTURE)
    assert store.runs.get("r4").state is S.CANCELLED  # type: ignore[union-attr]
    assert not store.runs.heartbeat("r4")
    assert not store.runs.heartbeat("no-such-run")


def test_active_runs_by_state_and_age(store: Store, clock: Clock) -> None:
    for number in range(3):
        store.runs.create(f"old-{number}", "etl")
        store.runs.transition(f"old-{number}", S.SUBMITTED, R.DISPATCHER)
        clock.advance(60)
    cutoff = clock.now
    clock.advance(60)
    store.runs.create("new", "etl")
    store.runs.transition("new", S.SUBMITTED, R.DISPATCHER)
    store.runs.create("done", "etl")
    store.runs.transition("done", S.FAILED, R.DISPATCHER)
    submitted = store.runs.active(S.SUBMITTED)
    assert [run.run_id for run in submitted] == ["old-0", "old-1", "old-2", "new"]
    assert [run.run_id for run in store.runs.active(S.SUBMITTED, entered_before=cutoff)] == [
        "old-0",
        "old-1",
        "old-2",
    ]
    assert store.runs.active(S.PENDING) == []
    with pytest.raises(ValueError, match="final"):
        store.runs.active(S.FAILED)


def test_runs_of_a_flow_newest_first(store: Store, clock: Clock) -> None:
    for number in range(4):
        store.runs.create(f"f-{number}", "report")
        clock.advance(1)
    store.runs.create("other", "etl")
    assert [run.run_id for run in store.runs.of_flow("report")] == ["f-3", "f-2", "f-1", "f-0"]
    assert [run.run_id for run in store.runs.of_flow("report", limit=2)] == ["f-3", "f-2"]


def test_concurrent_transitions_stay_consistent(store: Store) -> None:
    store.runs.create("r5", "etl")
    barrier = threading.Barrier(4)
    proposals = [
        (S.SUBMITTED, R.DISPATCHER),
        (S.RUNNING, R.RUNNER),
        (S.SUCCESS, R.RUNNER),
        (S.CRASHED, R.INFRASTRUCTURE),
    ]

    def propose(state: RunState, source: Source) -> None:
        barrier.wait()
        store.runs.transition("r5", state, source)

    threads = [threading.Thread(target=propose, args=proposal) for proposal in proposals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = store.runs.history("r5")
    assert [entry.version for entry in history] == list(range(1, len(history) + 1))
    for before, after in itertools.pairwise(history):
        assert after.previous is before.state
    assert store.runs.get("r5").state is S.SUCCESS  # type: ignore[union-attr]


def test_an_unknown_run_is_a_clear_error(store: Store) -> None:
    with pytest.raises(RunNotFoundError, match="no flow run 'ghost'"):
        store.runs.transition("ghost", S.RUNNING, R.RUNNER)
    assert store.runs.get("ghost") is None


def test_idempotency_keys_map_to_stable_distinct_run_ids() -> None:
    assert run_id_for("a") == run_id_for("a")
    assert run_id_for("a") != run_id_for("b")


def test_recent_runs_come_newest_first_across_days_and_flows(store: Store, clock: Clock) -> None:
    """One index partition per UTC day: a listing walks back day by day, and stops once it has
    enough."""
    for day in range(4):
        for flow in ("etl", "ml"):
            store.runs.create(f"{flow}-day{day}", flow)
            clock.advance(60)
        clock.advance(24 * 3600)
    newest = [run.run_id for run in store.runs.recent(limit=5)]
    assert newest == ["ml-day3", "etl-day3", "ml-day2", "etl-day2", "ml-day1"]
    assert [run.run_id for run in store.runs.recent(days=2)] == [
        "ml-day3",
        "etl-day3",
    ]  # today is day 4: day 3 and today
    ml_runs = store.runs.recent(keep=lambda run: run.flow_name == "ml", limit=10)
    assert [run.run_id for run in ml_runs] == ["ml-day3", "ml-day2", "ml-day1", "ml-day0"]
