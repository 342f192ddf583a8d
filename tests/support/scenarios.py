"""The events of a run in each scenario the transition table is checked against (in memory in
tests/core/test_lifecycle.py, against DynamoDB in tests/control/test_store.py)."""

from __future__ import annotations

from flowrelay.core.lifecycle import RunState, Source

S, R = RunState, Source
Event = tuple[RunState, Source]

# Each scenario: the events one run produces (dispatcher, runner, ECS, monitor) and the state
# in-order delivery ends in.
SCENARIOS: dict[str, tuple[list[Event], RunState]] = {
    "success": (
        [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER), (S.SUCCESS, R.RUNNER),
         (S.CRASHED, R.INFRASTRUCTURE)],
        S.SUCCESS,
    ),
    "flow failed": (
        [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER), (S.FAILED, R.RUNNER),
         (S.CRASHED, R.INFRASTRUCTURE)],
        S.FAILED,
    ),
    "queued by a limit then success": (
        [(S.QUEUED, R.DISPATCHER), (S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER),
         (S.SUCCESS, R.RUNNER), (S.CRASHED, R.INFRASTRUCTURE)],
        S.SUCCESS,
    ),
    "runner killed": (
        [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER), (S.CRASHED, R.INFRASTRUCTURE)],
        S.CRASHED,
    ),
    "task failed to start": (
        [(S.SUBMITTED, R.DISPATCHER), (S.CRASHED, R.INFRASTRUCTURE)],
        S.CRASHED,
    ),
    "timed out": (
        [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER), (S.TIMED_OUT, R.MONITOR),
         (S.CRASHED, R.INFRASTRUCTURE)],
        S.TIMED_OUT,
    ),
    "lost heartbeat": (
        [(S.SUBMITTED, R.DISPATCHER), (S.RUNNING, R.RUNNER), (S.CRASHED, R.MONITOR),
         (S.CRASHED, R.INFRASTRUCTURE)],
        S.CRASHED,
    ),
}  # fmt: skip
