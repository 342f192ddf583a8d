"""The dispatcher killed at every AWS call it makes, then its message delivered again.

A dispatch is a sequence of AWS calls (DynamoDB for the run, ECS for the task). Each case kills
the dispatcher at one of them, in one of two phases, and then delivers the same request again
as SQS would, to a new dispatcher (a new process: nothing is carried over in memory):

- ``before``: the call never reached AWS (the process died just before sending it);
- ``after``: AWS did it, and the process died before it saw the answer.

The kill is ``Killed``, a ``BaseException``: no ``except Exception`` in flowrelay can swallow it,
as nothing in a process survives its death. It is raised from botocore's ``before-call`` and
``after-call`` events on the real boto3 clients the store and the launcher use, against moto over
HTTP; nothing of flowrelay is mocked. RunTask's ambiguous answers (a read timeout or a lost
connection, after ECS started the task or before it was asked) are injected the same way, as
botocore's own errors, so the dispatcher takes its ``outcome_unknown`` path. A subset is killed
a second time, while the redelivery takes over the dead dispatcher's launch claim.

What every case must show once the redeliveries are done: the run exists and is Submitted (or
Pending with a ``retry_at``: waiting for its retry), never Failed because of the fault; at most
one ECS task per launch attempt (moto does not honour RunTask's ``clientToken``, so this rests on
the dispatcher looking for the attempt's task before starting one); once Submitted, exactly one
task, and the run records that task.

The figures (cases, runs lost, double launches, by kind and phase) are printed when the module
ends (``pytest -s``), written to ``fault-injection-dispatch.json`` in pytest's base temporary
directory, and held by ``test_figures``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Literal

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from flowrelay.control.dispatch import LAUNCH_LEASE, Dispatcher, DispatchOutcome, RetryLater
from flowrelay.control.store import LaunchClaim, Store
from flowrelay.core.events import ParsedEvent, parse_event
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.core.runs import run_id_for
from flowrelay.launchers.ecs import EcsLauncher
from flowrelay.launchers.ecs.names import ATTEMPT_TAG, STARTED_BY
from tests.support.aws import (
    Clock,
    aligned,
    create_run_table,
    default_network,
    ecs_tasks_kept_running,
    point_boto3_at,
    register_etl,
    report_figures,
    tasks_of_run,
    violation_lines,
)
from tests.support.strategies import envelope

Phase = Literal["before", "after"]
PHASES: tuple[Phase, ...] = ("before", "after")
BUS = "flowrelay"
#: Clean deliveries after the faulted ones, at most, before a run must have settled.
MAX_REDELIVERIES = 4

#: The AWS calls of one clean dispatch of a new run by a new dispatcher, in order. Each run asks
#: for its own image, so its task definition is new: the launcher describes the family (ECS
#: answers "unable to describe", a ClientException) and registers it.
CLEAN_DISPATCH = (
    "dynamodb:BatchGetItem",  # 0 the run (not there yet) and its registered flow
    "dynamodb:Query",  # 1 the launch targets (a new dispatcher: its cache is empty)
    "dynamodb:Query",  # 2 the concurrency limits (none apply)
    "dynamodb:PutItem",  # 3 create the run with attempt 1 claimed for LAUNCH_LEASE
    "ecs:DescribeTaskDefinition",  # 4 is the content-addressed family registered?
    "ecs:RegisterTaskDefinition",  # 5 no: register it
    "ecs:RunTask",  # 6 start the task (clientToken <run id>-1)
    "dynamodb:TransactWriteItems",  # 7 record Submitted and the task (decided from the run held)
)
#: The AWS calls of the delivery that takes over the launch claim of a dispatcher killed just
#: after creating the run claimed (call 3, after), once the claim's lease ran out. The claim is
#: resumed (the attempt was claimed before), so the launcher looks for the attempt's task before
#: RunTask: flowrelay's running tasks, then its stopped ones (the cluster always has both: see
#: ``_start_other_runs_tasks``).
TAKEOVER = (
    "dynamodb:BatchGetItem",  # 0 the run (Pending, claimed by the dead dispatcher) and its flow
    "dynamodb:Query",  # 1 the launch targets
    "dynamodb:Query",  # 2 the concurrency limits
    "dynamodb:UpdateItem",  # 3 claim attempt 1: the dead dispatcher's lease ran out
    "ecs:DescribeTaskDefinition",  # 4
    "ecs:RegisterTaskDefinition",  # 5 the dead dispatcher never got this far
    "ecs:ListTasks",  # 6 the attempt's task, among flowrelay's running tasks
    "ecs:DescribeTasks",  # 7 (their group and attempt tag)
    "ecs:ListTasks",  # 8 and among its stopped ones
    "ecs:DescribeTasks",  # 9
    "ecs:RunTask",  # 10 not found: start it
    "dynamodb:TransactWriteItems",  # 11 record Submitted
)


class Killed(BaseException):
    """The dispatcher's process died here."""


def _kill(call: str) -> BaseException:
    return Killed(call)


def _read_timeout(call: str) -> BaseException:
    return ReadTimeoutError(endpoint_url=f"http://127.0.0.1/ ({call})")


def _connection_lost(call: str) -> BaseException:
    return EndpointConnectionError(endpoint_url=f"http://127.0.0.1/ ({call})")


def _http_500(call: str) -> BaseException:
    """What moto answered for a Fargate RunTask without security groups: a bare HTTP 500."""
    response: Any = {
        "Error": {"Code": "500", "Message": "<!doctype html><title>500 Internal</title>"},
        "ResponseMetadata": {"HTTPStatusCode": 500},
    }
    return ClientError(response, call.rsplit(":", maxsplit=1)[-1])


@dataclass(frozen=True)
class Fault:
    """Raise ``error(call)`` at call ``index`` (0-based) of one delivery, in ``phase``; that call
    must be ``call``. ``index`` None: at the delivery's first ``call``, wherever it comes."""

    index: int | None
    phase: Phase
    call: str
    error: Callable[[str], BaseException] = _kill

    @property
    def kills(self) -> bool:
        return self.error is _kill

    @property
    def label(self) -> str:
        what = "" if self.kills else f"{self.error.__name__.lstrip('_').replace('_', '-')} at "
        where = "" if self.index is None else f"{self.index}:"
        return f"{what}{where}{self.call}/{self.phase}"


class CallTrace:
    """Records the AWS calls of one delivery, made on any of the clients it is attached to, in
    order, and which of them AWS answered; raises the faults at their calls."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        self.faults = list(faults)
        self.calls: list[str] = []
        self.answered: list[str] = []
        self.fired: list[Fault] = []
        self.mismatches: list[str] = []

    def before(self, model: Any, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}:{model.name}")
        self._maybe_fail("before")

    def after(self, model: Any, **_: Any) -> None:
        self.answered.append(self.calls[-1])
        self._maybe_fail("after")

    def _maybe_fail(self, phase: Phase) -> None:
        index = len(self.calls) - 1
        for fault in self.faults:
            here = fault.index == index or (fault.index is None and self.calls[index] == fault.call)
            if here and fault.phase == phase and fault not in self.fired:
                if self.calls[index] != fault.call:
                    self.mismatches.append(f"call {index} is {self.calls[index]}, not {fault.call}")
                self.fired.append(fault)
                raise fault.error(fault.call)


@dataclass
class World:
    """One table, one cluster and one target in moto, shared by every case of the module (each
    case has its own run), and the clients every dispatcher of the module uses."""

    dynamodb: Any
    ecs: Any
    table: str
    cluster: str
    clock: Clock

    def store(self) -> Store:
        return Store(self.dynamodb, self.table, clock=self.clock)

    def tasks_of_run(self, run_id: str) -> list[dict[str, Any]]:
        """Every task in moto that belongs to the run, running or stopped, with its tags."""
        return tasks_of_run(self.ecs, self.cluster, run_id)


def _start_other_runs_tasks(ecs: Any, cluster: str, network: dict[str, Any]) -> None:
    """One running and one stopped task of another run, as a busy cluster has: every search
    for an attempt's task then lists and describes tasks (the calls TAKEOVER numbers), whatever
    ran before in the module."""
    family = ecs.register_task_definition(
        family="faults-other-run",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "flow", "image": "example/flows:other", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    arns = [
        ecs.run_task(
            cluster=cluster,
            taskDefinition=family,
            launchType="FARGATE",
            startedBy=STARTED_BY,
            group="flowrelay:other-run",
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": network["subnets"],
                    "securityGroups": network["security_groups"],
                }
            },
        )["tasks"][0]["taskArn"]
        for _ in range(2)
    ]
    ecs.stop_task(cluster=cluster, task=arns[1], reason="another run's stopped task")


@pytest.fixture(scope="module")
def world(moto_server: str) -> Iterator[World]:
    """What ``aws_env``, ``run_table``, ``ecs``, ``network`` and ``cluster`` give one test, made
    once for the module (those fixtures are per test; one table and cluster keep this fast)."""
    with (
        pytest.MonkeyPatch.context() as env,
        ecs_tasks_kept_running(moto_server),
    ):
        point_boto3_at(env, moto_server, "/nonexistent/flowrelay-no-aws-config")
        dynamodb = boto3.client("dynamodb")
        table = f"flowrelay-faults-{uuid.uuid4().hex[:8]}"
        create_run_table(dynamodb, table)
        try:
            ecs = boto3.client("ecs", config=Config(retries={"mode": "standard"}))
            cluster = f"faults-{uuid.uuid4().hex[:8]}"
            ecs.create_cluster(clusterName=cluster)
            network = default_network()
            world = World(dynamodb, ecs, table, cluster, Clock())
            _start_other_runs_tasks(ecs, cluster, network)
            store = register_etl(world.store())
            store.targets.put(
                Target(
                    name="fargate",
                    kind="ecs",
                    settings={"cluster": cluster, "image": "example/flows:faults", **network},
                )
            )
            yield world
        finally:
            dynamodb.delete_table(TableName=table)


# --- deliveries -------------------------------------------------------------------------------


def new_request() -> ParsedEvent:
    """A request for a new run, with its own image (so its own task definition family)."""
    key = f"faults-{uuid.uuid4().hex}"
    detail = {
        "flow": "etl",
        "idempotency_key": key,
        "run_config": {"type": "ECSRun", "image": f"example/flows:{key[-12:]}"},
    }
    return parse_event(envelope("Flow Run Requested", detail, event_id=str(uuid.uuid4())))


def run_id_of(event: ParsedEvent) -> str:
    key = event.detail.idempotency_key
    assert key is not None
    return run_id_for(key)


@dataclass
class Delivery:
    """One delivery of the request to a new dispatcher: the AWS calls it made, those AWS
    answered, and how it ended (a DispatchOutcome, or the exception: Killed, RetryLater, ...)."""

    calls: list[str]
    answered: list[str]
    ended: DispatchOutcome | BaseException

    def describe(self) -> str:
        if isinstance(self.ended, DispatchOutcome):
            ended = str(self.ended.state) + (" (launched)" if self.ended.launched else "")
        elif isinstance(self.ended, RetryLater):
            ended = f"RetryLater({self.ended.reason})"
        else:
            ended = f"{type(self.ended).__name__}({self.ended})"
        looked = "yes" if "ecs:ListTasks" in self.calls else "no"
        started = "yes" if "ecs:RunTask" in self.answered else "no"
        return f"{ended} [looked for the task: {looked}; RunTask done: {started}]"


def deliver(world: World, event: ParsedEvent, faults: Sequence[Fault] = ()) -> Delivery:
    """Deliver the request once to a new dispatcher, launcher and store (a new process) over
    the module's clients, with the faults armed on both clients."""
    trace = CallTrace(faults)
    clients = (world.dynamodb, world.ecs)
    for client in clients:
        client.meta.events.register("before-call.*.*", trace.before)
        client.meta.events.register("after-call.*.*", trace.after)
    launcher = EcsLauncher(world.ecs, table_name=world.table, bus_name=BUS)
    dispatcher = Dispatcher(world.store(), {"ecs": launcher})
    ended: DispatchOutcome | BaseException
    try:
        ended = dispatcher.handle_request(event)
    except (Killed, Exception) as exc:
        ended = exc
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.*.*", trace.before)
            client.meta.events.unregister("after-call.*.*", trace.after)
    missed = [fault for fault in faults if fault not in trace.fired]
    assert not missed, f"faults never reached: {missed}; the calls were {trace.calls}"
    assert not trace.mismatches, f"{trace.mismatches}; the calls were {trace.calls}"
    return Delivery(trace.calls, trace.answered, ended)


def move_past_lease_and_backoff(world: World, run_id: str) -> None:
    """Time passes until the run's launch claim and its retry backoff (if any) are over."""
    run = world.store().runs.get(run_id)
    until = world.clock.now + LAUNCH_LEASE
    if run is not None and run.retry_at is not None:
        until = max(until, run.retry_at)
    world.clock.now = until + timedelta(seconds=1)


def redeliver(world: World, event: ParsedEvent) -> list[Delivery]:
    """Deliver the request again, at once, until a delivery ends with an outcome, at most
    ``MAX_REDELIVERIES`` times; after RetryLater time moves past the lease and the backoff."""
    deliveries: list[Delivery] = []
    for _ in range(MAX_REDELIVERIES):
        delivery = deliver(world, event)
        deliveries.append(delivery)
        if not isinstance(delivery.ended, RetryLater):
            break
        move_past_lease_and_backoff(world, run_id_of(event))
    return deliveries


# --- the scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """``faults[n]`` are armed on delivery ``n`` of a new run's request (each of those ends by
    its faults; later ones take over after the lease); clean redeliveries follow."""

    name: str
    kind: str
    faults: tuple[tuple[Fault, ...], ...]
    #: A delivery dies (or gets no answer) after RunTask started a task and before the run
    #: records it: the redelivery must find that task rather than start another.
    task_left_behind: bool
    #: The launch can never succeed: the run must end Failed, saying why, with no task.
    gives_up: bool = False

    @property
    def phase(self) -> Phase:
        return self.faults[-1][-1].phase


def leaves_task_behind(calls: Sequence[str], fault: Fault) -> bool:
    """Whether a delivery that makes ``calls`` and dies at ``fault`` leaves a started task the
    run does not record."""
    run_task, last = calls.index("ecs:RunTask"), len(calls) - 1
    assert fault.index is not None, "a kill is placed by its index"
    started = fault.index > run_task or (fault.index == run_task and fault.phase == "after")
    recorded = fault.index == last and fault.phase == "after"
    return started and not recorded


KILLS = [
    Scenario(
        name=fault.label,
        kind="kill",
        faults=((fault,),),
        task_left_behind=leaves_task_behind(CLEAN_DISPATCH, fault),
    )
    for fault in (
        Fault(index, phase, call) for index, call in enumerate(CLEAN_DISPATCH) for phase in PHASES
    )
]

RUN_TASK = CLEAN_DISPATCH.index("ecs:RunTask")
_TIMEOUT = Fault(RUN_TASK, "after", "ecs:RunTask", _read_timeout)
#: After RunTask goes unanswered the dispatcher records the try on the run and releases its claim
#: (keeping the attempt): TransactWriteItems, the call after RunTask.
_RELEASE = RUN_TASK + 1
_LOST = Fault(RUN_TASK, "after", "ecs:RunTask", _connection_lost)
_UNSENT = Fault(RUN_TASK, "before", "ecs:RunTask", _connection_lost)
AMBIGUOUS = [
    Scenario(_TIMEOUT.label, "ambiguous", ((_TIMEOUT,),), task_left_behind=True),
    Scenario(_LOST.label, "ambiguous", ((_LOST,),), task_left_behind=True),
    Scenario(_UNSENT.label, "ambiguous", ((_UNSENT,),), task_left_behind=False),
    *(
        Scenario(
            name=f"{_TIMEOUT.label} then killed at {release.label}",
            kind="ambiguous then kill",
            faults=((_TIMEOUT, release),),
            task_left_behind=True,
        )
        for release in (Fault(_RELEASE, phase, "dynamodb:TransactWriteItems") for phase in PHASES)
    ),
]
#: Every try of an attempt goes unanswered before ECS acts (ECS answers HTTP 500, or the
#: connection is lost): after the retry policy's tries (5), the dispatcher looks for a task once
#: more and fails the run with the last answer, instead of trying for ever.
UNANSWERED_EVERY_TRY = [
    Scenario(
        name=f"{error.__name__.lstrip('_').replace('_', '-')} at every ecs:RunTask/before",
        kind="unanswered every try",
        faults=tuple((Fault(None, "before", "ecs:RunTask", error),) for _ in range(5)),
        task_left_behind=False,
        gives_up=True,
    )
    for error in (_http_500, _connection_lost)
]

_CLAIMED = Fault(CLEAN_DISPATCH.index("dynamodb:PutItem"), "after", "dynamodb:PutItem")
SECOND_KILLS = [
    Scenario(
        name=f"killed at {_CLAIMED.label}, then at takeover {fault.label}",
        kind="second kill",
        faults=((_CLAIMED,), (fault,)),
        task_left_behind=leaves_task_behind(TAKEOVER, fault),
    )
    for fault in (
        Fault(index, phase, call) for index, call in enumerate(TAKEOVER) for phase in PHASES
    )
]


def run_id_of_last_case(figures: Figures) -> str:
    return figures.results[-1].run_id


def params(scenarios: list[Scenario]) -> list[Any]:
    return [
        pytest.param(
            scenario,
            id=scenario.name,
        )
        for scenario in scenarios
    ]


# --- what a case must show --------------------------------------------------------------------


@dataclass
class CaseResult:
    run_id: str
    case: str
    kind: str
    phase: str
    deliveries: list[str]
    state: str | None
    retry_at: str | None
    task_arn: str | None
    tasks: int
    tasks_by_attempt: dict[str, int]
    task_left_behind: bool
    lost: bool = False
    double_launch: bool = False
    failed_by_fault: bool = False
    stuck: bool = False
    wrong_task: bool = False
    gave_up: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def examine(
    world: World, scenario: Scenario, event: ParsedEvent, deliveries: list[Delivery]
) -> CaseResult:
    run_id = run_id_of(event)
    run = world.store().runs.get(run_id)
    tasks = world.tasks_of_run(run_id)
    by_attempt = Counter(
        next((tag["value"] for tag in task.get("tags", []) if tag["key"] == ATTEMPT_TAG), "?")
        for task in tasks
    )
    result = CaseResult(
        run_id=run_id,
        case=scenario.name,
        kind=scenario.kind,
        phase=scenario.phase,
        deliveries=[delivery.describe() for delivery in deliveries],
        state=str(run.state) if run else None,
        retry_at=run.retry_at.isoformat() if run and run.retry_at else None,
        task_arn=run.infrastructure.get("task_arn") if run else None,
        tasks=len(tasks),
        tasks_by_attempt=dict(sorted(by_attempt.items())),
        task_left_behind=scenario.task_left_behind,
    )
    if any(count > 1 for count in by_attempt.values()):
        result.double_launch = True
        result.problems.append(f"tasks per attempt: {result.tasks_by_attempt}")
    if run is None:
        result.lost = True
        result.problems.append("the run is gone")
    elif scenario.gives_up:
        message = run.message or ""
        result.gave_up = run.state is RunState.FAILED and "went unanswered" in message
        if not result.gave_up or "the last answer: " not in message or tasks:
            result.problems.append(
                f"the run is {run.state} ({message!r}) with {len(tasks)} tasks; it must end "
                "Failed, saying how many tries went unanswered and the last answer, with none"
            )
    elif run.state is RunState.FAILED:
        result.failed_by_fault = True
        result.problems.append(f"the run is Failed: {run.message}")
    elif run.state is RunState.SUBMITTED:
        arns = [task["taskArn"] for task in tasks]
        if len(tasks) != 1:
            result.double_launch = result.double_launch or len(tasks) > 1
            result.problems.append(
                f"Submitted with {len(tasks)} tasks; it records {result.task_arn}"
            )
        elif arns[0] != result.task_arn:
            result.wrong_task = True
            result.problems.append(f"the run records {result.task_arn}, the task is {arns[0]}")
        elif by_attempt.get(str(run.attempt)) != 1:
            result.wrong_task = True
            result.problems.append(f"its task is not attempt {run.attempt}'s: {by_attempt}")
    elif not (run.state in (RunState.PENDING, RunState.SCHEDULED) and run.retry_at is not None):
        result.stuck = True
        result.problems.append(
            f"the run is {run.state} with no retry due after {len(deliveries)} deliveries"
        )
    return result


class Figures:
    """Every case's result, for the summary."""

    COLUMNS = (
        "cases",
        "ok",
        "tasks_left_behind",
        "submitted",
        "waiting_for_retry",
        "runs_lost",
        "runs_stuck",
        "failed_by_fault",
        "double_launches",
        "wrong_task_recorded",
        "gave_up_with_reason",
        "deliveries",
    )

    def __init__(self) -> None:
        self.results: list[CaseResult] = []

    @staticmethod
    def count(results: list[CaseResult]) -> dict[str, int]:
        return {
            "cases": len(results),
            "ok": sum(r.ok for r in results),
            "tasks_left_behind": sum(r.task_left_behind for r in results),
            "submitted": sum(r.state == RunState.SUBMITTED for r in results),
            "waiting_for_retry": sum(
                r.state in (RunState.PENDING, RunState.SCHEDULED) and r.retry_at is not None
                for r in results
            ),
            "runs_lost": sum(r.lost for r in results),
            "runs_stuck": sum(r.stuck for r in results),
            "failed_by_fault": sum(r.failed_by_fault for r in results),
            "double_launches": sum(r.double_launch for r in results),
            "wrong_task_recorded": sum(r.wrong_task for r in results),
            "gave_up_with_reason": sum(r.gave_up for r in results),
            "deliveries": sum(len(r.deliveries) for r in results),
        }

    def summary(self) -> dict[str, Any]:
        groups: dict[str, list[CaseResult]] = {}
        for result in self.results:
            groups.setdefault(f"{result.kind}/{result.phase}", []).append(result)
        return {
            "clean_dispatch_calls": list(CLEAN_DISPATCH),
            "takeover_calls": list(TAKEOVER),
            "total": self.count(self.results),
            "by_kind_and_phase": {key: self.count(value) for key, value in groups.items()},
            "violations": [asdict(r) for r in self.results if not r.ok],
        }

    def table(self) -> str:
        summary = self.summary()
        rows = [("", *self.COLUMNS)]
        for key, counts in [*summary["by_kind_and_phase"].items(), ("total", summary["total"])]:
            rows.append((key, *(str(counts[column]) for column in self.COLUMNS)))
        return aligned(rows)


@pytest.fixture(scope="module")
def figures(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Figures]:
    figures = Figures()
    yield figures
    if figures.results:
        path = tmp_path_factory.getbasetemp() / "fault-injection-dispatch.json"
        summary = figures.summary()
        path.write_text(json.dumps(summary, indent=2))
        lines = [*figures.table().splitlines(), f"(as JSON: {path})"]
        lines.extend(violation_lines(summary["violations"]))
        report_figures(
            pytestconfig, "fault injection: the dispatcher killed at its AWS calls", lines
        )


def play(world: World, figures: Figures, scenario: Scenario) -> None:
    """A new run's request delivered with the scenario's faults, then again until it settles;
    the result is recorded, then held to the guarantees."""
    event = new_request()
    deliveries: list[Delivery] = []
    for number, faults in enumerate(scenario.faults):
        if number:
            move_past_lease_and_backoff(world, run_id_of(event))
        delivery = deliver(world, event, faults)
        deliveries.append(delivery)
        if any(fault.kills for fault in faults):
            assert isinstance(delivery.ended, Killed), f"not killed: {delivery.describe()}"
        else:
            assert isinstance(delivery.ended, RetryLater), delivery.describe()
            assert "went unanswered" in delivery.ended.reason
    deliveries += redeliver(world, event)
    result = examine(world, scenario, event, deliveries)
    figures.results.append(result)
    assert result.ok, f"{result.case}: {'; '.join(result.problems)}; deliveries: " + " | ".join(
        result.deliveries
    )


# --- the tests --------------------------------------------------------------------------------


def test_a_clean_dispatch_makes_these_calls(world: World) -> None:
    """The calls the kill cases are numbered by (update CLEAN_DISPATCH when they change)."""
    event = new_request()
    delivery = deliver(world, event)
    assert isinstance(delivery.ended, DispatchOutcome), delivery.describe()
    assert delivery.ended.state is RunState.SUBMITTED
    assert tuple(delivery.calls) == CLEAN_DISPATCH
    assert len(world.tasks_of_run(run_id_of(event))) == 1


def test_a_takeover_after_a_kill_makes_these_calls(world: World) -> None:
    """The calls the second-kill cases are numbered by (update TAKEOVER when they change)."""
    event = new_request()
    assert isinstance(deliver(world, event, [_CLAIMED]).ended, Killed)
    busy = deliver(world, event)
    assert isinstance(busy.ended, RetryLater), busy.describe()
    move_past_lease_and_backoff(world, run_id_of(event))
    takeover = deliver(world, event)
    assert isinstance(takeover.ended, DispatchOutcome), takeover.describe()
    assert tuple(takeover.calls) == TAKEOVER


def test_a_claim_taken_over_after_its_lease_is_resumed(world: World) -> None:
    """The same attempt claimed again after its lease ran out is a resumed claim: the root of
    every takeover looking for the task a dead dispatcher may have started."""
    store = world.store()
    run, _ = store.runs.create(f"resumed-{uuid.uuid4().hex[:12]}", "etl")
    first = store.runs.claim_launch(run, 1, LAUNCH_LEASE)
    assert isinstance(first, LaunchClaim)
    assert not first.resumed
    move_past_lease_and_backoff(world, run.run_id)
    again = store.runs.claim_launch(run, 1, LAUNCH_LEASE)
    assert isinstance(again, LaunchClaim)
    assert again.resumed


@pytest.mark.parametrize("scenario", params(KILLS))
def test_killed_at_a_call_then_redelivered(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    play(world, figures, scenario)


@pytest.mark.parametrize("scenario", params(AMBIGUOUS))
def test_runtask_unanswered_then_redelivered(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    """RunTask raises botocore's own error (after: ECS started the task; before: it was never
    asked): the dispatcher releases its claim, keeping the attempt, and says RetryLater; the
    same attempt looks for its task when the request comes back."""
    play(world, figures, scenario)


@pytest.mark.parametrize("scenario", params(UNANSWERED_EVERY_TRY))
def test_a_launch_unanswered_every_time_fails_the_run_with_the_reason(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    """RunTask never gets an answer ECS acted on: each try is written on the run, backed off,
    and after the policy's tries the run is Failed with the last answer, not retried for ever."""
    play(world, figures, scenario)
    run = world.store().runs.get(run_id_of_last_case(figures))
    assert run is not None
    notes = [
        entry.message or ""
        for entry in world.store().runs.history(run.run_id)
        if entry.details.get("unanswered") and entry.state is RunState.PENDING
    ]
    assert [f"try {n} of 5" in note for n, note in enumerate(notes, 1)] == [True] * 5, notes


@pytest.mark.parametrize("scenario", params(SECOND_KILLS))
def test_killed_again_while_taking_over(world: World, figures: Figures, scenario: Scenario) -> None:
    """Killed just after claiming the launch; the delivery that takes the claim over once its
    lease ran out is killed too, at each of its calls; then the request comes back again."""
    play(world, figures, scenario)


def test_figures(figures: Figures) -> None:
    """Across every case that ran: no run lost, stuck or failed by a fault, no second task for
    an attempt, no wrong task recorded."""
    if not figures.results:
        pytest.skip("no fault case ran")
    summary = figures.summary()
    total = summary["total"]
    message = f"\n{figures.table()}\nviolations: {json.dumps(summary['violations'], indent=1)}"
    for key in (
        "runs_lost",
        "runs_stuck",
        "failed_by_fault",
        "double_launches",
        "wrong_task_recorded",
    ):
        assert total[key] == 0, message
