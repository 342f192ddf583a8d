"""Ephemeral Dask clusters on ECS for runs on ECS targets: dask-cloudprovider's
``FargateCluster`` (and ``ECSCluster``) built on what the run's target already has, and the
sweep that removes whatever such a cluster left behind.

What flowrelay supplies (``cluster_supply``), and why:

- **Defaults** (the flow's ``cluster_kwargs`` win): the target's subnets
  and security groups (so dask-cloudprovider creates no security group of its own: the group
  must let its members reach each other on the scheduler's and workers' ports, which the
  default VPC's ``default`` group and template.yaml's ``DaskSecurityGroup`` do); the execution
  role and image of the run's own task definition (so the scheduler and workers run the flow's
  code and the same versions of dask and distributed as the runner, which Dask requires); the
  target's ``dask_task_role_arn`` as the workers' role (required: not the flow run's role, which
  may start and stop tasks); the run's log group; the scheduler's private address (the runner
  is in the same network; a target that assigns public IPs is refused, see below);
  ``scheduler_timeout`` of 5 minutes: an abandoned scheduler shuts itself down, the last resort
  that bounds the cost if everything else failed.
- **Enforced** (teardown rests on them): the run's ECS cluster; ``name`` from the run and attempt
  (``flowrelay.core.clusters.cluster_name``), which names its task definition families
  ``dask-<name>-scheduler`` and ``-worker``; every scheduler and worker task started with
  ``startedBy=<name>`` and ``group=flowrelay-dask:<run id>`` (not ``flowrelay:``: the state rule
  reads that prefix as a flow run's own task); tags with the run, flow and attempt; and
  ``skip_cleanup=True``: dask-cloudprovider's start-up clean-up deletes every cluster, role and
  task definition in the account that it believes stale, including other runs' clusters that
  are still starting (dask-cloudprovider issues 242, 262 and 420).

``sweep`` finds a cluster by those marks, on the ECS cluster the run's launch recorded (never one a
report names): the tasks ECS lists for ``startedBy=<name>`` that carry the run's Dask group
(stopped) and the active revisions of its two families (deregistered). It is idempotent, and
finding nothing is the normal case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrelay.core.clusters import (
    ECS_CLUSTER,
    FARGATE_CLUSTER,
    ClusterSupply,
    ClusterSweep,
    cluster_name,
)
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.aws_errors import call
from flowrelay.launchers.base import LaunchError, Swept
from flowrelay.launchers.ecs.names import ATTEMPT_TAG, FLOW_TAG, RUN_ID_TAG, tag_value
from flowrelay.launchers.ecs.run_task import ecs_run
from flowrelay.launchers.ecs.settings import EcsSettings
from flowrelay.launchers.ecs.task_definitions import awslogs, flow_container

#: The ``group`` of a Dask cluster's tasks; deliberately not ``flowrelay:`` (see above).
GROUP_PREFIX = "flowrelay-dask:"
#: Without these, dask-cloudprovider creates an ECS cluster, IAM roles or a security group of its
#: own (or looks up the account's default VPC): a run's cluster must use what the stack has.
#: Each with where it is set.
REQUIRED = {
    "cluster_arn": "the target's cluster",
    "subnets": "the target's subnets setting",
    "security_groups": "the target's security_groups setting",
    "execution_role_arn": "the target's execution_role_arn or the run's ECSRun",
    "task_role_arn": "the target's dask_task_role_arn (the stack's DaskTaskRoleArn output)",
}
#: How long an abandoned scheduler waits before shutting itself down (dask-cloudprovider's own
#: default, made explicit: it is the last resort, documented in docs/dask-clusters.md).
SCHEDULER_TIMEOUT = "5 minutes"
CLASSES = (FARGATE_CLUSTER, ECS_CLUSTER)
_STOP_REASON = "flowrelay: sweeping the Dask cluster of a finished flow run"


def families(name: str) -> list[str]:
    """The task definition families dask-cloudprovider registers for cluster ``name``."""
    return [f"dask-{name}-scheduler", f"dask-{name}-worker"]


def cluster_supply(
    run: FlowRun, target: Target, infrastructure: Mapping[str, Any], ecs: Any, ec2: Any
) -> ClusterSupply:
    """What a Dask cluster created by attempt ``run.attempt`` of ``run`` gets from its ECS
    ``target`` and its launch (``infrastructure``, as recorded); reads the run's task
    definition (and, when the target does not name its VPC, the first subnet's). Raises
    ``LaunchError`` naming what is missing."""
    from flowrelay.launchers.ecs.launcher import EcsLauncher, LaunchResult

    settings: EcsSettings = EcsLauncher.settings(target)
    launched = LaunchResult.model_validate(infrastructure)
    attempt = launched.attempt or run.attempt
    name = cluster_name(run.run_id, attempt)
    definition = call(
        "DescribeTaskDefinition",
        ecs.describe_task_definition,
        taskDefinition=launched.task_definition_arn,
    )["taskDefinition"]
    container = flow_container(list(definition.get("containerDefinitions") or [{}]))
    log_group, _ = awslogs(container)
    subnets, security_groups = _network(run, settings)
    if settings.assign_public_ip:
        raise LaunchError(
            f"target {target.name!r} gives its tasks public IP addresses (assign_public_ip), as "
            "public subnets without a NAT gateway need to pull images; a Dask cluster's tasks "
            "are reached on their private addresses, with no public IP, and could not pull "
            "theirs there: give the target private subnets with a NAT gateway (or VPC "
            "endpoints for ECR and CloudWatch Logs) and assign_public_ip false",
            retryable=False,
        )
    defaults: dict[str, Any] = {
        "image": container.get("image") or settings.image,
        "execution_role_arn": definition.get("executionRoleArn") or settings.execution_role_arn,
        # Not the flow run's role (which may start and stop tasks): the cluster's own.
        "task_role_arn": settings.dask_task_role_arn,
        "cloudwatch_logs_group": log_group or settings.log_group,
        "fargate_use_private_ip": True,
        "scheduler_timeout": SCHEDULER_TIMEOUT,
    }
    if subnets:
        defaults["subnets"] = subnets
        defaults["vpc"] = settings.vpc or _vpc_of(ec2, subnets[0])
    if security_groups:
        defaults["security_groups"] = security_groups
    marks = {"startedBy": name, "group": GROUP_PREFIX + run.run_id}
    return ClusterSupply(
        classes=list(CLASSES),
        sweep=ClusterSweep(kind="ecs", name=name, cluster_class=FARGATE_CLUSTER),
        defaults={key: value for key, value in defaults.items() if value is not None},
        required=dict(REQUIRED),
        enforced={
            # The run's own cluster: the sweep looks there (and the stack's IAM allows no other).
            "cluster_arn": launched.cluster,
            "name": name,
            "skip_cleanup": True,
            "tags": {
                RUN_ID_TAG: tag_value(run.run_id),
                FLOW_TAG: tag_value(run.flow_name),
                ATTEMPT_TAG: str(attempt),
            },
            "scheduler_task_kwargs": marks,
            "worker_task_kwargs": marks,
        },
    )


def sweep(ecs: Any, ecs_cluster: str, name: str, run_id: str) -> Swept:
    """Stop every task of cluster ``name`` of run ``run_id`` that ECS still runs on
    ``ecs_cluster`` (the run's recorded one), and deregister the cluster's task definitions.
    Only tasks that carry the run's Dask group are stopped, whatever else lists under the name."""
    swept = Swept(remove_verb="deregistered", remove_noun="task definition")
    group = GROUP_PREFIX + run_id
    for task in _running_tasks(ecs, ecs_cluster, name):
        arn = str(task["taskArn"])
        if task.get("group") != group:
            continue
        try:
            call("StopTask", ecs.stop_task, cluster=ecs_cluster, task=arn, reason=_STOP_REASON)
            swept.stopped.append(f"task {arn.rsplit('/', 1)[-1]}")
        except LaunchError as exc:
            swept.failed.append(f"task {arn.rsplit('/', 1)[-1]}: {exc.reason}")
    for family in families(name):
        for arn in _active_definitions(ecs, family):
            try:
                call("DeregisterTaskDefinition", ecs.deregister_task_definition, taskDefinition=arn)
                swept.removed.append(arn.rsplit("/", 1)[-1])
            except LaunchError as exc:
                swept.failed.append(f"{arn.rsplit('/', 1)[-1]}: {exc.reason}")
    return swept


def _network(run: FlowRun, settings: EcsSettings) -> tuple[list[str], list[str]]:
    """The subnets and security groups the run's own task got: the target's, unless the run's
    ``run_task_kwargs`` gave others."""
    extra = ecs_run(run).run_task_kwargs or {}
    vpc = (extra.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    subnets = list(vpc.get("subnets") or settings.subnets)
    groups = list(vpc.get("securityGroups") or settings.security_groups)
    return subnets, groups


def _vpc_of(ec2: Any, subnet: str) -> str | None:
    answer = call("DescribeSubnets", ec2.describe_subnets, SubnetIds=[subnet])
    found = answer.get("Subnets") or []
    return str(found[0]["VpcId"]) if found else None


def _running_tasks(ecs: Any, ecs_cluster: str, started_by: str) -> list[dict[str, Any]]:
    """The tasks ECS lists for ``started_by`` on ``ecs_cluster`` that are meant to run, as
    DescribeTasks describes them (their group says whose they are)."""
    arns: list[str] = []
    token: str | None = None
    while True:
        # desiredStatus RUNNING is AWS's default (it covers tasks still starting); moto needs
        # it said.
        kwargs: dict[str, Any] = {
            "cluster": ecs_cluster,
            "startedBy": started_by,
            "desiredStatus": "RUNNING",
        }
        if token:
            kwargs["nextToken"] = token
        try:
            page = call("ListTasks", ecs.list_tasks, **kwargs)
        except LaunchError as exc:
            if exc.code == "ClusterNotFoundException":
                return []  # the cluster is gone, and its tasks with it
            raise
        arns.extend(page.get("taskArns") or [])
        token = page.get("nextToken")
        if not token:
            break
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):  # DescribeTasks takes 100 at a time
        batch = arns[start : start + 100]
        answer = call("DescribeTasks", ecs.describe_tasks, cluster=ecs_cluster, tasks=batch)
        tasks.extend(answer.get("tasks") or [])
    return tasks


def _active_definitions(ecs: Any, family: str) -> list[str]:
    arns: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"familyPrefix": family, "status": "ACTIVE"}
        if token:
            kwargs["nextToken"] = token
        page = call("ListTaskDefinitions", ecs.list_task_definitions, **kwargs)
        # familyPrefix matches by prefix: keep this family's revisions only.
        arns.extend(
            arn
            for arn in page.get("taskDefinitionArns") or []
            if arn.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family
        )
        token = page.get("nextToken")
        if not token:
            return arns
