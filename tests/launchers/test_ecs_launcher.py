"""The ECS launcher against a moto server over real HTTP on loopback (never real AWS).

moto's ECS needs a container-level memory, an existing subnet and a ``securityGroups`` entry
(see the module docstring of ``flowrelay.launchers.ecs`` for what flowrelay sends). Its task
state manager is set to manual progression so a task stays RUNNING until StopTask.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from flowrelay.core.routing import Target
from flowrelay.core.run_configs import ECSRun, KubernetesRun, UniversalRun
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.ecs import EcsLauncher, LaunchResult
from flowrelay.launchers.ecs.names import GROUP_PREFIX

TABLE = "flowrelay-table"
BUS = "flowrelay-bus"
LOG_GROUP = "/flowrelay/runs"


# --- fixtures ---------------------------------------------------------------------------------


class Calls:
    """Counts the API calls a client makes, and keeps their parameters."""

    def __init__(self, client: Any) -> None:
        self.count: Counter[str] = Counter()
        self.params: dict[str, list[dict[str, Any]]] = {}
        client.meta.events.register("before-call.ecs.*", self._record)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.count[model.name] += 1
        self.params.setdefault(model.name, []).append(json.loads(params["body"]))


@pytest.fixture
def calls(ecs: Any, cluster: str) -> Calls:
    """Calls made after the test's cluster exists."""
    return Calls(ecs)


@pytest.fixture
def image() -> str:
    """An image unique to the test, so task definition contents (and families) are too."""
    return f"example/flow:{uuid.uuid4().hex[:8]}"


@pytest.fixture
def target(cluster: str, network: dict[str, Any], image: str) -> Target:
    return Target(
        name="fargate",
        kind="ecs",
        settings={"cluster": cluster, "image": image, "log_group": LOG_GROUP, **network},
    )


@pytest.fixture
def launcher(ecs: Any) -> EcsLauncher:
    return EcsLauncher(ecs, table_name=TABLE, bus_name=BUS)


def flow_run(run_config: Any = None, flow_name: str = "etl") -> FlowRun:
    now = datetime.now(UTC)
    if run_config is not None and not isinstance(run_config, dict):
        run_config = run_config.model_dump(mode="json")
    return FlowRun(
        run_id=f"run-{uuid.uuid4().hex[:12]}",
        flow_name=flow_name,
        run_config=run_config,
        created_at=now,
        updated_at=now,
        state_entered_at=now,
    )


def describe_task(ecs: Any, result: LaunchResult) -> dict[str, Any]:
    tasks = ecs.describe_tasks(cluster=result.cluster, tasks=[result.task_arn], include=["TAGS"])
    assert len(tasks["tasks"]) == 1
    task: dict[str, Any] = tasks["tasks"][0]
    return task


def task_definition(ecs: Any, arn: str) -> dict[str, Any]:
    described: dict[str, Any] = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    return described


def revisions(ecs: Any, family: str) -> list[str]:
    # moto's familyPrefix filter matches nothing for these families, so filter here.
    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    return [arn for arn in arns if arn.split("/")[-1].rsplit(":", 1)[0] == family]


def environment(task: dict[str, Any], container: str = "flow") -> dict[str, str]:
    for override in task["overrides"]["containerOverrides"]:
        if override["name"] == container:
            return {item["name"]: item["value"] for item in override.get("environment", [])}
    raise AssertionError(f"no override for container {container!r}: {task['overrides']}")


def family_of(arn: str) -> str:
    return arn.rsplit("/", maxsplit=1)[-1].rsplit(":", 1)[0]


# --- launching --------------------------------------------------------------------------------


def test_a_launch_starts_one_task_marked_for_its_run(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target, cluster: str, image: str
) -> None:
    run = flow_run(ECSRun(env={"STAGE": "test"}), flow_name="nightly etl!")
    result = launcher.launch(run, target, attempt=2)

    listed = ecs.list_tasks(cluster=cluster, startedBy="flowrelay")["taskArns"]
    assert listed == [result.task_arn]
    task = describe_task(ecs, result)
    assert task["group"] == GROUP_PREFIX + run.run_id
    assert task["startedBy"] == "flowrelay"
    assert task["lastStatus"] == "RUNNING"
    assert {tag["key"]: tag["value"] for tag in task["tags"]} == {
        "flowrelay:run-id": run.run_id,
        "flowrelay:flow": "nightly etl_",  # "!" is not allowed in an ECS tag value
        "flowrelay:attempt": "2",
    }
    assert environment(task) == {
        "STAGE": "test",
        "AWS_REGION": "us-east-1",
        "FLOWRELAY_RUN_ID": run.run_id,
        "FLOWRELAY_TABLE_NAME": TABLE,
        "FLOWRELAY_BUS_NAME": BUS,
        "FLOWRELAY_ATTEMPT": "2",
    }
    (request,) = calls.params["RunTask"]
    assert request["clientToken"] == f"{run.run_id}-2"
    assert request["launchType"] == "FARGATE"
    assert request["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"

    assert result.cluster == task["clusterArn"]
    assert result.cluster.endswith(f"/{cluster}")
    assert result.task_definition_arn == task["taskDefinitionArn"]
    assert result.attempt == 2
    assert (result.log_group, result.log_stream_prefix) == (LOG_GROUP, "flowrelay")
    assert result.log_stream == f"flowrelay/flow/{result.task_arn.rsplit('/', 1)[-1]}"
    assert result.model_dump(mode="json")["task_arn"] == result.task_arn

    definition = task_definition(ecs, result.task_definition_arn)
    assert definition["family"].startswith("flowrelay-")
    assert len(definition["family"]) == 26
    assert definition["networkMode"] == "awsvpc"
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    (container,) = definition["containerDefinitions"]
    assert container["name"] == "flow"
    assert container["image"] == image
    assert container["command"] == ["flowrelay-runner"]
    assert container["memory"] == 512
    assert container["environment"] == []  # per-run values live in the overrides only
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": LOG_GROUP,
            "awslogs-stream-prefix": "flowrelay",
            "awslogs-region": "us-east-1",
        },
    }


def test_runs_with_the_same_config_share_one_task_definition(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target
) -> None:
    first = launcher.launch(flow_run(), target)
    second = launcher.launch(flow_run(ECSRun(env={"ONLY": "per run"})), target)
    assert second.task_definition_arn == first.task_definition_arn
    family = family_of(first.task_definition_arn)
    assert len(revisions(ecs, family)) == 1
    assert calls.count["RegisterTaskDefinition"] == 1
    assert calls.count["DescribeTaskDefinition"] == 1  # only before the first registration

    bigger = launcher.launch(flow_run(ECSRun(cpu="512", memory="1024")), target)
    assert family_of(bigger.task_definition_arn) != family
    assert calls.count["RegisterTaskDefinition"] == 2

    describes = calls.count["DescribeTaskDefinition"]
    third = launcher.launch(flow_run(), target)
    assert third.task_definition_arn == first.task_definition_arn
    assert calls.count["DescribeTaskDefinition"] == describes  # served from the cache
    assert calls.count["RegisterTaskDefinition"] == 2

    # A new launcher (a cold Lambda) finds the family with one describe, and registers nothing.
    fresh_calls = Counter[str]()
    ecs.meta.events.register(
        "before-call.ecs.RegisterTaskDefinition",
        lambda **_: fresh_calls.update(["register"]),
    )
    fresh = EcsLauncher(ecs, table_name=TABLE, bus_name=BUS)
    assert fresh.launch(flow_run(), target).task_definition_arn == first.task_definition_arn
    assert fresh_calls["register"] == 0
    assert len(revisions(ecs, family)) == 1


def test_the_same_size_written_two_ways_is_one_task_definition(
    launcher: EcsLauncher, target: Target
) -> None:
    words = launcher.launch(flow_run(ECSRun(cpu="1 vcpu", memory="2 GB")), target)
    units = launcher.launch(flow_run(ECSRun(cpu="1024", memory="2048")), target)
    assert words.task_definition_arn == units.task_definition_arn


def test_ecs_run_fields_override_the_target_and_run_task_kwargs_win_last(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target, network: dict[str, Any]
) -> None:
    role = "arn:aws:iam::123456789012:role/flow-task"
    config = ECSRun(
        image="example/other:2",
        cpu="1 vcpu",
        memory="2 GB",
        task_role_arn=role,
        env={"STAGE": "prod"},
        run_task_kwargs={
            "startedBy": "etl-team",
            "networkConfiguration": {"awsvpcConfiguration": {"assignPublicIp": "ENABLED"}},
            "overrides": {
                "containerOverrides": [
                    {"name": "flow", "environment": [{"name": "STAGE", "value": "canary"}]}
                ]
            },
            "tags": [{"key": "team", "value": "data"}],
        },
    )
    run = flow_run(config)
    result = launcher.launch(run, target)

    definition = task_definition(ecs, result.task_definition_arn)
    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")
    assert definition["taskRoleArn"] == role
    (container,) = definition["containerDefinitions"]
    assert (container["image"], container["memory"]) == ("example/other:2", 2048)

    task = describe_task(ecs, result)
    assert task["startedBy"] == "etl-team"
    assert task["group"] == GROUP_PREFIX + run.run_id
    env = environment(task)
    assert env["STAGE"] == "canary"
    assert env["FLOWRELAY_RUN_ID"] == run.run_id
    assert {tag["key"] for tag in task["tags"]} == {
        "flowrelay:run-id",
        "flowrelay:flow",
        "flowrelay:attempt",
        "team",
    }
    (request,) = calls.params["RunTask"]
    assert request["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": network["subnets"],
        "securityGroups": network["security_groups"],
        "assignPublicIp": "ENABLED",
    }


def test_a_universal_run_uses_the_target_defaults_with_its_env(
    ecs: Any, launcher: EcsLauncher, target: Target, image: str
) -> None:
    result = launcher.launch(flow_run(UniversalRun(env={"A": "1"})), target)
    task = describe_task(ecs, result)
    assert environment(task)["A"] == "1"
    (container,) = task_definition(ecs, result.task_definition_arn)["containerDefinitions"]
    assert container["image"] == image


def test_capacity_providers_from_the_target_replace_the_launch_type(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target
) -> None:
    spot = target.model_copy(
        update={
            "settings": {
                **target.settings,
                "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
            }
        }
    )
    result = launcher.launch(flow_run(), spot)
    (request,) = calls.params["RunTask"]
    assert "launchType" not in request
    assert request["capacityProviderStrategy"] == [
        {"capacityProvider": "FARGATE_SPOT", "weight": 1}
    ]
    assert task_definition(ecs, result.task_definition_arn)["requiresCompatibilities"] == [
        "FARGATE"
    ]


# --- task definitions from elsewhere -----------------------------------------------------------


def test_a_task_definition_arn_is_used_as_is(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target
) -> None:
    registered = ecs.register_task_definition(
        family=f"custom-{uuid.uuid4().hex[:8]}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "main", "image": "example/custom:1", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    calls.count.clear()

    config = ECSRun(task_definition_arn=registered, cpu="512", memory="1 GB")
    result = launcher.launch(flow_run(config), target)
    launcher.launch(flow_run(config), target)

    assert result.task_definition_arn == registered
    assert calls.count["RegisterTaskDefinition"] == 0
    assert calls.count["DescribeTaskDefinition"] == 1  # to find the container; then cached
    assert result.container == "main"
    assert result.log_group is None  # it does not log with awslogs
    task = describe_task(ecs, result)
    assert environment(task, "main")["FLOWRELAY_RUN_ID"]
    request = calls.params["RunTask"][0]
    assert (request["overrides"]["cpu"], request["overrides"]["memory"]) == ("512", "1024")


def test_a_task_definition_from_a_local_yaml_file(
    ecs: Any, launcher: EcsLauncher, target: Target, tmp_path: Path
) -> None:
    path = tmp_path / "task-definition.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "family": "ignored-the-content-names-it",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/x:3",
                "revision": 3,
                "memory": "1024",
                "containerDefinitions": [
                    {"name": "sidecar", "image": "example/proxy:1", "memory": 128},
                    {"name": "flow", "image": f"example/yaml:{uuid.uuid4().hex[:8]}"},
                ],
            }
        )
    )
    result = launcher.launch(flow_run(ECSRun(task_definition_path=str(path))), target)
    again = launcher.launch(flow_run(ECSRun(task_definition_path=str(path))), target)
    assert again.task_definition_arn == result.task_definition_arn

    definition = task_definition(ecs, result.task_definition_arn)
    assert definition["family"].startswith("flowrelay-")
    assert definition["memory"] == "1024"  # the file's memory beats the target's 512
    sidecar, flow = definition["containerDefinitions"]
    assert flow["command"] == ["flowrelay-runner"]
    assert flow["memory"] == 1024
    assert flow["logConfiguration"]["options"]["awslogs-group"] == LOG_GROUP
    assert "command" not in sidecar or not sidecar["command"]
    assert environment(describe_task(ecs, result))["FLOWRELAY_RUN_ID"]


def test_a_task_definition_from_s3_and_its_first_container(
    ecs: Any, launcher: EcsLauncher, target: Target
) -> None:
    s3 = boto3.client("s3")
    bucket = f"flowrelay-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket,
        Key="defs/etl.json",
        Body=json.dumps(
            {
                "cpu": "512",
                "memory": "1024",
                "containerDefinitions": [
                    {
                        "name": "app",
                        "image": "example/s3:1",
                        "command": ["sh", "-c", "exec flowrelay-runner"],
                    }
                ],
            }
        ).encode(),
    )
    config = ECSRun(task_definition_path=f"s3://{bucket}/defs/etl.json")
    result = launcher.launch(flow_run(config), target)
    assert result.container == "app"
    (container,) = task_definition(ecs, result.task_definition_arn)["containerDefinitions"]
    assert container["command"] == ["sh", "-c", "exec flowrelay-runner"]  # its own is kept
    assert container["image"] == "example/s3:1"
    assert environment(describe_task(ecs, result), "app")["FLOWRELAY_ATTEMPT"] == "1"

    missing = ECSRun(task_definition_path=f"s3://{bucket}/defs/nope.json")
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(missing), target)
    assert error.value.retryable is False
    assert error.value.reason == "The specified key does not exist."


# --- errors -----------------------------------------------------------------------------------


def test_no_image_anywhere_fails_clearly_without_calling_aws(
    calls: Calls, launcher: EcsLauncher, target: Target
) -> None:
    settings = {key: value for key, value in target.settings.items() if key != "image"}
    bare = target.model_copy(update={"settings": settings})
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), bare)
    assert error.value.retryable is False
    assert "no image to run" in str(error.value)
    assert not calls.count


def test_an_unknown_cluster_fails_with_aws_message(
    launcher: EcsLauncher, target: Target, image: str
) -> None:
    nowhere = target.model_copy(update={"settings": {**target.settings, "cluster": "no-such"}})
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), nowhere)
    assert error.value.retryable is False
    assert error.value.reason == "Cluster not found."
    assert error.value.code == "ClusterNotFoundException"


def test_an_unknown_task_definition_arn_fails_with_aws_message(
    launcher: EcsLauncher, target: Target
) -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/not-there:1"
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(ECSRun(task_definition_arn=arn)), target)
    assert error.value.retryable is False
    assert error.value.reason == "Unable to describe task definition."


@pytest.mark.parametrize(
    ("run_task_kwargs", "expected"),
    [
        ({"group": "mine"}, "may not set 'group'"),
        ({"clientToken": "mine"}, "may not set 'clientToken'"),
        ({"count": 3}, "a flow run is one task"),
        (
            {
                "overrides": {
                    "containerOverrides": [
                        {
                            "name": "flow",
                            "environment": [{"name": "FLOWRELAY_RUN_ID", "value": "x"}],
                        }
                    ]
                }
            },
            "FLOWRELAY_*",
        ),
        ({"notAnArgument": 1}, "Unknown parameter"),
    ],
)
def test_run_task_kwargs_that_cannot_work_fail_without_starting_a_task(
    calls: Calls,
    launcher: EcsLauncher,
    target: Target,
    run_task_kwargs: dict[str, Any],
    expected: str,
) -> None:
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(ECSRun(run_task_kwargs=run_task_kwargs)), target)
    assert error.value.retryable is False
    assert expected in str(error.value)
    assert calls.count["RunTask"] == 0


def test_a_run_config_for_another_kind_is_refused(launcher: EcsLauncher, target: Target) -> None:
    with pytest.raises(LaunchError, match="a KubernetesRun cannot run on an ecs target"):
        launcher.launch(flow_run(KubernetesRun(image="x")), target)


# --- stopping ---------------------------------------------------------------------------------


def test_stop_stops_a_running_task_and_repeats_are_harmless(
    ecs: Any, calls: Calls, launcher: EcsLauncher, target: Target, cluster: str
) -> None:
    result = launcher.launch(flow_run(), target)
    assert describe_task(ecs, result)["lastStatus"] == "RUNNING"

    launcher.stop(result.cluster, result.task_arn, "flowrelay: cancelled by user")
    task = describe_task(ecs, result)
    assert (task["lastStatus"], task["desiredStatus"]) == ("STOPPED", "STOPPED")
    assert task["stoppedReason"] == "flowrelay: cancelled by user"
    assert calls.count["StopTask"] == 1

    launcher.stop(result.cluster, result.task_arn, "again")
    assert calls.count["StopTask"] == 1  # already stopped: nothing to send
    assert describe_task(ecs, result)["stoppedReason"] == "flowrelay: cancelled by user"

    unknown = f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{uuid.uuid4().hex}"
    launcher.stop(cluster, unknown, "never ran")  # moto would answer StopTask with HTTP 500
    launcher.stop("no-such-cluster", unknown, "never ran")
    assert calls.count["StopTask"] == 1
