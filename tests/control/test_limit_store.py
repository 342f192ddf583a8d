"""Concurrency limits' slots in the table (moto over HTTP): a slot is taken by one conditional
write per limit, all of a run's slots or none; holders never exceed ``max_runs`` whatever the
order of takes, repeats and releases; a lower ``max_runs`` takes effect at the next take."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowrelay.control.store import Store
from flowrelay.control.store.table import CONFLICT_TRIES
from flowrelay.core.concurrency import ConcurrencyLimit, applicable


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def limit(name: str, max_runs: int, kind: str = "label") -> ConcurrencyLimit:
    return ConcurrencyLimit(name=name, kind=kind, value=name, max_runs=max_runs)


def test_a_slot_is_taken_until_the_limit_is_full_and_given_back(store: Store) -> None:
    store.limits.put(limit("warehouse", 2))
    assert store.limits.take("a", ["warehouse"]) is None
    assert store.limits.take("a", ["warehouse"]) is None  # a repeat keeps its slot
    assert store.limits.take("b", ["warehouse"]) is None
    refused = store.limits.take("c", ["warehouse"])
    assert refused is not None
    assert refused.message(limit("warehouse", 2)) == (
        "waiting for a slot: label 'warehouse' 2/2: runs a, b"
    )
    store.limits.release("a", "warehouse")
    store.limits.release("a", "warehouse")  # a repeat changes nothing
    assert store.limits.take("c", ["warehouse"]) is None
    state = store.limits.get("warehouse")
    assert state is not None
    assert state.holders == {"b", "c"}


def test_a_run_takes_all_of_its_slots_or_none(store: Store) -> None:
    store.limits.put(limit("gpu", 5))
    store.limits.put(limit("nightly", 1, kind="flow"))
    assert store.limits.take("first", ["gpu", "nightly"]) is None
    refused = store.limits.take("second", ["gpu", "nightly"])
    assert refused is not None
    assert refused.limit == "nightly"
    gpu = store.limits.get("gpu")
    assert gpu is not None
    assert gpu.holders == {"first"}  # the gpu slot second would have taken is not held


def test_max_zero_pauses_and_a_lower_max_keeps_its_holders(store: Store) -> None:
    store.limits.put(limit("warehouse", 0))
    refused = store.limits.take("a", ["warehouse"])
    assert refused is not None
    assert refused.message() == "waiting for a slot: 'warehouse' is paused (max 0)"
    store.limits.put(limit("warehouse", 3))
    for run in ("a", "b", "c"):
        assert store.limits.take(run, ["warehouse"]) is None
    store.limits.put(limit("warehouse", 1))  # no holder loses its slot
    state = store.limits.get("warehouse")
    assert state is not None
    assert state.holders == frozenset({"a", "b", "c"})
    assert state.free == 0
    store.limits.release("a", "warehouse")
    store.limits.release("b", "warehouse")
    assert store.limits.take("d", ["warehouse"]) is not None  # 1 holder, max 1: still full


def test_waiting_runs_oldest_first_and_a_taken_slot_ends_the_wait(store: Store) -> None:
    store.limits.put(limit("warehouse", 1))
    now = datetime(2026, 11, 30, tzinfo=UTC)
    late, _ = store.runs.create(f"late-{uuid.uuid4().hex[:8]}", "etl")
    early, _ = store.runs.create(f"early-{uuid.uuid4().hex[:8]}", "etl")
    assert store.limits.wait(late.run_id, "warehouse", now + timedelta(seconds=5))
    assert store.limits.wait(early.run_id, "warehouse", now)
    state = store.limits.get("warehouse")
    assert state is not None
    assert [run for run, _ in state.waiting] == [early.run_id, late.run_id]
    fetched = store.runs.get(early.run_id)
    assert fetched is not None
    assert fetched.limits == ["warehouse"]  # the run names what it waits for
    assert store.limits.take(early.run_id, ["warehouse"]) is not None  # waiting: not for it
    given = store.limits.give("warehouse", early.run_id)  # handed to it: the wait ends
    assert given is not None
    assert [run for run, _ in given.waiting] == [late.run_id]
    assert given.handed == {early.run_id}
    assert store.limits.take(early.run_id, ["warehouse"]) is None  # its dispatch takes it
    state = store.limits.get("warehouse")
    assert state is not None
    assert state.handed == frozenset()
    assert store.limits.wait(early.run_id, "no-such-limit", now) is False
    assert store.limits.wait("no-such-run", "warehouse", now) is False


def test_a_slot_is_given_only_to_a_waiter_and_only_when_free(store: Store) -> None:
    store.limits.put(limit("warehouse", 1))
    waiter, _ = store.runs.create(f"waiter-{uuid.uuid4().hex[:8]}", "etl")
    assert store.limits.take("a", ["warehouse"]) is None
    assert store.limits.give("warehouse", waiter.run_id) is None  # not waiting
    store.limits.wait(waiter.run_id, "warehouse", waiter.created_at)
    assert store.limits.give("warehouse", waiter.run_id) is None  # full
    after = store.limits.release("a", "warehouse")
    assert after is not None
    assert after.free == 1
    given = store.limits.give("warehouse", waiter.run_id)
    assert given is not None
    assert given.holders == {waiter.run_id}
    assert given.waiting == ()
    dropped = store.limits.drop_waiter("warehouse", waiter.run_id)  # a repeat: nothing
    assert dropped is not None
    assert dropped.holders == {waiter.run_id}


def test_a_removed_limit_refuses_and_releases_quietly(store: Store) -> None:
    store.limits.put(limit("warehouse", 1))
    assert store.limits.take("a", ["warehouse"]) is None
    removed = store.limits.remove("warehouse")
    assert removed is not None
    assert removed.holders == {"a"}
    store.limits.release("a", "warehouse")  # nothing to give back, no error
    refused = store.limits.take("b", ["warehouse"])
    assert refused is not None
    assert refused.max_runs is None
    assert store.limits.get("warehouse") is None  # a release does not make the item again
    assert [s.limit.name for s in store.limits.list()] == []


def test_the_limits_a_run_is_subject_to() -> None:
    limits = [
        limit("warehouse", 3),
        limit("etl-once", 1, kind="flow").model_copy(update={"value": "etl"}),
        limit("big", 20, kind="target").model_copy(update={"value": "fargate"}),
    ]
    names = [x.name for x in applicable(limits, ["warehouse"], "etl", target=None)]
    assert names == ["etl-once", "warehouse"]
    names = [x.name for x in applicable(limits, [], "other", target="fargate")]
    assert names == ["big"]


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.sampled_from("abcdef"), st.sets(st.sampled_from("xy"))),
        st.tuples(st.just("release"), st.sampled_from("abcdef"), st.sets(st.sampled_from("xy"))),
        st.tuples(st.just("max"), st.sampled_from("xy"), st.integers(0, 3)),
    ),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=OPERATIONS)
def test_holders_never_exceed_the_limit_whatever_the_order(
    store: Store, operations: list[tuple[Any, ...]]
) -> None:
    names = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in "xy"}
    maxes = {"x": 2, "y": 1}
    for name, stored in names.items():
        store.limits.put(limit(stored, maxes[name]))
    holders: dict[str, set[str]] = {name: set() for name in names}
    for kind, subject, argument in operations:
        if kind == "max":
            maxes[subject] = argument
            store.limits.put(limit(names[subject], argument))
            continue
        wanted = sorted(argument)
        stored_names = [names[name] for name in wanted]
        if kind == "release":
            for stored in stored_names:
                store.limits.release(subject, stored)
            for name in wanted:
                holders[name].discard(subject)
            continue
        refused = store.limits.take(subject, stored_names)
        # The model: all or none, a repeat keeps its slot, else room is needed.
        fits = all(subject in holders[n] or len(holders[n]) < maxes[n] for n in wanted)
        assert (refused is None) == fits, (kind, subject, wanted, holders, maxes)
        if fits:
            for name in wanted:
                holders[name].add(subject)
        for name, stored in names.items():
            state = store.limits.get(stored)
            assert state is not None
            assert state.holders == holders[name]
    for stored in names.values():
        store.limits.remove(stored)


def test_a_newcomer_never_takes_a_slot_freed_for_a_run_that_waits(store: Store) -> None:
    """Between a release and its hand-over a slot is free: it is the oldest waiter's, given."""
    store.limits.put(limit("warehouse", 1))
    waiter, _ = store.runs.create(f"waiter-{uuid.uuid4().hex[:8]}", "etl")
    assert store.limits.take("a", ["warehouse"]) is None
    store.limits.wait(waiter.run_id, "warehouse", waiter.created_at)
    store.limits.release("a", "warehouse")  # and the hand-over has not happened yet
    refused = store.limits.take("newcomer", ["warehouse"])
    assert refused is not None
    assert refused.message(limit("warehouse", 1)) == (
        "waiting for a slot: label 'warehouse' 0/1: runs none; 1 waiting before it"
    )
    assert store.limits.take(waiter.run_id, ["warehouse"]) is not None  # given, not taken
    assert store.limits.give("warehouse", waiter.run_id) is not None


def test_a_take_that_collides_with_a_concurrent_transaction_is_tried_again(store: Store) -> None:
    """On AWS a transaction on a busy limit item may be cancelled by another one writing it at
    the same moment (``TransactionConflict``; moto never answers it, so it is raised here from
    botocore's ``before-call``, as DynamoDB's answer would be): tried again, a few times."""
    store.limits.put(limit("warehouse", 2))
    collisions: list[str] = []

    def collide(model: Any, **_: Any) -> None:
        if len(collisions) < budget:
            collisions.append(model.name)
            raise store.client.exceptions.TransactionCanceledException(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "conflict"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )

    event = "before-call.dynamodb.TransactWriteItems"
    store.client.meta.events.register(event, collide)
    try:
        budget = CONFLICT_TRIES - 1
        assert store.limits.take("a", ["warehouse"]) is None  # the last try went through
        assert len(collisions) == CONFLICT_TRIES - 1
        collisions.clear()
        budget = CONFLICT_TRIES
        with pytest.raises(store.client.exceptions.TransactionCanceledException):
            store.limits.take("b", ["warehouse"])  # it never went through: said, not hidden
    finally:
        store.client.meta.events.unregister(event, collide)
    state = store.limits.get("warehouse")
    assert state is not None
    assert state.holders == {"a"}
