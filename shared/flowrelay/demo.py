"""``flowrelay demo``: the example flows, run here on each kind of executor.

This is the foundation's demo: it shows the flow SDK working on every executor, a failure that
names its cause, and retries. The control-plane demo (dev stack, events, DynamoDB) replaces it
when that lands.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from flowrelay.cli import output
from flowrelay.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.storage import Module


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
            "flowrelay.examples.hello:flow",
            LocalExecutor(),
            parameters={"name": "demo"},
        ),
        DemoRun(
            "The imperative API of seed 002", "flowrelay.examples.imperative:flow", LocalExecutor()
        ),
        DemoRun(
            "Map and reduce on a thread pool",
            "flowrelay.examples.etl:flow",
            LocalDaskExecutor("threads"),
            parameters={"rows": 20},
        ),
        DemoRun(
            "The same flow on a temporary Dask cluster (closed after the run)",
            "flowrelay.examples.etl:flow",
            DaskExecutor(
                cluster_kwargs={"processes": False, "n_workers": 2, "threads_per_worker": 2}
            ),
            parameters={"rows": 20},
        ),
        DemoRun(
            "Retries until an attempt succeeds", "flowrelay.examples.flaky:flow", LocalExecutor()
        ),
        DemoRun(
            "A failure, named with its cause",
            "flowrelay.examples.failing:flow",
            LocalExecutor(),
            expect_success=False,
        ),
    ]


def run_demo(as_json: bool = False) -> int:
    """Run every demo flow; 0 when each ended as designed, 1 otherwise."""
    outcomes = []
    for number, run in enumerate(demo_runs(), start=1):
        flow = Module(run.flow_path).load()
        if not as_json:
            output.stdout.rule(
                f"[bold]{number}. {run.title}[/]  ({run.flow_path} on {run.executor!r})"
            )
        started = time.perf_counter()
        with output.task_prints_to_stderr(enabled=as_json):
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
            output.print_run(flow, state)
            verdict = "[green]as designed[/]" if as_designed else "[red]NOT as designed[/]"
            output.stdout.print(f"{verdict} in {seconds:.2f}s\n")
    all_good = all(outcome["as_designed"] for outcome in outcomes)
    if as_json:
        print(json.dumps({"ok": all_good, "runs": outcomes}, indent=2))
    else:
        output.stdout.print(
            f"[bold]{sum(1 for o in outcomes if o['as_designed'])} of {len(outcomes)} "
            "demo runs ended as designed.[/]"
        )
    return 0 if all_good else 1
