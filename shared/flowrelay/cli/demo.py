"""``flowrelay demo``: the whole system on this machine, and the example flows on each executor.

``run_control_plane_demo`` starts the embedded dev stack (moto for AWS, the Lambda functions
in-process, ECS tasks as local processes), registers the example flows and a launch target,
requests runs through the bus exactly as a user would (and cancels one, as ``flowrelay runs
cancel`` does), and prints each run's state timeline from DynamoDB. ``run_demo`` (``flowrelay demo
--local``) runs the example flows in this process on every executor.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.core.interrupts import raise_on_sigterm
from flowrelay.core.storage import Module
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.storage import load_flow


@dataclass
class DemoRun:
    title: str
    flow_path: str
    executor: Executor
    expect_success: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)


def demo_runs() -> list[DemoRun]:
    return [
        DemoRun(
            "A parameter and two tasks",
            "flowrelay.sdk.examples.hello:flow",
            LocalExecutor(),
            parameters={"name": "demo"},
        ),
        DemoRun(
            "The imperative API (set_upstream, bind)",
            "flowrelay.sdk.examples.imperative:flow",
            LocalExecutor(),
        ),
        DemoRun(
            "Map and reduce on a thread pool",
            "flowrelay.sdk.examples.etl:flow",
            LocalDaskExecutor("threads"),
            parameters={"rows": 20},
        ),
        DemoRun(
            "The same flow on a temporary Dask cluster (closed after the run)",
            "flowrelay.sdk.examples.etl:flow",
            DaskExecutor(
                cluster_kwargs={"processes": False, "n_workers": 2, "threads_per_worker": 2}
            ),
            parameters={"rows": 20},
        ),
        DemoRun(
            "Retries until an attempt succeeds",
            "flowrelay.sdk.examples.flaky:flow",
            LocalExecutor(),
        ),
        DemoRun(
            "A failure, named with its cause",
            "flowrelay.sdk.examples.failing:flow",
            LocalExecutor(),
            expect_success=False,
        ),
    ]


def run_demo(as_json: bool = False) -> int:
    """Run every demo flow; 0 when each ended as designed, 1 otherwise."""
    outcomes = []
    for number, run in enumerate(demo_runs(), start=1):
        flow = load_flow(Module(run.flow_path))
        if not as_json:
            render.stdout.rule(
                f"[bold]{number}. {run.title}[/]  ({run.flow_path} on {run.executor!r})"
            )
        started = time.perf_counter()
        with render.task_prints_to_stderr(enabled=as_json):
            state = flow.run(parameters=run.parameters, executor=run.executor)
        seconds = time.perf_counter() - started
        as_designed = state.is_successful() == run.expect_success
        outcomes.append(
            {
                "flow": flow.name,
                "executor": repr(run.executor),
                "state": state.name,
                "message": state.message,
                "as_designed": as_designed,
                "seconds": round(seconds, 3),
            }
        )
        if not as_json:
            render.print_run(flow, state)
            verdict = "[green]as designed[/]" if as_designed else "[red]NOT as designed[/]"
            render.stdout.print(f"{verdict} in {seconds:.2f}s\n")
    all_good = all(outcome["as_designed"] for outcome in outcomes)
    if as_json:
        print(json.dumps({"ok": all_good, "runs": outcomes}, indent=2))
    else:
        render.stdout.print(
            f"[bold]{sum(1 for o in outcomes if o['as_designed'])} of {len(outcomes)} "
            "demo runs ended as designed.[/]"
        )
    return 0 if all_good else 1


@dataclass
class ControlPlaneRun:
    """One run the control-plane demo requests, and how it should end: in state ``expected``,
    with ``expected_message`` in its message when given."""

    title: str
    flow: str
    expected: str
    labels: list[str] | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    expected_message: str | None = None
    run_config: dict[str, Any] | None = None
    #: It computes on an ephemeral Dask cluster on ECS: nothing of it may be left at the end.
    dask_cluster: bool = False
    #: Its runner is killed with SIGKILL once its Dask cluster has started.
    kill_runner: bool = False
    #: Requested by a fire of this clock of the flow's schedule, not by the demo.
    clock: str | None = None
    #: The restart (``runs retry``) of this run, once it failed and its cause is fixed.
    restart_of: ControlPlaneRun | None = None
    #: A line some message of its history must contain.
    expected_history: str | None = None
    #: It is subject to the demo's concurrency limit (at most one such run at once).
    limited: bool = False
    run_id: str = ""


def run_control_plane_demo(
    as_json: bool = False,
    timeout: float = 120.0,
    keep: bool = False,
    ui_socket: socket.socket | None = None,
) -> int:
    """Run the demo on a fresh dev stack; 0 when every run ended as designed. ``keep``: then
    keep the stack up until Ctrl-C, with the web UI served on ``ui_socket`` when given."""
    import tempfile
    import uuid

    from flowrelay.aws.bus import Publisher
    from flowrelay.control.monitor import waking_by
    from flowrelay.control.slots import Slots
    from flowrelay.control.store import Store
    from flowrelay.core.concurrency import ConcurrencyLimit
    from flowrelay.core.events import FlowRunCancelRequested, FlowRunRequested
    from flowrelay.core.routing import Target
    from flowrelay.core.runs import restart_key, run_id_for
    from flowrelay.devstack import DevStack
    from flowrelay.launchers.kinds import checked_target
    from flowrelay.sdk.flow import registration_for

    def say(line: str) -> None:
        if not as_json:
            render.stderr.print(line, markup=False, highlight=False)

    workdir = tempfile.mkdtemp(prefix="flowrelay-demo-")  # the restartable flow's warehouse

    warehouse_not_ready = ControlPlaneRun(
        "A run that fails in its last task (the warehouse is not ready)",
        "restartable",
        "Failed",
        parameters={"workdir": workdir},
        expected_message="the warehouse is not ready",
    )
    runs = [
        ControlPlaneRun("A run that succeeds", "hello", "Success", parameters={"name": "demo"}),
        ControlPlaneRun("A run that fails, naming the failing task", "failing", "Failed"),
        ControlPlaneRun(
            "A run that waits for a 'gpu' target, then runs when one is added",
            "etl",
            "Success",
            labels=["gpu"],
            parameters={"rows": 5},
        ),
        ControlPlaneRun(
            "A run cancelled while it runs: its ECS task is stopped",
            "sleeper",
            "Cancelled",
            parameters={"seconds": 60},
        ),
        ControlPlaneRun(
            "A run whose process is killed (SIGKILL): Crashed, with ECS's reason and its log",
            "crashing",
            "Crashed",
            expected_message="exited with code 137",
        ),
        ControlPlaneRun(
            "A run on an ephemeral Fargate Dask cluster (DaskCloudProviderEnvironment, adaptive "
            "1 to 3 workers): up for the map, down after it, closed with the run",
            "dask-fargate",
            "Success",
            parameters={"count": 24, "seconds": 0.5, "linger": 6},
            dask_cluster=True,
        ),
        ControlPlaneRun(
            "A run whose runner is killed (SIGKILL) while its Fargate Dask cluster computes: "
            "Crashed, and the monitor sweeps the cluster",
            "dask-sleeper",
            "Crashed",
            parameters={"seconds": 120},
            dask_cluster=True,
            kill_runner=True,
        ),
        ControlPlaneRun(
            "A scheduled fire of clock-1 (region eu), delivered twice: one run",
            "scheduled",
            "Success",
            parameters={"region": "eu"},
            clock="clock-1",
        ),
        ControlPlaneRun(
            "A scheduled fire of clock-2 (region us, label gpu): its own parameters and labels",
            "scheduled",
            "Success",
            parameters={"region": "us"},
            labels=["gpu"],
            clock="clock-2",
        ),
        warehouse_not_ready,
        ControlPlaneRun(
            "Its restart (flowrelay runs retry) once the warehouse is ready: extract's "
            "checkpointed result is reused, only load runs",
            "restartable",
            "Success",
            parameters={"workdir": workdir},
            restart_of=warehouse_not_ready,
            expected_history="reusing 1 checkpointed task result",
        ),
        *(
            ControlPlaneRun(
                f"Request {number} of 3 under a limit of 1 (label 'serial'): one runs, two wait "
                "in Queued, each launched when the one before ends",
                "sleeper",
                "Success",
                labels=["serial"],
                parameters={"seconds": 2},
                limited=True,
            )
            for number in (1, 2, 3)
        ),
        ControlPlaneRun(
            "A run on Kubernetes (KubernetesRun): one Job, its pod runs the flow",
            "hello",
            "Success",
            parameters={"name": "kubernetes"},
            run_config={"type": "KubernetesRun", "memory_limit": "512Mi"},
        ),
        ControlPlaneRun(
            "A run on Kubernetes whose image cannot be pulled: Crashed, its Job deleted",
            "hello",
            "Crashed",
            run_config={"type": "KubernetesRun", "image": "registry.invalid/flows/hello:1"},
            expected_message="cannot start: ",
        ),
    ]
    with DevStack(schedule_seconds=2.0, log=lambda line: say(f"  [stack] {line}")) as stack:
        client = stack.clients()
        store = Store(client("dynamodb"), stack.outputs["TableName"])
        publisher = Publisher(client("events"), stack.outputs["BusName"])
        for name in sorted({run.flow for run in runs}):
            module = Module(f"flowrelay.sdk.examples.{name.replace('-', '_')}:flow")
            flow = load_flow(module)
            registration, _ = store.flows.register(registration_for(flow, storage=module))
            say(f"registered {registration.name} version {registration.version}")
        store.targets.put(
            checked_target(Target(name="fargate", kind="ecs", settings=stack.ecs_target_settings()))
        )
        say("target 'fargate' (ecs, no labels) is ready")
        store.targets.put(
            checked_target(
                Target(name="k8s", kind="kubernetes", settings=stack.kubernetes_target_settings())
            )
        )
        say("target 'k8s' (kubernetes, no labels: KubernetesRun flows go there) is ready")
        store.targets.put(
            checked_target(
                Target(
                    name="serial-fargate",
                    kind="ecs",
                    labels=["serial"],
                    settings=stack.ecs_target_settings(),
                )
            )
        )
        serial = ConcurrencyLimit(name="serial", kind="label", value="serial", max_runs=1)
        Slots(store, wake=waking_by(publisher)).put(serial)
        say(f"target 'serial-fargate' (ecs, labels: serial); limit 'serial': {serial.describe()}")
        scheduler = client("scheduler")
        _sync_demo_schedule(store, scheduler, stack.outputs, say)
        for run in runs:
            if run.clock is not None or run.restart_of is not None:
                continue  # requested by a fire of its schedule, or as a restart, below
            run.run_id = str(uuid.uuid4())
            publisher.publish(
                FlowRunRequested(
                    flow=run.flow,
                    parameters=run.parameters,
                    labels=run.labels,
                    run_config=run.run_config,
                    flow_run_id=run.run_id,
                    requested_by="demo",
                )
            )
            say(f"requested {run.flow} as run {run.run_id}")
        gpu_run, cancelled_run = runs[2], runs[3]
        _wait(
            lambda: _message(store, gpu_run.run_id).startswith("waiting for a launch target"),
            timeout,
        )
        say(f"run {gpu_run.run_id} waits: {_message(store, gpu_run.run_id)}")
        store.targets.put(
            checked_target(
                Target(
                    name="gpu-fargate",
                    kind="ecs",
                    labels=["gpu"],
                    settings=stack.ecs_target_settings(),
                )
            )
        )
        say("target 'gpu-fargate' (ecs, labels: gpu) added")
        for run in runs:
            if run.clock is not None:
                run.run_id = _fire(stack, run.clock, redeliver=run.clock == "clock-1", say=say)
        # Cancelled while Running: the case where the control plane must stop a live task.
        _wait(lambda: _state(store, cancelled_run.run_id) == "Running", timeout)
        publisher.publish(
            FlowRunCancelRequested(
                flow_run_id=cancelled_run.run_id,
                reason="the demo does not need it any more",
                requested_by="demo",
            )
        )
        say(f"cancel requested for run {cancelled_run.run_id} (was Running)")
        for run in runs:
            if run.kill_runner:
                _kill_runner_once_its_cluster_started(stack, store, run.run_id, timeout)
                say(f"run {run.run_id}: its runner was killed with SIGKILL")
        for run in runs:
            if run.restart_of is not None:
                original = run.restart_of
                _wait(lambda run_id=original.run_id: _state(store, run_id) in _FINAL, timeout)
                Path(workdir, "warehouse-ready").touch()  # the fix
                failed = store.runs.get(original.run_id)
                assert failed is not None  # it was just seen final
                publisher.publish(FlowRunRequested.restart(failed, requested_by="demo"))
                run.run_id = run_id_for(restart_key(original.run_id))
                say(
                    f"run {original.run_id} {failed.state}; the warehouse made ready; "
                    f"retried as run {run.run_id}"
                )
        _wait(lambda: all(_state(store, run.run_id) in _FINAL for run in runs), timeout)
        # A redelivered fire is the same run: one run per fire of the demo's, no more (runs
        # the stack's loop may fire by the real clock meanwhile, at :00 or :30, are not ours).
        fired_keys = {
            found.idempotency_key
            for run in runs
            if run.clock is not None and (found := store.runs.get(run.run_id)) is not None
        }
        scheduled_runs = sum(
            1 for found in store.runs.of_flow("scheduled") if found.idempotency_key in fired_keys
        )
        say(f"flow 'scheduled' has {scheduled_runs} runs for 2 fires (one delivered twice)")
        # The monitor checks (and, if need be, sweeps) every Dask cluster of an ended run.
        _wait(
            lambda: (
                not {p.run_id for p in store.clusters.pending()}
                & {run.run_id for run in runs if run.dask_cluster}
            ),
            timeout,
        )
        ecs = client("ecs")
        # Let the last task processes exit and their STOPPED events be recorded, so the
        # timelines are whole and "the infrastructure stopped" is a fact, not a hope.
        stack.wait_idle(timeout=15)
        for run in runs:  # a Kubernetes run's pod has ended; a crashed one's Job is deleted
            record = store.runs.get(run.run_id)
            if record is not None and record.infrastructure.get("kind") == "kubernetes":
                _wait(
                    lambda run_id=run.run_id: _job_gone_or_finished(stack, store, run_id),
                    timeout,
                )
        outcomes = [
            _timeline(
                store,
                run,
                stack.task_of_run(store.runs.get(run.run_id))
                or stack.job_of_run(store.runs.get(run.run_id)),
                cluster_left=_cluster_left(ecs, stack.outputs["ClusterArn"], run.run_id)
                if run.dask_cluster
                else None,
                runs_of_flow=scheduled_runs if run.clock is not None else None,
            )
            for run in runs
        ]
        _check_one_at_a_time([o for o, run in zip(outcomes, runs, strict=True) if run.limited])
        ok = all(outcome["as_designed"] for outcome in outcomes)
        if as_json:
            print(json.dumps({"ok": ok, "runs": outcomes}, indent=2, default=str), flush=True)
        else:
            for outcome in outcomes:
                _print_timeline(outcome)
            verdict = sum(1 for outcome in outcomes if outcome["as_designed"])
            render.stdout.print(f"[bold]{verdict} of {len(outcomes)} runs ended as designed.[/]")
        if keep:
            _keep_serving(stack, ui_socket)
    return 0 if ok else 1


def _keep_serving(stack: Any, ui_socket: socket.socket | None) -> None:
    """``demo --keep``: the dev stack stays up with the web UI served over it, until Ctrl-C;
    the export line lets other shells' commands use it too."""
    from flowrelay.cli.stack import StackNames
    from flowrelay.cli.ui import INSTALL_UI, announce, stack_access

    render.stderr.print(
        f"the dev stack stays up (Ctrl-C stops it); in another shell: {stack.export_line()}",
        markup=False,
        highlight=False,
    )
    if ui_socket is None:
        render.stderr.print(f"no web UI: {INSTALL_UI}", markup=False, highlight=False)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
        return
    from flowrelay.ui.app import create_app
    from flowrelay.ui.server import address_of, serve

    outputs = dict(stack.outputs)
    names = StackNames(
        table_name=outputs["TableName"],
        bus_name=outputs["BusName"],
        stack=stack.stack_name,
        outputs=outputs,
    )
    app = create_app(stack_access(names, outputs))
    announce(address_of(ui_socket), "127.0.0.1")
    with contextlib.suppress(KeyboardInterrupt):
        serve(app, ui_socket)


_FINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Crashed"}


def _state(store: Any, run_id: str) -> str:
    run = store.runs.get(run_id)
    return str(run.state) if run else "unknown"


def _job_gone_or_finished(stack: Any, store: Any, run_id: str) -> bool:
    job = stack.job_of_run(store.runs.get(run_id))
    return job is None or job["last_status"] == "STOPPED"


def _message(store: Any, run_id: str) -> str:
    run = store.runs.get(run_id)
    return (run.message or "") if run else ""


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the demo waited {timeout:g}s and gave up")
        time.sleep(0.25)


def _kill_runner_once_its_cluster_started(
    stack: Any, store: Any, run_id: str, timeout: float
) -> None:
    """SIGKILL the run's runner process (as an out-of-memory kill would) once its history says
    its Dask cluster started: it cannot close the cluster, the monitor must sweep it."""
    import os
    import signal

    _wait(
        lambda: any(
            entry.note and " started: " in (entry.message or "")
            for entry in store.runs.history(run_id)
        ),
        timeout,
    )
    pid = stack.executor.pid_of(run_id) if stack.executor is not None else None
    if pid is None:
        raise RuntimeError(f"run {run_id}: its runner process is not running")
    os.kill(pid, signal.SIGKILL)


def _sync_demo_schedule(store: Any, scheduler: Any, outputs: dict[str, str], say: Any) -> None:
    """Register the example flow ``scheduled`` and sync its two clocks' schedules, as
    ``flowrelay register`` does."""
    from flowrelay.control.schedule_sync import ScheduleTarget, sync
    from flowrelay.sdk.flow import registration_for

    module = Module("flowrelay.sdk.examples.scheduled:flow")
    registration, _ = store.flows.register(registration_for(load_flow(module), storage=module))
    target = ScheduleTarget.of_stack(outputs)
    if target is None:
        raise RuntimeError("the dev stack has no schedule group")
    report = sync(scheduler, registration.name, registration, target)
    say(
        f"registered scheduled version {registration.version}: schedules "
        f"{', '.join(report.created + report.unchanged)} in group {target.group}"
    )


def _fire(stack: Any, clock: str, *, redeliver: bool, say: Any) -> str:
    """Fire the next occurrence of the ``scheduled`` flow's ``clock`` now (the dev stack's
    scheduler loop, as EventBridge Scheduler would at that time); with ``redeliver``, deliver
    the same fire again. The run id the fire's idempotency key gives."""
    from flowrelay.control.fire_times import scheduled_time_text
    from flowrelay.control.schedule_sync import KEY_PREFIX, schedule_name
    from flowrelay.core.runs import run_id_for

    group = stack.outputs["ScheduleGroupName"]
    name = schedule_name("scheduled", clock)
    when = stack.scheduler_loop.fire_next(group, name)
    say(f"schedule {name} fired for {scheduled_time_text(when)}")
    if redeliver:
        stack.scheduler_loop.redeliver(group, name, when)
        say(f"schedule {name}: the same fire delivered again")
    return run_id_for(f"{KEY_PREFIX}{name}:{scheduled_time_text(when)}")


def _cluster_left(ecs: Any, ecs_cluster: str, run_id: str) -> list[str]:
    """What ECS holds of the run's Dask cluster: running tasks and active task definitions."""
    from flowrelay.core.clusters import cluster_name
    from flowrelay.launchers.ecs.dask_clusters import families

    name = cluster_name(run_id, 1)
    left = list(
        ecs.list_tasks(cluster=ecs_cluster, startedBy=name, desiredStatus="RUNNING")["taskArns"]
    )
    for family in families(name):
        left += ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")[
            "taskDefinitionArns"
        ]
    return left


def _timeline(
    store: Any,
    run: ControlPlaneRun,
    task: dict[str, Any] | None = None,
    cluster_left: list[str] | None = None,
    runs_of_flow: int | None = None,
) -> dict[str, Any]:
    record = store.runs.get(run.run_id)
    history = store.runs.history(run.run_id)
    message = record.message or ""
    stopped = task is None or (task["last_status"] == "STOPPED" and not task["process_running"])
    return {
        "title": run.title,
        "flow": run.flow,
        "run_id": run.run_id,
        "state": str(record.state),
        "expected": run.expected,
        "message": record.message,
        "target": record.target,
        "task_arn": record.infrastructure.get("task_arn")
        or (
            f"job {record.infrastructure.get('namespace')}/{record.infrastructure.get('job_name')}"
            if record.infrastructure.get("kind") == "kubernetes"
            else None
        ),
        "task": task,
        "dask_cluster_left": cluster_left,
        "parameters": record.parameters,
        "runs_of_flow": runs_of_flow,
        # Every run's infrastructure must be gone at the end; a cancelled one above all, and
        # every Dask cluster however its run ended.
        "as_designed": str(record.state) == run.expected
        and (run.expected_message is None or run.expected_message in message)
        and stopped
        and not cluster_left
        # A scheduled run: its clock's parameters, and one run per fire however delivered.
        and (run.clock is None or (record.parameters == run.parameters and runs_of_flow == 2))
        and (
            run.expected_history is None
            or any(run.expected_history in (entry.message or "") for entry in history)
        ),
        "history": [
            {
                "at": entry.at.isoformat(),
                # A note (the run's Dask cluster started, scaled, closed, was swept) changes
                # no state.
                "state": "·" if entry.note else str(entry.state),
                "source": str(entry.source),
                "message": entry.message,
            }
            for entry in history
        ],
    }


def _check_one_at_a_time(outcomes: list[dict[str, Any]]) -> None:
    """The runs under the demo's limit of 1, in the order they were launched: each after the
    first must have waited in Queued, been requested after the one launched before it (first
    come, first served) and been launched (Submitted) only after that one ended. Each outcome
    says so in ``after_previous`` (and is not as designed otherwise)."""

    def moment(outcome: dict[str, Any], states: set[str]) -> datetime | None:
        return next(
            (datetime.fromisoformat(e["at"]) for e in outcome["history"] if e["state"] in states),
            None,
        )

    launched = sorted(outcomes, key=lambda o: moment(o, {"Submitted"}) or datetime.max)
    for previous, outcome in zip([None, *launched], launched, strict=False):
        if previous is None:
            outcome["after_previous"] = None
            continue
        started, ended = moment(outcome, {"Submitted"}), moment(previous, _FINAL)
        waiting = [e for e in outcome["history"] if e["state"] == "Queued"]
        fine = (
            started is not None
            and ended is not None
            and started >= ended
            and bool(waiting)
            and "waiting for a slot: label 'serial' 1/1" in (waiting[0]["message"] or "")
            and (
                previous["after_previous"] is None  # the first took a free slot
                or previous["history"][0]["at"] <= outcome["history"][0]["at"]
            )
        )
        outcome["after_previous"] = {"run_id": previous["run_id"], "ok": fine}
        outcome["as_designed"] = outcome["as_designed"] and fine


def _print_timeline(outcome: dict[str, Any]) -> None:
    render.stdout.rule(
        f"[bold]{outcome['title']}[/]  ({outcome['flow']}, run {outcome['run_id'][:8]})"
    )
    start = None
    indent = " " * 38  # under the message column
    for entry in outcome["history"]:
        at = datetime.fromisoformat(entry["at"])
        start = start or at
        style = render.STYLES.get(entry["state"], "white")
        # A Crashed message carries the log's last lines: keep them under the message column.
        message = escape(entry["message"] or "").replace("\n", "\n" + indent)
        render.stdout.print(
            f"  +{(at - start).total_seconds():6.2f}s  [{style}]{entry['state']:<10}[/] "
            f"{entry['source']:<14} {message}",
            markup=True,
            highlight=False,
        )
    verdict = "[green]as designed[/]" if outcome["as_designed"] else "[red]NOT as designed[/]"
    task = outcome.get("task")
    ecs = ""
    if task is not None:
        ecs = f" {task['last_status']}"
        if task.get("stopped_reason"):
            ecs += f" ({escape(task['stopped_reason'])})"
        if task.get("process_running"):
            ecs += " [red]its process still runs[/]"
    if outcome.get("runs_of_flow") is not None:
        ecs += (
            f"  parameters: {escape(json.dumps(outcome['parameters']))}, "
            f"runs of the flow: {outcome['runs_of_flow']} for 2 fires"
        )
    left = outcome.get("dask_cluster_left")
    if left is not None:
        ecs += (
            "  Dask cluster: nothing left in ECS"
            if not left
            else f"  [red]Dask cluster left in ECS: {escape(', '.join(left))}[/]"
        )
    after = outcome.get("after_previous")
    if after is not None:
        ecs += (
            f"  launched after run {after['run_id'][:8]} ended"
            if after["ok"]
            else f"  [red]launched before run {after['run_id'][:8]} ended[/]"
        )
    render.stdout.print(
        f"  target: {outcome['target']}  task: {outcome['task_arn']}{ecs}  {verdict}\n"
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@click.option(
    "--local",
    is_flag=True,
    help="Run the example flows in this process on every executor instead (no dev stack).",
)
@click.option(
    "--keep",
    is_flag=True,
    help="Keep the dev stack running after the demo, with the web UI served over it.",
)
@click.option(
    "--ui-port",
    type=click.IntRange(min=0, max=65535),
    default=8765,
    show_default=True,
    help="With --keep: the web UI's port (0: any free port).",
)
def demo(as_json: bool, local: bool, keep: bool, ui_port: int) -> None:
    """See the whole system work on this machine: start the dev stack, register the example
    flows and a target, request runs through the bus, print each run's state timeline, stop.
    With --keep, the stack stays up afterwards with the web UI served over it, to explore the
    demo's runs (Ctrl-C stops both).

    Exit 0 when every run ended as designed (one of them fails on purpose).

    \b
    Examples:
      flowrelay demo
      flowrelay demo --keep              # then open the address it prints
    """
    if keep and local:
        render.fail("--keep keeps the dev stack, and --local runs without one", 2)
    ui_socket = _ui_socket(ui_port) if keep else None
    with raise_on_sigterm():
        sys.exit(
            run_demo(as_json=as_json)
            if local
            else run_control_plane_demo(as_json=as_json, keep=keep, ui_socket=ui_socket)
        )


def _ui_socket(port: int) -> socket.socket | None:
    """The web UI's socket for ``--keep``, bound before the demo (a port in use is said at
    once, not after it); None without the UI's libraries (the stack is kept all the same)."""
    from flowrelay.cli.ui import ui_available

    if ui_available() is not None:
        return None
    from flowrelay.operations import OperationError
    from flowrelay.ui.server import bind

    try:
        return bind("127.0.0.1", port)
    except OperationError as exc:
        render.fail(f"--ui-port: {exc}", 2)
