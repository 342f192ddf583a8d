"""What a run carries is bounded where it enters, and what flowrelay writes on a run is clipped,
so a run always fits its DynamoDB item and every event about it fits on the bus: requests of
every size around the limit are either refused at the door, saying the limit and the size, or
stored, and then every state of the run is recorded to the end (moto over HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested, FlowRunStateChanged
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.limits import DETAILS_BYTES, MESSAGE_CHARS, REQUEST_BYTES
from flowrelay.core.registration import FlowRegistration, ParameterSpec
from flowrelay.core.storage import Module
from tests.support.aws import report_figures
from tests.support.cli import invoke, one_error_line
from tests.support.lambda_events import Context, sqs_batch
from tests.support.strategies import envelope

KIB = 1024
#: Parameter payloads (bytes of one string value) around the request limit, and far past it
#: (still under EventBridge's 256 KB per entry, so such an event can reach dispatch).
SIZES = [1 * KIB, 100 * KIB, 127 * KIB, 129 * KIB, 200 * KIB, 250 * KIB]


def parameters_of(size: int) -> dict[str, Any]:
    return {"blob": "x" * size}


def test_the_cli_refuses_parameters_over_the_limit_naming_it_and_the_size(
    names: dict[str, str],
) -> None:
    error = one_error_line(invoke("run", "etl", "--param", f"blob={'x' * 200 * KIB}"), 2)
    assert error.startswith("the run's parameters, run config and labels: 204,")
    assert f"over flowrelay's limit of {REQUEST_BYTES:,} bytes" in error


def test_a_runner_report_with_details_over_the_limit_is_refused_where_it_is_made() -> None:
    with pytest.raises(ValueError, match=f"over flowrelay's limit of {DETAILS_BYTES:,} bytes"):
        FlowRunStateChanged(
            flow_run_id="r-1",
            state=RunState.FAILED,
            source=Source.RUNNER,
            details={"failed_tasks": ["t" * 100] * 200},
        )


def test_messages_written_on_a_run_are_clipped(store: Store) -> None:
    run, _ = store.runs.create("long-message", "etl", message="m" * 100_000)
    assert len(run.message or "") == MESSAGE_CHARS
    done = store.runs.transition(
        run.run_id, RunState.FAILED, Source.DISPATCHER, message="f" * 100_000
    ).run
    assert done is not None
    assert len(done.message or "") == MESSAGE_CHARS
    (first, last) = store.runs.history(run.run_id)
    assert (len(first.message or ""), len(last.message or "")) == (MESSAGE_CHARS, MESSAGE_CHARS)


@pytest.fixture
def dispatch(store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Dispatch function's handler against the test's table (no target: runs wait)."""
    from flowrelay.handlers import wiring
    from flowrelay.handlers.dispatch import dispatch_batch

    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", store.table_name)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", "flowrelay")
    wiring.reset()
    yield dispatch_batch
    wiring.reset()


def test_requests_around_the_limit_are_refused_or_recorded_to_the_end(
    dispatch: Any, store: Store, pytestconfig: pytest.Config
) -> None:
    """Each size reaches dispatch as another system would send it (no CLI in front): at most
    the limit, the run is stored and its whole life recorded, with a long message and the
    largest details a report may carry; over it, the run is Failed naming the limit and size,
    and nothing is lost either way."""
    store.flows.register(
        FlowRegistration(
            name="blobs", storage=Module("blobs:flow"), parameters=[ParameterSpec(name="blob")]
        )
    )
    outcomes: dict[int, str] = {}
    for size in SIZES:
        run_id = f"size-{size}"
        detail = {"flow": "blobs", "flow_run_id": run_id, "parameters": parameters_of(size)}
        body = json.dumps(envelope("Flow Run Requested", detail, event_id=run_id))
        assert dispatch(sqs_batch(body), Context()) == {"batchItemFailures": []}
        run = store.runs.get(run_id)
        assert run is not None, f"{size}: the run is lost"
        if size + 100 <= REQUEST_BYTES:
            assert run.state is RunState.PENDING, (size, run.message)
            assert run.parameters == parameters_of(size)
            for state in (RunState.SUBMITTED, RunState.RUNNING, RunState.FAILED):
                report = FlowRunStateChanged(
                    flow_run_id=run_id,
                    state=state,
                    source=Source.RUNNER if state is not RunState.SUBMITTED else Source.DISPATCHER,
                    message="why " * (MESSAGE_CHARS // 4),
                    details={"trace": "t" * (DETAILS_BYTES - 100)},
                )
                result = store.runs.transition(
                    run_id,
                    report.state,
                    report.source,
                    message=report.message,
                    details=report.details,
                )
                assert result.applied, (size, state, result.reason)
            outcomes[size] = "stored, recorded to the end"
        else:
            assert run.state is RunState.FAILED, (size, run.message)
            assert "over flowrelay's limit of 131,072 bytes" in (run.message or "")
            assert f"{size:,}"[:3] in (run.message or "")
            outcomes[size] = "refused at the door, with the limit and the size"
    counts = {outcome: list(outcomes.values()).count(outcome) for outcome in set(outcomes.values())}
    report_figures(
        pytestconfig,
        "limits: run requests around the 128 KiB limit, through dispatch (DynamoDB over HTTP)",
        [f"{size // KIB:>4} KiB of parameters: {outcome}" for size, outcome in outcomes.items()]
        + [f"{len(SIZES)} requests: " + ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))]
        + ["lost 0, stuck 0"],
    )


def test_the_model_and_the_limit_agree_on_size() -> None:
    """The CLI, the SDK and dispatch all refuse through the same model."""
    FlowRunRequested(flow="etl", parameters=parameters_of(REQUEST_BYTES - 100))
    with pytest.raises(ValueError, match="over flowrelay's limit"):
        FlowRunRequested(flow="etl", parameters=parameters_of(REQUEST_BYTES))
