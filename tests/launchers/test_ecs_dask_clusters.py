"""What an ephemeral Dask cluster of an ECS run gets from its target and launch, and the sweep
that finds it again by its marks alone (moto over HTTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from flowrelay.core.clusters import cluster_name
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.ecs.dask_clusters import GROUP_PREFIX, cluster_supply, families, sweep
from flowrelay.launchers.ecs.launcher import LaunchResult

ACCOUNT = "123456789012"
EXECUTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/flow-execution"
FLOW_ROLE = f"arn:aws:iam::{ACCOUNT}:role/flow-task"
DASK_ROLE = f"arn:aws:iam::{ACCOUNT}:role/dask-task"


def flow_definition(ecs: Any, image: str = "registry.test/flows:7") -> str:
    answer = ecs.register_task_definition(
        family=f"flowrelay-{uuid.uuid4().hex[:8]}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=EXECUTION_ROLE,
        taskRoleArn=FLOW_ROLE,
        containerDefinitions=[
            {
                "name": "flow",
                "image": image,
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {"awslogs-group": "/flows/runs", "awslogs-stream-prefix": "fr"},
                },
            }
        ],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def launched_run(cluster: str, definition: str, attempt: int = 2, **fields: Any) -> FlowRun:
    now = datetime.now(UTC)
    run_id = f"Nightly_ETL.{uuid.uuid4().hex[:10]}"
    launched = LaunchResult(
        task_arn=f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{cluster}/{uuid.uuid4().hex}",
        cluster=cluster,
        task_definition_arn=definition,
        attempt=attempt,
    )
    return FlowRun(
        run_id=run_id,
        flow_name="etl",
        created_at=now,
        updated_at=now,
        state_entered_at=now,
        target="fargate",
        attempt=attempt,
        infrastructure=launched.model_dump(mode="json"),
        **fields,
    )


def test_a_cluster_gets_the_runs_image_roles_logs_and_network_and_is_marked_with_the_run(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    run = launched_run(cluster, flow_definition(ecs))
    target = Target(
        name="fargate",
        kind="ecs",
        settings={"cluster": cluster, **network, "dask_task_role_arn": DASK_ROLE},
    )
    supply = cluster_supply(run, target, run.infrastructure, ecs, boto3.client("ec2"))

    vpc = boto3.client("ec2").describe_subnets(SubnetIds=network["subnets"])["Subnets"][0]
    name = cluster_name(run.run_id, 2)
    assert supply.defaults == {
        "image": "registry.test/flows:7",
        "execution_role_arn": EXECUTION_ROLE,
        "task_role_arn": DASK_ROLE,
        "cloudwatch_logs_group": "/flows/runs",
        "fargate_use_private_ip": True,
        "scheduler_timeout": "5 minutes",
        "subnets": network["subnets"],
        "security_groups": network["security_groups"],
        "vpc": vpc["VpcId"],
    }
    marks = {"startedBy": name, "group": GROUP_PREFIX + run.run_id}
    assert supply.enforced["name"] == name
    assert supply.enforced["cluster_arn"] == cluster  # the run's own: where the sweep looks
    assert supply.enforced["skip_cleanup"] is True
    assert supply.enforced["scheduler_task_kwargs"] == marks
    assert supply.enforced["worker_task_kwargs"] == marks
    assert supply.enforced["tags"]["flowrelay:run-id"] == run.run_id
    assert (supply.sweep.kind, supply.sweep.name) == ("ecs", name)
    # The state rule selects "flowrelay:" groups as flow runs' own tasks: a Dask task is not one.
    assert not marks["group"].startswith("flowrelay:")


def test_the_flows_cluster_kwargs_win_over_defaults_but_not_over_what_teardown_needs(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    run = launched_run(cluster, flow_definition(ecs))
    target = Target(name="fargate", kind="ecs", settings={"cluster": cluster, **network})
    supply = cluster_supply(run, target, run.infrastructure, ecs, boto3.client("ec2"))
    merged, replaced = supply.merged(
        {
            "image": "my/dask:2026.8",
            "n_workers": 3,
            "skip_cleanup": False,
            "name": "mine",
            "tags": {"team": "data"},
            "worker_task_kwargs": {"startedBy": "me", "propagateTags": "TASK_DEFINITION"},
        }
    )
    assert merged["image"] == "my/dask:2026.8"
    assert merged["n_workers"] == 3
    # No dask_task_role_arn: never the flow run's role (the runner refuses the cluster).
    assert "task_role_arn" not in merged
    assert merged["skip_cleanup"] is True
    assert merged["name"] == supply.sweep.name
    assert merged["tags"]["team"] == "data"
    assert merged["worker_task_kwargs"] == {
        "startedBy": supply.sweep.name,
        "group": GROUP_PREFIX + run.run_id,
        "propagateTags": "TASK_DEFINITION",
    }
    assert sorted(replaced) == [
        f"name='mine' replaced by {supply.sweep.name!r}",
        "skip_cleanup=False replaced by True",
        f"worker_task_kwargs['startedBy']='me' replaced by {supply.sweep.name!r}",
    ]


def test_a_run_task_kwargs_network_is_the_clusters_network(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    run = launched_run(
        cluster,
        flow_definition(ecs),
        run_config={
            "type": "ECSRun",
            "run_task_kwargs": {
                "networkConfiguration": {
                    "awsvpcConfiguration": {
                        "subnets": network["subnets"],
                        "securityGroups": ["sg-1"],
                    }
                }
            },
        },
    )
    target = Target(name="fargate", kind="ecs", settings={"cluster": cluster, "vpc": "vpc-given"})
    supply = cluster_supply(run, target, run.infrastructure, ecs, boto3.client("ec2"))
    assert supply.defaults["security_groups"] == ["sg-1"]
    assert supply.defaults["vpc"] == "vpc-given"  # named by the target: not looked up


def test_a_target_that_assigns_public_ips_is_refused_with_the_reason(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    run = launched_run(cluster, flow_definition(ecs))
    target = Target(
        name="fargate",
        kind="ecs",
        settings={"cluster": cluster, **network, "assign_public_ip": True},
    )
    with pytest.raises(LaunchError, match="could not pull theirs there"):
        cluster_supply(run, target, run.infrastructure, ecs, boto3.client("ec2"))


def test_a_launch_whose_task_definition_is_gone_is_named_in_the_error(
    ecs: Any, cluster: str
) -> None:
    definition = flow_definition(ecs)
    ecs.deregister_task_definition(taskDefinition=definition)
    ecs.delete_task_definitions(taskDefinitions=[definition])
    run = launched_run(cluster, definition)
    target = Target(name="fargate", kind="ecs", settings={"cluster": cluster})
    with pytest.raises(LaunchError, match="DescribeTaskDefinition"):
        cluster_supply(run, target, run.infrastructure, ecs, boto3.client("ec2"))


def start_task(
    ecs: Any,
    cluster: str,
    family: str,
    started_by: str,
    network: dict[str, Any],
    group: str | None = None,
) -> str:
    """A Fargate task as dask-cloudprovider starts one: awsvpc, marked with ``startedBy`` and
    (flowrelay's supply) a group."""
    definition = ecs.register_task_definition(
        family=family,
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "dask", "image": "i", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    task = ecs.run_task(
        cluster=cluster,
        taskDefinition=definition,
        startedBy=started_by,
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network["subnets"],
                "securityGroups": network["security_groups"],
            }
        },
        **({"group": group} if group else {}),
    )
    return str(task["tasks"][0]["taskArn"])


def test_a_sweep_stops_the_clusters_tasks_and_deregisters_its_families_only(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    name = cluster_name(run_id, 1)
    scheduler, worker = families(name)
    other_run = f"run-{uuid.uuid4().hex[:8]}"
    other = cluster_name(other_run, 1)
    group = GROUP_PREFIX + run_id
    ours = [
        start_task(ecs, cluster, scheduler, name, network, group),
        start_task(ecs, cluster, worker, name, network, group),
        start_task(ecs, cluster, worker, name, network, group),  # a second revision
    ]
    theirs = start_task(ecs, cluster, families(other)[1], other, network, GROUP_PREFIX + other_run)
    # Listed under our name, but not our run's: never stopped (whoever started it).
    impostor = start_task(ecs, cluster, "flowrelay-x", name, network, "flowrelay:someone")
    # A family that only starts like ours (attempt 1 vs 10) is another cluster's.
    lookalike = ecs.register_task_definition(
        family=f"dask-{name}0-worker",
        containerDefinitions=[{"name": "d", "image": "i", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]

    swept = sweep(ecs, cluster, name, run_id)

    assert sorted(swept.stopped) == sorted(f"task {arn.rsplit('/', 1)[-1]}" for arn in ours)
    assert sorted(swept.removed) == [f"{scheduler}:1", f"{worker}:1", f"{worker}:2"]
    assert swept.failed == []
    assert swept.summary() == "stopped 3 tasks, deregistered 3 task definitions"
    running = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    assert theirs in running
    assert impostor in running
    assert not set(ours) & set(running)
    active = ecs.list_task_definitions(status="ACTIVE")["taskDefinitionArns"]
    assert lookalike in active
    assert f"dask-{other}-worker" in " ".join(active)
    # Idempotent: nothing is left, and finding nothing is the normal case.
    assert not sweep(ecs, cluster, name, run_id).found


def test_a_sweep_of_a_cluster_on_a_deleted_ecs_cluster_finds_nothing(ecs: Any) -> None:
    gone = f"no-such-cluster-{uuid.uuid4().hex[:6]}"
    assert sweep(ecs, gone, cluster_name("gone", 1), "gone").summary() == "nothing left"
