"""Ephemeral Dask clusters in the dev stack: how long a FargateCluster takes to start, and what a
run on one costs against the same flow on a plain ``LocalCluster`` inside the run's task.

Both runs go the whole way through the dev stack (request on the bus, dispatch, an ECS task
running the real runner, record_state), alternately, so the ratio compares like with like on the
same machine at the same moment. The flow maps 16 tasks of 0.2 s on two workers (fixed, no
adaptive scaling, so both do the same work). "cluster start" is the time between the runner's
"starting" and "started" notes (scheduler task up and reachable; workers join after).
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from benchmarks.report import Row
from flowrelay.core.clusters import FARGATE_CLUSTER

FLOW_PATH = "flowrelay.sdk.examples.dask_fargate:flow"
PARAMETERS = {"count": 16, "seconds": 0.2}
WORKERS = 2


def _flow(name: str, cluster_class: str | None) -> Any:
    """The example's graph under a flow of its own, on a fixed-size cluster of ``WORKERS``."""
    from flowrelay.core.storage import Module
    from flowrelay.run_configs import ECSRun
    from flowrelay.sdk.executors import DaskExecutor
    from flowrelay.sdk.storage import load_flow

    flow = load_flow(Module(FLOW_PATH))
    flow.name = name
    flow.environment = None
    flow.run_config = ECSRun()
    if cluster_class is None:
        flow.executor = DaskExecutor(
            cluster_kwargs={"n_workers": WORKERS, "threads_per_worker": 1, "processes": True}
        )
    else:
        flow.executor = DaskExecutor(
            cluster_class=cluster_class,
            cluster_kwargs={
                "n_workers": WORKERS,
                "worker_cpu": 256,
                "worker_mem": 1024,
                "worker_nthreads": 1,
                "scheduler_cpu": 256,
                "scheduler_mem": 1024,
            },
        )
    return flow


def measure(repeats: int = 3) -> list[Row]:
    """Run both flows ``repeats`` times each, alternately, on one dev stack."""

    from flowrelay.aws.bus import Publisher
    from flowrelay.control.store import Store
    from flowrelay.core.events import FlowRunRequested
    from flowrelay.core.routing import Target
    from flowrelay.core.storage import Module
    from flowrelay.devstack import DevStack
    from flowrelay.launchers.kinds import checked_target
    from flowrelay.sdk.flow import registration_for

    local: list[float] = []
    fargate: list[float] = []
    starts: list[float] = []
    with DevStack(schedule_seconds=2.0, log=lambda line: None) as stack:
        client = stack.clients()
        store = Store(client("dynamodb"), stack.outputs["TableName"])
        publisher = Publisher(client("events"), stack.outputs["BusName"])
        for name, cluster_class in (("bench-local", None), ("bench-fargate", FARGATE_CLUSTER)):
            registration = registration_for(_flow(name, cluster_class), storage=Module(FLOW_PATH))
            store.flows.register(registration)
        store.targets.put(
            checked_target(Target(name="fargate", kind="ecs", settings=stack.ecs_target_settings()))
        )
        for _ in range(repeats):
            for name, samples in (("bench-local", local), ("bench-fargate", fargate)):
                run_id = f"bench-{uuid.uuid4().hex[:12]}"
                began = time.monotonic()
                publisher.publish(
                    FlowRunRequested(
                        flow=name, flow_run_id=run_id, parameters=PARAMETERS, requested_by="bench"
                    )
                )
                run = _wait_final(store, run_id)
                samples.append(time.monotonic() - began)
                if str(run.state) != "Success":
                    raise RuntimeError(f"{name} run {run_id} ended {run.state}: {run.message}")
                notes = {
                    (entry.message or "").split(": ", 1)[0].rsplit(" ", 1)[-1]: entry.at
                    for entry in store.runs.history(run_id)
                    if entry.note
                }
                if "starting" in notes and "started" in notes:
                    starts.append((notes["started"] - notes["starting"]).total_seconds())
    base = statistics.median(local)
    ours = statistics.median(fargate)
    return [
        Row(
            benchmark="FargateCluster start in the dev stack (scheduler task up and reachable)",
            ours=f"{statistics.median(starts):.2f} s",
            baseline="-",
            measure=f"median of {len(starts)}",
            target="(reference)",
            status="info",
        ),
        Row(
            benchmark=(
                f"request to Success: 16 x 0.2 s tasks on {WORKERS} workers, FargateCluster "
                "vs LocalCluster in the run's task"
            ),
            ours=f"{ours:.2f} s",
            baseline=f"{base:.2f} s (LocalCluster)",
            measure=f"{ours / base:.2f}x (+{ours - base:.2f} s)",
            target="(reference)",
            status="info",
        ),
    ]


def _wait_final(store: Any, run_id: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.runs.get(run_id)
        if run is not None and run.state.is_final:
            return run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} not final after {timeout:g} s")
