"""Flow runs on ephemeral Fargate Dask clusters, end to end on the dev stack: the request, the
dispatcher, the real runner in an ECS task creating a real dask-cloudprovider FargateCluster
(its scheduler and workers ECS tasks run as local processes), record_state and the monitor. After
every kind of ending (success, a failed task, a cancel, a timeout, SIGKILL of the runner) ECS must
hold nothing of the run's cluster: no task running, no task definition active; and two runs at
once never touch each other's clusters (docs/dask-clusters.md).

One stack serves the module, under names of its own (moto's state outlives a stack in this
process). The figures (runs, clusters the monitor found leaks of, leaks left) are printed in the
test summary.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.store import Store
from flowrelay.core.clusters import cluster_name
from flowrelay.core.events import FlowRunCancelRequested, FlowRunRequested
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, HistoryEntry
from flowrelay.core.storage import Module
from flowrelay.devstack import DevStack
from flowrelay.launchers.ecs.dask_clusters import families
from flowrelay.launchers.kinds import checked_target
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.support.aws import report_figures
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]
FLOWS = (
    "flowrelay.sdk.examples.dask_fargate:flow",
    "flowrelay.sdk.examples.dask_sleeper:flow",
    "tests.support.flows:dask_failing",
    "tests.support.flows:k8s_dask",
    "tests.support.flows:k8s_dask_sleeper",
    "tests.support.flows:k8s_dask_specs",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation"),
]


class Stack:
    def __init__(self, dev: DevStack) -> None:
        self.dev = dev
        self.client: Callable[[str], Any] = clients_of(dev)
        self.store = Store(self.client("dynamodb"), dev.outputs["TableName"])
        self.publisher = Publisher(self.client("events"), dev.outputs["BusName"])
        self.ecs = self.client("ecs")
        self.cluster = dev.outputs["ClusterArn"]
        self.outcomes: list[tuple[str, str, int, int]] = []  # run, state, swept, left

    def request(self, flow: str, **fields: Any) -> str:
        run_id = f"dask-{uuid.uuid4().hex[:12]}"
        self.publisher.publish(
            FlowRunRequested(flow=flow, flow_run_id=run_id, requested_by="t", **fields)
        )
        return run_id

    def run(self, run_id: str) -> FlowRun:
        run = self.store.runs.get(run_id)
        assert run is not None
        return run

    def notes(self, run_id: str) -> list[HistoryEntry]:
        return [entry for entry in self.store.runs.history(run_id) if entry.note]

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not true after {timeout:g} s: {what}")
            time.sleep(0.2)

    def wait_final(self, run_id: str) -> FlowRun:
        def final() -> bool:
            run = self.store.runs.get(run_id)
            return run is not None and run.state.is_final

        self.wait_for(f"run {run_id} final", final)
        return self.run(run_id)

    def wait_cluster_started(self, run_id: str) -> None:
        self.wait_for(
            f"the cluster of {run_id} started",
            lambda: any(" started: " in (n.message or "") for n in self.notes(run_id)),
        )

    def left_of(self, run_id: str) -> list[str]:
        """What ECS still holds of the run's cluster: running tasks, active task definitions."""
        name = cluster_name(run_id, 1)
        left = list(
            self.ecs.list_tasks(cluster=self.cluster, startedBy=name, desiredStatus="RUNNING")[
                "taskArns"
            ]
        )
        for family in families(name):
            left += self.ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")[
                "taskDefinitionArns"
            ]
        return left

    def kube_left_of(self, run_id: str) -> list[str]:
        """What the Kubernetes API still holds of the run's cluster: its DaskCluster, and pods
        and services labelled with its name."""
        from flowrelay.devstack.kubernetes.client import ApiClient
        from flowrelay.launchers.kubernetes.dask_clusters import CLUSTER_LABEL

        api = self.dev.kubernetes
        assert api is not None
        client = ApiClient(api.url, api.headers())
        namespace = self.dev.kubernetes_target_settings()["namespace"]
        name = cluster_name(run_id, 1)
        left = [
            f"{plural}/{item['metadata']['name']}"
            for plural in ("pods", "services")
            for item in client.call(
                "GET",
                f"/api/v1/namespaces/{namespace}/{plural}?labelSelector={CLUSTER_LABEL}={name}",
            )["items"]
            if not item["metadata"].get("deletionTimestamp")
        ]
        clusters = client.call(
            "GET", f"/apis/kubernetes.dask.org/v1/namespaces/{namespace}/daskclusters"
        )["items"]
        left += [f"daskclusters/{name}" for item in clusters if item["metadata"]["name"] == name]
        return left

    def settled(self, run_id: str) -> list[str]:
        """Once the monitor has checked the run's cluster: what is left of it (nothing). The
        run's history must say its cluster was starting: record_state keeps the cluster for the
        monitor before it notes that, and only the monitor forgets it, so an empty list of
        pending clusters then means a monitor pass looked at this one after the run ended."""
        assert any(
            (n.message or "").endswith(("starting: FargateCluster", "starting: KubeCluster"))
            for n in self.notes(run_id)
        ), [n.message for n in self.notes(run_id)]
        self.wait_for(
            f"the monitor checked the cluster of {run_id}",
            lambda: all(p.run_id != run_id for p in self.store.clusters.pending()),
        )
        left = self.left_of(run_id) + self.kube_left_of(run_id)
        swept = sum(
            1 for n in self.notes(run_id) if n.source == "monitor" and "swept" in (n.message or "")
        )
        self.outcomes.append((run_id, str(self.run(run_id).state), swept, len(left)))
        return left


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", str(ROOT))  # the runners import tests.support.flows
    dev = DevStack(
        ROOT / "template.yaml",
        stack_name=f"flowrelay-runs-{suffix}",
        parameters={"BusName": f"flowrelay-runs-{suffix}", "StopGraceSeconds": "5"},
        poll_seconds=0.1,
        schedule_seconds=1,  # a monitor pass every second
    )
    dev.start()
    try:
        running = Stack(dev)
        for path in FLOWS:
            flow = load_flow(Module(path))
            running.store.flows.register(registration_for(flow, storage=Module(path)))
        running.store.targets.put(
            checked_target(Target(name="fargate", kind="ecs", settings=dev.ecs_target_settings()))
        )
        running.store.targets.put(
            checked_target(
                Target(name="k8s", kind="kubernetes", settings=dev.kubernetes_target_settings())
            )
        )
        yield running
    finally:
        dev.stop()
        patch.undo()
        if running.outcomes:
            report_figures(
                request.config,
                "Dask clusters of flow runs on the dev stack",
                [
                    f"{len(running.outcomes)} runs with an ephemeral Dask cluster (FargateCluster, "
                    f"KubeCluster); leaks the monitor found and swept: "
                    f"{sum(o[2] for o in running.outcomes)}; leaks left: "
                    f"{sum(o[3] for o in running.outcomes)}",
                    *(
                        f"  {state:<9} swept {swept}, left {left}: {run}"
                        for run, state, swept, left in running.outcomes
                    ),
                ],
            )


def test_a_deprecated_environment_flow_runs_on_a_real_fargate_cluster_that_adapts(
    stack: Stack,
) -> None:
    run_id = stack.request("dask-fargate", parameters={"count": 24, "seconds": 0.5, "linger": 8})
    run = stack.wait_final(run_id)

    assert str(run.state) == "Success", run.message
    notes = [n.message or "" for n in stack.notes(run_id)]
    name = cluster_name(run_id, 1)
    assert notes[0] == f"Dask cluster {name} starting: FargateCluster"
    assert notes[1].startswith(
        f"Dask cluster {name} started: FargateCluster, scheduler tcp://127.77."
    )
    scaled = [note for note in notes if " scaled from " in note]
    assert any(f"to {n} workers" in note for note in scaled for n in (2, 3)), notes  # adapted up
    assert scaled[-1].endswith("to 1 worker"), notes  # and down, once the map was done
    assert f"Dask cluster {name} closed" in notes
    assert stack.settled(run_id) == []


def test_a_failed_task_on_the_cluster_fails_the_run_and_leaves_nothing(stack: Stack) -> None:
    run_id = stack.request("dask-failing")
    run = stack.wait_final(run_id)

    assert str(run.state) == "Failed"
    assert "explode" in (run.message or "") or any(
        "explode" in str(e.details.get("failed_tasks")) for e in stack.store.runs.history(run_id)
    )
    assert stack.settled(run_id) == []


def test_a_run_cancelled_while_its_cluster_computes_leaves_nothing(stack: Stack) -> None:
    run_id = stack.request("dask-sleeper", parameters={"seconds": 120})
    stack.wait_cluster_started(run_id)
    stack.publisher.publish(FlowRunCancelRequested(flow_run_id=run_id, requested_by="t"))

    assert str(stack.wait_final(run_id).state) == "Cancelled"
    assert stack.settled(run_id) == []


def test_a_run_timed_out_while_its_cluster_computes_leaves_nothing(stack: Stack) -> None:
    run_id = stack.request("dask-sleeper", parameters={"seconds": 120}, timeout_seconds=8)

    assert str(stack.wait_final(run_id).state) == "TimedOut"
    assert any(" started: " in (n.message or "") for n in stack.notes(run_id))
    assert stack.settled(run_id) == []
    notes = [n.message or "" for n in stack.notes(run_id)]
    # Stopped with SIGTERM, the runner closed its cluster itself: the monitor waited for it.
    assert f"Dask cluster {cluster_name(run_id, 1)} closed" in notes
    assert not [n for n in stack.notes(run_id) if n.source == "monitor"]


def test_a_runner_killed_with_sigkill_is_crashed_and_the_monitor_sweeps_its_cluster(
    stack: Stack,
) -> None:
    run_id = stack.request("dask-sleeper", parameters={"seconds": 120})
    stack.wait_cluster_started(run_id)
    assert stack.left_of(run_id)  # the cluster is up: a scheduler, a worker, two definitions
    executor = stack.dev.executor
    assert executor is not None
    pid = executor.pid_of(run_id)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    assert str(stack.wait_final(run_id).state) == "Crashed"
    assert stack.settled(run_id) == []
    swept = [n.message or "" for n in stack.notes(run_id) if n.source == "monitor"]
    assert len(swept) == 1, swept
    assert "swept: stopped 2 tasks, deregistered 2 task definitions" in swept[0]


def test_two_runs_with_clusters_at_once_do_not_touch_each_others(stack: Stack) -> None:
    first = stack.request("dask-sleeper", parameters={"seconds": 4})
    second = stack.request("dask-sleeper", parameters={"seconds": 4})
    for run_id in (first, second):
        assert str(stack.wait_final(run_id).state) == "Success", stack.run(run_id).message
    for run_id in (first, second):
        assert stack.settled(run_id) == []
        assert not [n for n in stack.notes(run_id) if n.source == "monitor"]


def test_a_deprecated_kubernetes_environment_flow_runs_on_a_kube_cluster(stack: Stack) -> None:
    run_id = stack.request("k8s-dask")
    run = stack.wait_final(run_id)

    assert str(run.state) == "Success", run.message
    notes = [n.message or "" for n in stack.notes(run_id)]
    name = cluster_name(run_id, 1)
    assert notes[0] == f"Dask cluster {name} starting: KubeCluster"
    assert f"Dask cluster {name} closed" in notes
    assert stack.settled(run_id) == []


def test_a_kubernetes_runner_killed_with_sigkill_has_its_kube_cluster_swept(stack: Stack) -> None:
    run_id = stack.request("k8s-dask-sleeper")
    stack.wait_cluster_started(run_id)
    assert stack.kube_left_of(run_id)
    jobs = stack.dev.job_executor
    assert jobs is not None
    run = stack.run(run_id)
    job = str(run.infrastructure["job_name"])
    (pid,) = [
        pid
        for namespace, pod in list(jobs.runs)
        if pod.startswith(job) and (pid := jobs.pid_of_pod(namespace, pod)) is not None
    ]
    os.kill(pid, signal.SIGKILL)

    assert str(stack.wait_final(run_id).state) == "Crashed"
    assert stack.settled(run_id) == []
    swept = [n.message or "" for n in stack.notes(run_id) if n.source == "monitor"]
    assert len(swept) == 1, swept
    assert "swept:" in swept[0]


def test_custom_scheduler_and_worker_specs_make_the_kube_cluster(stack: Stack) -> None:
    """DaskKubernetesEnvironment(scheduler_spec_file=, worker_spec_file=), as its users wrote
    it: the specs become the run's DaskCluster (named and labelled after the run), and the
    flow's task runs on a worker made from the worker spec."""
    run_id = stack.request("k8s-dask-specs")
    run = stack.wait_final(run_id)

    assert str(run.state) == "Success", run.message
    assert stack.settled(run_id) == []
