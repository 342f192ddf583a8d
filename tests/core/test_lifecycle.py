"""The transition table: duplicates and every ordering of a run's events end in the same state."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowrelay.core.lifecycle import (
    ACTIVE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    RunState,
    Source,
    decide,
)
from tests.support.scenarios import SCENARIOS, Event

S, R = RunState, Source


def replay(events: list[Event] | tuple[Event, ...], start: RunState = S.PENDING) -> RunState:
    current = start
    for state, source in events:
        decision = decide(current, state, source)
        if decision.applies:
            current = decision.state
    return current


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_ordering_ends_in_the_in_order_state(name: str) -> None:
    events, expected = SCENARIOS[name]
    assert replay(events) is expected
    endings = {replay(ordering) for ordering in itertools.permutations(events)}
    assert endings == {expected}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_duplicated_events_change_nothing(name: str) -> None:
    events, expected = SCENARIOS[name]
    for ordering in itertools.permutations(events):
        doubled = [event for event in ordering for _ in range(2)]
        assert replay(doubled) is expected
        assert replay(list(ordering) + list(ordering)) is expected


def test_cancellation_ends_cancelled_whatever_the_infrastructure_and_runner_say() -> None:
    # The cancel path records Cancelling before it stops the task, so every report caused by the
    # stop comes after it; those reports may arrive in any order.
    caused = [(S.FAILED, R.RUNNER), (S.CRASHED, R.INFRASTRUCTURE), (S.RUNNING, R.RUNNER)]
    for ordering in itertools.permutations(caused):
        assert replay([(S.CANCELLING, R.USER), *ordering], start=S.RUNNING) is S.CANCELLED


@pytest.mark.parametrize("report", [S.CANCELLED, S.FAILED, S.CRASHED])
def test_the_runner_alone_does_not_make_a_cancelling_run_cancelled(report: RunState) -> None:
    # Its SIGTERM report says the stop began, not that the task is gone.
    assert replay([(S.CANCELLING, R.USER), (report, R.RUNNER)], start=S.RUNNING) is S.CANCELLING
    confirmed = [(S.CANCELLING, R.USER), (report, R.RUNNER), (S.CRASHED, R.INFRASTRUCTURE)]
    assert replay(confirmed, start=S.RUNNING) is S.CANCELLED
    assert replay([*confirmed[:2], (S.CANCELLED, R.MONITOR)], start=S.RUNNING) is S.CANCELLED


def test_a_run_that_finished_before_the_cancel_took_effect_keeps_its_success() -> None:
    assert replay([(S.CANCELLING, R.USER), (S.SUCCESS, R.RUNNER)], start=S.RUNNING) is S.SUCCESS


def test_a_pending_run_can_be_cancelled_without_launching() -> None:
    assert replay([(S.CANCELLED, R.USER)]) is S.CANCELLED


@pytest.mark.parametrize("final", sorted(FINAL_STATES - {S.CRASHED}))
def test_final_states_never_change(final: RunState) -> None:
    for proposed, source in itertools.product(RunState, Source):
        assert not decide(final, proposed, source).applies


def test_crashed_is_replaced_only_by_the_runner_or_the_monitor() -> None:
    assert decide(S.CRASHED, S.SUCCESS, R.RUNNER).state is S.SUCCESS
    assert decide(S.CRASHED, S.TIMED_OUT, R.MONITOR).state is S.TIMED_OUT
    assert not decide(S.CRASHED, S.SUCCESS, R.INFRASTRUCTURE).applies
    assert not decide(S.CRASHED, S.RUNNING, R.RUNNER).applies
    assert not decide(S.CRASHED, S.CANCELLED, R.USER).applies


def test_the_table_covers_every_state_and_final_states_lead_nowhere_new() -> None:
    assert set(TRANSITIONS) == set(RunState)
    assert set(RunState) == ACTIVE_STATES | FINAL_STATES
    for state in FINAL_STATES - {S.CRASHED}:
        assert TRANSITIONS[state] == frozenset()
    assert TRANSITIONS[S.CRASHED] <= FINAL_STATES


def test_decisions_explain_themselves() -> None:
    assert decide(S.RUNNING, S.SUBMITTED, R.DISPATCHER).reason == "Running may not become Submitted"
    assert decide(S.RUNNING, S.RUNNING, R.RUNNER).reason == "already Running"


events = st.lists(st.tuples(st.sampled_from(RunState), st.sampled_from(Source)), max_size=12)


@given(events)
def test_no_sequence_leaves_a_final_state_except_crashed_by_authority(
    sequence: list[Event],
) -> None:
    current = S.PENDING
    for state, source in sequence:
        decision = decide(current, state, source)
        if current.is_final and decision.applies:
            assert current is S.CRASHED
            assert source in (R.RUNNER, R.MONITOR)
        if decision.applies:
            assert decision.state in TRANSITIONS[current] or (
                current is S.CANCELLING and decision.state is S.CANCELLED
            )
            current = decision.state


@given(events)
def test_redelivering_a_whole_batch_changes_nothing(sequence: list[Event]) -> None:
    assert replay(sequence + sequence) is replay(sequence)


# A cancel is recorded (Cancelling) before the cancel function stops the task, so every stop
# event comes after it; what follows may arrive in any order, from every source, duplicated.
AFTER_CANCEL: list[Event] = [
    (S.RUNNING, R.RUNNER),  # a late report from before the stop
    (S.FAILED, R.RUNNER),  # the runner's SIGTERM report
    (S.CRASHED, R.INFRASTRUCTURE),  # the task's STOPPED event
    (S.CANCELLED, R.MONITOR),  # the monitor saw the task stopped
    (S.CANCELLING, R.USER),  # the user asked twice
]


@pytest.mark.parametrize(
    "launched",
    [[], [(S.SUBMITTED, R.DISPATCHER)], [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER)]],
)
def test_a_cancelled_run_ends_cancelled_in_every_order_of_what_follows(
    launched: list[Event],
) -> None:
    prefix = [*launched, (S.CANCELLING, R.USER)]
    for order in itertools.permutations(AFTER_CANCEL):
        assert replay([*prefix, *order]) is S.CANCELLED, order
        assert replay([*prefix, *order, *order]) is S.CANCELLED, order
