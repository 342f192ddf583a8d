"""Fuzzing the SQS-fed handlers against moto over HTTP: batches of good records mixed with
hypothesis-generated bad ones (garbage bodies, events of a detail-type the function does not
take, near-valid events, events for unknown runs or flows).

For every batch: the handler returns ``{"batchItemFailures": [...]}`` and never raises; every
good record is processed (not reported failed, and its effect is in the table); every bad record
is reported failed with its reason logged (naming its message id), or was recorded on its run
(Failed, with the reason as the run's message).

Each handler is one ``HandlerCase`` in ``HANDLERS``: to fuzz another handler, add its case with
a factory for its good records. What fuzzing found is kept, fixed, as minimal regression tests
at the end of this file.
"""

from __future__ import annotations

import importlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pydantic import BaseModel

from flowrelay.control.store import Store
from flowrelay.core.events import (
    DETAIL_MODELS,
    EventError,
    FlowRunCancelRequested,
    FlowRunClusterChanged,
    FlowRunRequested,
    FlowRunStateChanged,
    TaskRunStateChanged,
    parse_event,
)
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, run_id_for
from flowrelay.handlers import wiring
from flowrelay.handlers.dispatch import dispatch_batch
from flowrelay.launchers.ecs.status import EcsTaskStateChange
from tests.support.lambda_events import Context, sqs_batch
from tests.support.strategies import (
    VALID_DETAILS,
    detail_type_of,
    event_of,
    garbage_bodies,
    names,
    near_valid,
)

BUS = "flowrelay"
#: Every example calls moto over HTTP: few examples, and no shrinking (minutes against moto); a
#: failure prints the example as generated, with each draw labelled.
FUZZ = settings(
    max_examples=30,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- the table, the target and the handlers' environment ---------------------------------------


@pytest.fixture
def runtime(
    store: Store,
    cluster: str,
    network: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Store]:
    """The environment the functions run with (as tests/control/test_dispatch.py sets it),
    a launch target on a moto ECS cluster, and fresh cached clients."""
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", store.table_name)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", BUS)
    store.targets.put(
        Target(
            name="fargate",
            kind="ecs",
            labels=[],
            settings={"cluster": cluster, "image": "example/flows:fuzz", **network},
        )
    )
    wiring.reset()
    yield store
    wiring.reset()


class LogCapture(logging.Handler):
    """Every record the functions log (the powertools logger "flowrelay" and its children), as
    the powertools formatter renders it: message, extra keys and exception."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, wiring.logger.registered_formatter.format(record)))

    def problems(self) -> list[str]:
        return [line for level, line in self.lines if level >= logging.WARNING]


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    target = logging.getLogger(wiring.logger.name)
    target.addHandler(capture)
    yield capture
    target.removeHandler(capture)


# --- records ------------------------------------------------------------------------------------


def new_run_id() -> str:
    return f"fz-{uuid.uuid4().hex[:12]}"


def body_of(model: type[BaseModel], detail: dict[str, Any]) -> str:
    return json.dumps(event_of(model, detail, event_id=str(uuid.uuid4())))


def rejection(body: str) -> str | None:
    """Why parse_event rejects ``body``, or None when it parses."""
    try:
        parse_event(body)
    except EventError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Good:
    """A record the handler must process: its body and a check of its effect on its run."""

    body: str
    run_id: str
    check: Callable[[FlowRun], None]


@dataclass(frozen=True)
class Bad:
    """A record the handler must reject (``kind`` says how it was made). ``run_id``: a run made
    for it beforehand, which a rejected record must leave as it was."""

    body: str
    kind: str
    run_id: str | None = None


Draw = Callable[[SearchStrategy[Any]], Any]
GoodFactory = Callable[[Store, Draw], Good]
BadFactory = Callable[[Store, Draw], Bad]


def simplest(strategy: SearchStrategy[Any]) -> Any:
    """The simplest value of ``strategy``: a ``Draw`` for plain tests that use the factories."""
    return find(strategy, lambda _: True, settings=settings(database=None))


# good records, one factory per handler


def good_request(store: Store, draw: Draw) -> Good:
    """A request for the registered flow; launched on the target (Submitted)."""
    detail: dict[str, Any] = {"flow": "etl"}
    detail.update(draw(st.fixed_dictionaries({}, optional={"rows": st.integers(1, 50)})))
    if draw(st.booleans()):  # by idempotency key
        key = f"key-{uuid.uuid4().hex}"
        detail["idempotency_key"], run_id = key, run_id_for(key)
    else:
        run_id = detail["flow_run_id"] = new_run_id()
    if "rows" in detail:
        detail["parameters"] = {"rows": detail.pop("rows")}

    def check(run: FlowRun) -> None:
        assert run.state is RunState.SUBMITTED, run
        assert run.infrastructure.get("task_arn"), run

    return Good(body_of(FlowRunRequested, detail), run_id, check)


#: state event -> the state a Submitted run ends in
STATE_EVENTS: dict[
    str, tuple[Callable[[str], tuple[type[BaseModel], dict[str, Any]]], RunState]
] = {
    "runner running": (
        lambda run_id: (
            FlowRunStateChanged,
            {"flow_run_id": run_id, "state": "Running", "source": "runner"},
        ),
        RunState.RUNNING,
    ),
    "runner success": (
        lambda run_id: (
            FlowRunStateChanged,
            {"flow_run_id": run_id, "state": "Success", "source": "runner", "message": "done"},
        ),
        RunState.SUCCESS,
    ),
    "ecs pending": (
        lambda run_id: (
            EcsTaskStateChange,
            {
                "taskArn": f"arn:t/{run_id}",
                "lastStatus": "PENDING",
                "version": 2,
                "group": f"flowrelay:{run_id}",
            },
        ),
        RunState.SUBMITTED,  # still starting: noted in its history, the run left Submitted
    ),
    "ecs stopped": (
        lambda run_id: (
            EcsTaskStateChange,
            {
                "taskArn": f"arn:t/{run_id}",
                "lastStatus": "STOPPED",
                "version": 4,
                "group": f"flowrelay:{run_id}",
                "stopCode": "EssentialContainerExited",
                "containers": [{"name": "flow", "exitCode": 1}],
            },
        ),
        RunState.CRASHED,
    ),
}


def good_state_event(store: Store, draw: Draw) -> Good:
    """A runner or ECS event for a Submitted run; the run moves on (or stays, for a task
    still starting)."""
    run_id = new_run_id()
    store.runs.create(run_id, "etl", state=RunState.SUBMITTED)
    make, expected = STATE_EVENTS[draw(st.sampled_from(sorted(STATE_EVENTS)))]
    model, detail = make(run_id)

    def check(run: FlowRun) -> None:
        assert run.state is expected, run

    return Good(body_of(model, detail), run_id, check)


def good_cancel(store: Store, draw: Draw) -> Good:
    """A cancel for a run not launched yet; the run is Cancelled with who asked and why."""
    run_id = new_run_id()
    store.runs.create(run_id, "etl", state=RunState.PENDING)
    reason = draw(st.none() | names)
    detail = {"flow_run_id": run_id, "reason": reason, "requested_by": "fuzz"}

    def check(run: FlowRun) -> None:
        assert run.state is RunState.CANCELLED, run
        assert run.message is not None
        assert "fuzz" in run.message

    return Good(body_of(FlowRunCancelRequested, detail), run_id, check)


# bad records for events about runs or flows that do not exist


def unregistered_flow(store: Store, draw: Draw) -> Bad:
    """A well-formed request the user must fix: unknown flow or version, unknown parameter."""
    detail: dict[str, Any] = draw(
        st.sampled_from(
            [
                {"flow": f"no-such-flow-{uuid.uuid4().hex[:6]}"},
                {"flow": "etl", "version": 999},
                {"flow": "etl", "parameters": {"rowz": 1}},
            ]
        )
    )
    detail["flow_run_id"] = new_run_id()
    return Bad(body_of(FlowRunRequested, detail), "unknown flow")


def unknown_run(model: type[BaseModel]) -> BadFactory:
    """A valid ``model`` event for a run that does not exist."""

    def make(store: Store, draw: Draw) -> Bad:
        detail = {**draw(VALID_DETAILS[model]), "flow_run_id": new_run_id()}
        detail.pop("heartbeat", None)  # a heartbeat for an unknown run is merely ignored
        return Bad(body_of(model, detail), "unknown run")

    return make


@dataclass(frozen=True)
class HandlerCase:
    """One handler under fuzz. ``name``: its batch function, in the handler module of the same
    name (``dispatch_batch`` in ``flowrelay.handlers.dispatch``); ``takes``:
    the detail models it accepts (the first is the one near-valid records break); ``setup``:
    the state a run it acts on is in beforehand (None: it makes its runs)."""

    name: str
    takes: tuple[type[BaseModel], ...]
    good: GoodFactory
    unknown: BadFactory
    setup: RunState | None = None

    def __str__(self) -> str:
        return self.name

    @property
    def handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        module = importlib.import_module(f"flowrelay.handlers.{self.name.removesuffix('_batch')}")
        function: Callable[[dict[str, Any], Any], dict[str, Any]] = getattr(module, self.name)
        return function

    @property
    def wrong_models(self) -> list[type[BaseModel]]:
        return [model for model in EVERY_DETAIL_MODEL if model not in self.takes]


#: Every event the stack's queues may carry: flowrelay's own and ECS's task events.
EVERY_DETAIL_MODEL: list[type[BaseModel]] = [*DETAIL_MODELS.values(), EcsTaskStateChange]
#: The handlers under fuzz.
HANDLERS = [
    HandlerCase("dispatch_batch", (FlowRunRequested,), good_request, unregistered_flow),
    HandlerCase(
        "record_state_batch",
        (FlowRunStateChanged, EcsTaskStateChange, TaskRunStateChanged, FlowRunClusterChanged),
        good_state_event,
        unknown_run(FlowRunStateChanged),
        setup=RunState.SUBMITTED,
    ),
    HandlerCase(
        "cancel_batch",
        (FlowRunCancelRequested,),
        good_cancel,
        unknown_run(FlowRunCancelRequested),
        setup=RunState.RUNNING,
    ),
]

# bad records of every kind


def garbage(case: HandlerCase, store: Store, draw: Draw) -> Bad:
    body = draw(garbage_bodies.filter(lambda body: rejection(body) is not None))
    return Bad(body, "garbage")


def about_run(case: HandlerCase, store: Store, body: str, kind: str, run_id: str) -> Bad:
    """A bad record naming ``run_id``; the run exists (in the case's setup state) when the
    handler needs one to act on."""
    if case.setup is None:
        return Bad(body, kind)
    store.runs.create(run_id, "etl", state=case.setup)
    return Bad(body, kind, run_id)


def wrong_detail_type(case: HandlerCase, store: Store, draw: Draw) -> Bad:
    """A valid event this function does not take, about an existing run."""
    model = draw(st.sampled_from(case.wrong_models))
    run_id = new_run_id()
    detail = draw(VALID_DETAILS[model])
    if model is EcsTaskStateChange:
        detail["group"] = f"flowrelay:{run_id}"
    else:
        detail["flow_run_id"] = run_id
    return about_run(case, store, body_of(model, detail), "wrong detail-type", run_id)


def near_valid_event(case: HandlerCase, store: Store, draw: Draw) -> Bad:
    """A good event for this function with one field removed, mistyped, wrong or added."""
    model = case.takes[0]
    run_id = new_run_id()
    detail = {**draw(VALID_DETAILS[model]), "flow_run_id": run_id}
    if model is FlowRunRequested:
        detail["flow"] = "etl"
    broken = draw(
        near_valid(model, detail).filter(
            lambda candidate: rejection(body_of(model, candidate.detail)) is not None
        )
    )
    kind = f"near-valid ({broken.mutation} {broken.field})"
    return about_run(case, store, body_of(model, broken.detail), kind, run_id)


def unknown(case: HandlerCase, store: Store, draw: Draw) -> Bad:
    return case.unknown(store, draw)


BAD_KINDS: dict[str, Callable[[HandlerCase, Store, Draw], Bad]] = {
    "garbage": garbage,
    "wrong detail-type": wrong_detail_type,
    "near-valid": near_valid_event,
    "unknown": unknown,
}


# --- checks -------------------------------------------------------------------------------------


def named_run(body: str) -> str | None:
    """The run a body names in ``detail.flow_run_id``, if any."""
    try:
        run_id = json.loads(body)["detail"]["flow_run_id"]
    except (ValueError, TypeError, KeyError):
        return None
    return run_id if isinstance(run_id, str) else None


def check_rejected(
    case: HandlerCase, store: Store, bad: Bad, message_id: str, failed: bool, logs: LogCapture
) -> None:
    """A bad record: reported failed with its reason logged, or recorded on its run."""
    if failed:
        logged = [line for line in logs.problems() if message_id in line]
        assert logged, f"{case}: no warning or error names failed message {message_id} ({bad})"
        if bad.run_id is not None:
            run = store.runs.get(bad.run_id)
            assert run is not None
            assert run.state is case.setup, f"{bad} changed {run}"
        return
    run_id = named_run(bad.body)
    assert run_id is not None, f"{case}: {bad} is neither failed nor about a run"
    run = store.runs.get(run_id)
    assert run is not None, f"{case}: {bad} is neither failed nor recorded on a run"
    assert run.state is RunState.FAILED, (bad, run)
    assert run.message, (bad, run)
    reason = rejection(bad.body)
    if reason is not None:
        assert run.message == f"rejected request: {reason}", (bad, run)


def failures(response: dict[str, Any]) -> set[str]:
    return {item["itemIdentifier"] for item in response["batchItemFailures"]}


# --- the fuzz test ------------------------------------------------------------------------------


def one_batch(*bodies: str) -> tuple[dict[str, Any], list[str]]:
    """An SQS event of ``bodies`` with unique message ids, and the ids."""
    event = sqs_batch(*bodies)
    message_ids = [str(uuid.uuid4()) for _ in bodies]
    for record, message_id in zip(event["Records"], message_ids, strict=True):
        record["messageId"] = message_id
    return event, message_ids


def present(cases: list[HandlerCase]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.name,
        )
        for case in cases
    ]


@pytest.mark.parametrize("case", present(HANDLERS))
@FUZZ
@given(data=st.data())
def test_bad_records_never_block_good_ones(
    case: HandlerCase, runtime: Store, logs: LogCapture, data: st.DataObject
) -> None:
    store = runtime
    goods = [case.good(store, data.draw) for _ in range(data.draw(st.integers(0, 2)))]
    kinds = data.draw(
        st.lists(st.sampled_from(list(BAD_KINDS)), min_size=1, max_size=4),
        label="bad kinds",
    )
    bads = [BAD_KINDS[kind](case, store, data.draw) for kind in kinds]
    records: list[Good | Bad] = data.draw(st.permutations([*goods, *bads]), label="order")
    event, message_ids = one_batch(*(record.body for record in records))
    for sqs_record in event["Records"]:  # up to the last delivery before the dead-letter queue
        receives = data.draw(st.integers(1, 5), label="ApproximateReceiveCount")
        sqs_record["attributes"]["ApproximateReceiveCount"] = str(receives)
    logs.lines.clear()

    response = case.handler(event, Context())

    assert isinstance(response, dict)
    assert set(response) == {"batchItemFailures"}
    failed = failures(response)
    assert failed <= set(message_ids)
    for record, message_id in zip(records, message_ids, strict=True):
        if isinstance(record, Good):
            assert message_id not in failed, f"{case}: good record failed: {record.body}"
            run = store.runs.get(record.run_id)
            assert run is not None, record
            record.check(run)
        else:
            check_rejected(case, store, record, message_id, message_id in failed, logs)


# --- what fuzzing found, fixed: minimal examples -----------------------------------------------


def lines_naming(logs: LogCapture, *words: str) -> list[str]:
    return [line for line in logs.problems() if all(word in line for word in words)]


@pytest.mark.parametrize("case", present(HANDLERS))
def test_a_batch_of_only_bad_records_returns_its_failures(
    case: HandlerCase, runtime: Store, logs: LogCapture
) -> None:
    event, (message_id,) = one_batch("not json")
    assert case.handler(event, Context()) == {"batchItemFailures": [{"itemIdentifier": message_id}]}


def test_dispatch_says_why_it_rejects_an_event_of_another_detail_type(
    runtime: Store, logs: LogCapture
) -> None:
    good = good_request(runtime, simplest)
    bad = body_of(
        FlowRunStateChanged, {"flow_run_id": new_run_id(), "state": "Running", "source": "runner"}
    )
    event, (_, bad_id) = one_batch(good.body, bad)
    response = dispatch_batch(event, Context())
    assert failures(response) == {bad_id}
    assert lines_naming(logs, bad_id, "Flow Run State Changed"), logs.problems()


WRONG_DETAIL_TYPES: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "record_state_batch": (FlowRunRequested, {"flow": "etl", "flow_run_id": "fz-wrong"}),
    "cancel_batch": (
        FlowRunStateChanged,
        {"flow_run_id": "fz-wrong", "state": "Running", "source": "runner"},
    ),
}


@pytest.mark.parametrize("case", present([c for c in HANDLERS if c.name in WRONG_DETAIL_TYPES]))
def test_an_event_of_another_detail_type_is_logged_with_its_reason(
    case: HandlerCase, runtime: Store, logs: LogCapture
) -> None:
    model, detail = WRONG_DETAIL_TYPES[case.name]
    good = case.good(runtime, simplest)
    event, (_, bad_id) = one_batch(good.body, body_of(model, detail))
    response = case.handler(event, Context())
    assert failures(response) == {bad_id}
    assert lines_naming(logs, bad_id, detail_type_of(model)), logs.problems()


@pytest.mark.parametrize(
    "case", present([c for c in HANDLERS if c.name in ("record_state_batch", "cancel_batch")])
)
def test_an_event_for_an_unknown_run_is_logged_with_its_reason(
    case: HandlerCase, runtime: Store, logs: LogCapture
) -> None:
    run_id = new_run_id()
    detail = {"flow_run_id": run_id}
    if case.takes[0] is FlowRunStateChanged:
        detail.update(state="Running", source="runner")
    good = case.good(runtime, simplest)
    event, (_, bad_id) = one_batch(good.body, body_of(case.takes[0], detail))
    response = case.handler(event, Context())
    assert failures(response) == {bad_id}
    assert lines_naming(logs, bad_id, run_id), logs.problems()


def test_a_malformed_request_does_not_fail_a_launched_run(runtime: Store, logs: LogCapture) -> None:
    run_id = new_run_id()
    request = body_of(FlowRunRequested, {"flow": "etl", "flow_run_id": run_id})
    event, _ = one_batch(request)
    assert dispatch_batch(event, Context()) == {"batchItemFailures": []}
    assert runtime.runs.get(run_id).state is RunState.SUBMITTED  # type: ignore[union-attr]
    malformed = body_of(FlowRunRequested, {"flow": "etl", "flow_run_id": run_id, "paramters": {}})
    event, _ = one_batch(malformed, body_of(FlowRunRequested, {"flow": "etl"}))
    dispatch_batch(event, Context())
    run = runtime.runs.get(run_id)
    assert run is not None
    assert run.state is RunState.SUBMITTED, run.message


def test_a_malformed_request_with_an_invalid_run_id_creates_no_run(
    runtime: Store, logs: LogCapture
) -> None:
    run_id = new_run_id() + "\n"
    malformed = body_of(FlowRunRequested, {"flow": "etl", "flow_run_id": run_id})
    event, (bad_id, _) = one_batch(malformed, body_of(FlowRunRequested, {"flow": "etl"}))
    response = dispatch_batch(event, Context())
    assert runtime.runs.get(run_id) is None
    assert failures(response) == {bad_id}


def test_a_request_too_deep_to_store_is_rejected_with_a_reason(
    runtime: Store, logs: LogCapture
) -> None:
    run_id = new_run_id()
    body = body_of(FlowRunRequested, {"flow": "etl", "flow_run_id": run_id, "parameters": {}})
    deep = body.replace('"parameters": {}', '"parameters": {"rows": ' + "[" * 256 + "]" * 256 + "}")
    good = good_request(runtime, simplest)
    event, (bad_id, _) = one_batch(deep, good.body)
    response = dispatch_batch(event, Context())
    assert failures(response) <= {bad_id}
    good.check(runtime.runs.get(good.run_id))  # type: ignore[arg-type]
    check_rejected(
        HANDLERS[0], runtime, Bad(deep, "too deep"), bad_id, bad_id in failures(response), logs
    )
