"""A real dask-cloudprovider ``FargateCluster`` on the dev stack: its scheduler and workers are
ECS tasks RunTask'ed into moto over HTTP and run by the stack's ECS executor as local process
groups, each on a loopback address of its own; the cluster computes, scales, and leaves nothing
running when it closes (docs/devstack.md, "Ephemeral Dask clusters on the dev stack's ECS").

One stack serves the module (as in test_devstack.py), under a stack name of its own.
"""

from __future__ import annotations

import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from flowrelay.core.contract import ENV_ATTEMPT
from flowrelay.devstack import DevStack
from flowrelay.devstack.ecs import EcsExecutor
from flowrelay.devstack.processes import running
from flowrelay.launchers.ecs.names import ATTEMPT_TAG, FLOW_TAG, RUN_ID_TAG
from tests.support.aws import report_figures
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]

# moto's CloudFormation skips resource types it does not implement (QueuePolicy, Alarm), with a
# warning from the server thread.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation")


class Stack:
    """The running stack, and clients for it as another process would make them."""

    def __init__(self, dev: DevStack) -> None:
        self.dev = dev
        self.client: Callable[[str], Any] = clients_of(dev)
        self.ecs = self.client("ecs")
        self.cluster = dev.outputs["ClusterArn"]

    @property
    def executor(self) -> EcsExecutor:
        assert self.dev.executor is not None
        return self.dev.executor

    def tasks(self, started_by: str, desired: str) -> list[str]:
        """The tasks ECS lists for ``startedBy`` with that desired status."""
        arns: list[str] = []
        for page in self.ecs.get_paginator("list_tasks").paginate(
            cluster=self.cluster, startedBy=started_by, desiredStatus=desired
        ):
            arns += page["taskArns"]
        return sorted(arns)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Names of its own: moto's state outlives a stack in this process, and another module's
    # stack may have created "flowrelay-dev" and its bus before.
    suffix = uuid.uuid4().hex[:8]
    dev = DevStack(
        ROOT / "template.yaml",
        stack_name=f"flowrelay-dask-{suffix}",
        parameters={"BusName": f"flowrelay-dask-{suffix}"},
        poll_seconds=0.1,
    )
    dev.start()
    try:
        yield Stack(dev)
    finally:
        dev.stop()


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:g} s: {what}")
        time.sleep(0.1)


def live_members(groups: set[int]) -> list[int]:
    """The processes still running (not zombies) in any of the process ``groups``."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in groups and running(process):
                members.append(process.pid)
        except (ProcessLookupError, psutil.Error):
            continue  # ended while we looked
    return members


def square(value: int) -> int:
    return value * value


def variable(name: str) -> str | None:
    """``name`` in the environment of the process this runs in (a worker, with client.run)."""
    return os.environ.get(name)


def finalizers_of(target: object) -> list[weakref.finalize[Any, Any]]:
    """The ``weakref.finalize`` callbacks registered on ``target`` that have not run."""
    registry: dict[Any, Any] = getattr(weakref.finalize, "_registry", {})
    return [f for f in list(registry) if (f.peek() or (None,))[0] is target]


def test_the_stacks_account_has_long_task_arns_enabled(stack: Stack) -> None:
    """As AWS answers (long ARNs are mandatory); dask-cloudprovider reads this before RunTask
    and fails to start any task without an answer."""
    settings = stack.ecs.list_account_settings(name="taskLongArnFormat", effectiveSettings=True)

    assert [(s["name"], s["value"]) for s in settings["settings"]] == [
        ("taskLongArnFormat", "enabled")
    ]


@pytest.mark.slow
def test_a_fargate_cluster_computes_scales_and_leaves_nothing_running(
    stack: Stack, request: pytest.FixtureRequest
) -> None:
    from dask_cloudprovider.aws import FargateCluster
    from distributed import Client

    name = f"t-{uuid.uuid4().hex[:8]}"
    # As flowrelay marks a run's cluster (launchers/ecs/dask_clusters.py): the run's tags and
    # attempt, a group that is not a flow run's. Neither may make a worker a "repeat" of the
    # scheduler (the executor's clientToken emulation) nor its events a run's.
    marks = {"startedBy": name, "group": f"flowrelay-dask:{name}"}
    defaults = stack.dev.ecs_target_settings()
    subnets = defaults["subnets"][:1]
    vpc = stack.client("ec2").describe_subnets(SubnetIds=subnets)["Subnets"][0]["VpcId"]
    outputs = stack.dev.outputs
    began = time.monotonic()
    cluster = FargateCluster(
        cluster_arn=stack.cluster,
        vpc=vpc,
        subnets=subnets,
        security_groups=defaults["security_groups"],
        execution_role_arn=outputs["FlowRunExecutionRoleArn"],
        task_role_arn=outputs["FlowRunTaskRoleArn"],
        cloudwatch_logs_group=outputs["LogGroupName"],
        skip_cleanup=True,
        fargate_use_private_ip=True,
        n_workers=1,
        image="daskdev/dask:latest",
        scheduler_timeout="5 minutes",
        name=name,
        # Small: the machine has 2 cores (Fargate's smallest size, one thread a worker).
        scheduler_cpu=256,
        scheduler_mem=1024,
        worker_cpu=256,
        worker_mem=1024,
        worker_nthreads=1,
        scheduler_task_kwargs=marks,
        worker_task_kwargs=marks,
        tags={RUN_ID_TAG: name, FLOW_TAG: "dask-test", ATTEMPT_TAG: "1"},
        environment={ENV_ATTEMPT: "1", "T_MARK": name},
    )
    groups: dict[str, int] = {}

    def note_groups() -> list[str]:
        """The cluster's running tasks, each one's process group noted."""
        arns = stack.tasks(name, "RUNNING")
        for arn in arns:
            group = stack.executor.group_of_task(arn)
            if group is not None:
                groups[arn] = group
        return arns

    try:
        with Client(cluster) as client:
            client.wait_for_workers(1, timeout=60)
            started = time.monotonic() - began
            report_figures(
                request.config,
                "FargateCluster on the dev stack",
                [f"scheduler and 1 worker up in {started:.1f} s"],
            )

            assert client.gather(client.map(square, range(20))) == [n * n for n in range(20)]
            # RunTask's container overrides reached the worker's processes.
            assert set(client.run(variable, "T_MARK").values()) == {name}
            scheduler_host = cluster.scheduler_address.split("://")[1].rsplit(":", 1)[0]
            assert scheduler_host.startswith("127.77."), cluster.scheduler_address
            wait_for(
                "two tasks, each a process group", lambda: len(note_groups()) == 2 == len(groups)
            )

            cluster.scale(3)
            client.wait_for_workers(3, timeout=60)
            wait_for("four tasks", lambda: len(note_groups()) == 4 == len(groups))
            workers = client.scheduler_info()["workers"]
            hosts = {address.split("://")[1].rsplit(":", 1)[0] for address in workers}
            # Each task on an address of its own, none the scheduler's.
            assert len(hosts) == 3, workers
            assert scheduler_host not in hosts, workers
            assert all(host.startswith("127.77.") for host in hosts), workers
            assert client.gather(client.map(square, range(20))) == [n * n for n in range(20)]

            cluster.scale(1)
            wait_for(
                "one worker left at the scheduler",
                lambda: len(client.scheduler_info()["workers"]) == 1,
            )
            wait_for("the scheduler's and one worker's task left", lambda: len(note_groups()) == 2)

            # awslogs: each task's output in the cluster's log group, under its stream prefix.
            (scheduler_task,) = [
                t
                for t in stack.ecs.describe_tasks(cluster=stack.cluster, tasks=list(groups))[
                    "tasks"
                ]
                if t["containers"][0]["name"] == "dask-scheduler"
            ]
            stream = (
                f"{stack.dev.outputs['ClusterName']}/{name}/dask-scheduler/"
                + scheduler_task["taskArn"].rsplit("/", 1)[-1]
            )
            logs = stack.client("logs")

            def scheduler_logged_its_address() -> bool:
                try:
                    events = logs.get_log_events(
                        logGroupName=outputs["LogGroupName"], logStreamName=stream
                    )["events"]
                except logs.exceptions.ResourceNotFoundException:
                    return False
                return any(
                    "Scheduler at:" in e["message"] and scheduler_host in e["message"]
                    for e in events
                )

            wait_for("the scheduler's output in CloudWatch Logs", scheduler_logged_its_address, 10)

            # dask-cloudprovider deregisters its task definitions from finalizers that run at
            # interpreter exit, when the cluster's event loop is closed (they fail there with
            # "IOLoop is closed"): run them now, while it runs.
            for finalizer in finalizers_of(cluster):
                finalizer()
    finally:
        cluster.close()
        for finalizer in finalizers_of(cluster):  # a failed test: no tracebacks at exit
            finalizer.detach()

    assert stack.tasks(name, "RUNNING") == []
    stopped = stack.tasks(name, "STOPPED")
    assert len(stopped) == 4  # the scheduler and three workers, each run as a process group
    assert set(stopped) == set(groups)
    wait_for(
        "every process of the cluster's tasks ended",
        lambda: not live_members(set(groups.values())),
        stack.dev.grace_seconds + 10,
    )
    # Not a flow run's: no task of the cluster was taken for a repeat of another.
    assert not set(stack.executor.duplicates) & set(stopped)
    for family in (f"dask-{name}-scheduler", f"dask-{name}-worker"):
        assert (
            stack.ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")[
                "taskDefinitionArns"
            ]
            == []
        )


def test_a_task_logging_to_a_new_group_with_create_group_ships_there(stack: Stack) -> None:
    """awslogs-create-group "true" (what dask-cloudprovider registers): the awslogs driver
    creates the group; a command that is not Dask's runs as it is."""
    group = f"/flowrelay-test/{uuid.uuid4().hex[:8]}"
    definition = stack.ecs.register_task_definition(
        family=f"t-create-group-{uuid.uuid4().hex[:8]}",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "app",
                "image": "example/app:1",
                "memory": 512,
                "command": ["python", "-c", "print('hello from the task')"],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": group,
                        "awslogs-stream-prefix": "t",
                        "awslogs-region": "us-east-1",
                        "awslogs-create-group": "true",
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    defaults = stack.dev.ecs_target_settings()
    (task,) = stack.ecs.run_task(
        cluster=stack.cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": defaults["subnets"][:1],
                "securityGroups": defaults["security_groups"],
            }
        },
    )["tasks"]
    stream = f"t/app/{task['taskArn'].rsplit('/', 1)[-1]}"
    logs = stack.client("logs")

    def logged() -> bool:
        try:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
        except logs.exceptions.ResourceNotFoundException:
            return False
        return [event["message"] for event in events] == ["hello from the task"]

    wait_for("the task's output in its new log group", logged, 20)
    wait_for(
        "the task stopped",
        lambda: (
            stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[task["taskArn"]])["tasks"][0][
                "lastStatus"
            ]
            == "STOPPED"
        ),
        20,
    )
    (described,) = stack.ecs.describe_tasks(cluster=stack.cluster, tasks=[task["taskArn"]])["tasks"]
    assert described["stoppedReason"] == "Essential container in task exited"
