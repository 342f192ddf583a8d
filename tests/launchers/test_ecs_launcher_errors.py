"""ECS launcher: error classification and the pure rules (merging, naming, sizes).

moto cannot produce capacity failures, throttling or server errors, so these cases stub only the
boto3 client boundary with ``botocore.stub.Stubber``: the launcher's code runs unchanged, the
responses are what ECS documents. Everything else is tested over HTTP in
``tests/launchers/test_ecs_launcher.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from flowrelay.core.routing import Target
from flowrelay.core.run_configs import ECSRun
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.ecs import EcsLauncher
from flowrelay.launchers.ecs.names import client_token
from flowrelay.launchers.ecs.run_task import merge_run_task_kwargs
from flowrelay.launchers.ecs.settings import EcsSettings
from flowrelay.launchers.ecs.task_definitions import build_task_definition, task_definition_family

CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/flows"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/flows/0123456789abcdef0123456789abcdef"
TD_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/flowrelay-0123456789abcdef:1"


@pytest.fixture
def client() -> Any:
    # Stubbed: no request leaves the process; the fake keys only satisfy the signer.
    return boto3.client(
        "ecs",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="http://127.0.0.1:9",
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def launcher(client: Any) -> EcsLauncher:
    return EcsLauncher(client, table_name="t", bus_name="b")


TARGET = Target(
    name="fargate",
    kind="ecs",
    settings={"cluster": "flows", "subnets": ["subnet-1"], "security_groups": ["sg-1"]},
)


def flow_run(**config: Any) -> FlowRun:
    now = datetime.now(UTC)
    return FlowRun(
        run_id="run-1",
        flow_name="etl",
        run_config=ECSRun(image="example/flow:1", **config).model_dump(mode="json"),
        created_at=now,
        updated_at=now,
        state_entered_at=now,
    )


def registered(stub: Stubber) -> None:
    """The first launch of a definition: ECS does not know the family, so it is registered."""
    stub.add_client_error(
        "describe_task_definition",
        service_error_code="ClientException",
        service_message="Unable to describe task definition.",
        http_status_code=400,
    )
    stub.add_response("register_task_definition", {"taskDefinition": {"taskDefinitionArn": TD_ARN}})


# --- RunTask failures and AWS errors ----------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        ("RESOURCE:MEMORY", True),
        ("RESOURCE:CPU", True),
        ("RESOURCE:ENI", True),
        ("Capacity is unavailable at this time. Please try again later.", True),
        ("AGENT", True),
        ("ATTRIBUTE", False),
        ("MISSING", False),
    ],
)
def test_run_task_failures_are_classified(
    stub: Stubber, launcher: EcsLauncher, reason: str, retryable: bool
) -> None:
    registered(stub)
    stub.add_response(
        "run_task",
        {"tasks": [], "failures": [{"arn": CLUSTER_ARN, "reason": reason, "detail": "d"}]},
    )
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), TARGET)
    assert error.value.retryable is retryable
    assert error.value.reason == reason
    assert error.value.code == "RunTaskFailure"
    assert f"{reason} (d)" in str(error.value)


def test_run_task_with_neither_tasks_nor_failures_is_retryable(
    stub: Stubber, launcher: EcsLauncher
) -> None:
    registered(stub)
    stub.add_response("run_task", {"tasks": [], "failures": []})
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), TARGET)
    assert error.value.retryable is True


@pytest.mark.parametrize(
    ("code", "message", "status", "retryable"),
    [
        ("ThrottlingException", "Rate exceeded", 400, True),
        ("ServerException", "Service unavailable. Try again later.", 500, True),
        ("ClientException", "Capacity is unavailable at this time.", 400, True),
        ("InvalidParameterException", "No Container Instances were found.", 400, False),
        ("ClientException", "Tasks provided in the request are not valid.", 400, False),
        ("AccessDeniedException", "User is not authorized to perform ecs:RunTask", 400, False),
        ("PlatformUnknownException", "The specified platform version does not exist.", 400, False),
    ],
)
def test_run_task_errors_are_classified_with_aws_message(
    stub: Stubber,
    launcher: EcsLauncher,
    code: str,
    message: str,
    status: int,
    retryable: bool,
) -> None:
    registered(stub)
    stub.add_client_error(
        "run_task", service_error_code=code, service_message=message, http_status_code=status
    )
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), TARGET)
    assert error.value.retryable is retryable
    assert error.value.reason == message
    assert error.value.code == code


def test_throttled_describe_is_retryable_and_not_taken_for_a_missing_family(
    stub: Stubber, launcher: EcsLauncher
) -> None:
    stub.add_client_error(
        "describe_task_definition",
        service_error_code="ThrottlingException",
        service_message="Rate exceeded",
        http_status_code=400,
    )
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(), TARGET)
    assert error.value.retryable is True


def test_a_rejected_task_definition_is_not_retryable(stub: Stubber, launcher: EcsLauncher) -> None:
    stub.add_client_error(
        "describe_task_definition",
        service_error_code="ClientException",
        service_message="Unable to describe task definition.",
    )
    message = "Invalid 'cpu' setting for task."
    stub.add_client_error(
        "register_task_definition", service_error_code="ClientException", service_message=message
    )
    with pytest.raises(LaunchError) as error:
        launcher.launch(flow_run(cpu="3"), TARGET)
    assert (error.value.retryable, error.value.reason) == (False, message)


# --- stop -------------------------------------------------------------------------------------


def running(stub: Stubber) -> None:
    stub.add_response(
        "describe_tasks",
        {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "RUNNING", "desiredStatus": "RUNNING"}]},
    )


def test_stop_of_a_task_aws_no_longer_knows_is_not_an_error(
    stub: Stubber, launcher: EcsLauncher
) -> None:
    stub.add_response(
        "describe_tasks", {"tasks": [], "failures": [{"arn": TASK_ARN, "reason": "MISSING"}]}
    )
    launcher.stop(CLUSTER_ARN, TASK_ARN, "cancelled")


def test_stop_racing_the_task_end_is_not_an_error(stub: Stubber, launcher: EcsLauncher) -> None:
    running(stub)
    stub.add_client_error(
        "stop_task",
        service_error_code="InvalidParameterException",
        service_message="The referenced task was not found.",
    )
    launcher.stop(CLUSTER_ARN, TASK_ARN, "cancelled")


def test_stop_answered_by_http_500_checks_the_task_again(
    stub: Stubber, launcher: EcsLauncher
) -> None:
    # What moto does for a task it does not know: a plain HTTP 500 with an HTML page.
    running(stub)
    stub.add_client_error(
        "stop_task",
        service_error_code="500",
        service_message="<!doctype html><title>500 Internal Server Error</title>",
        http_status_code=500,
    )
    stub.add_response("describe_tasks", {"tasks": [], "failures": []})
    launcher.stop(CLUSTER_ARN, TASK_ARN, "cancelled")


def test_stop_failing_for_a_task_still_running_raises(stub: Stubber, launcher: EcsLauncher) -> None:
    running(stub)
    stub.add_client_error(
        "stop_task",
        service_error_code="ServerException",
        service_message="Service unavailable.",
        http_status_code=500,
    )
    running(stub)
    with pytest.raises(LaunchError) as error:
        launcher.stop(CLUSTER_ARN, TASK_ARN, "cancelled")
    assert (error.value.retryable, error.value.reason) == (True, "Service unavailable.")


def test_stop_truncates_the_reason_to_ecs_limit(stub: Stubber, launcher: EcsLauncher) -> None:
    running(stub)
    stub.add_response(
        "stop_task",
        {"task": {"taskArn": TASK_ARN}},
        expected_params={"cluster": CLUSTER_ARN, "task": TASK_ARN, "reason": "x" * 255},
    )
    launcher.stop(CLUSTER_ARN, TASK_ARN, "x" * 1000)


# --- pure rules -------------------------------------------------------------------------------


def test_client_token_is_the_run_and_attempt_within_64_characters() -> None:
    assert client_token("abc", 1) == "abc-1"
    long_id = "r" * 64
    tokens = {client_token(long_id, attempt) for attempt in (1, 2, 3)}
    assert len(tokens) == 3
    assert all(len(token) == 64 and token.startswith("r" * 47) for token in tokens)
    assert client_token(long_id, 2) == client_token(long_id, 2)


def test_family_is_the_content_hash_whatever_the_key_order() -> None:
    one = {"cpu": "256", "memory": "512", "containerDefinitions": [{"name": "flow"}]}
    two = {"containerDefinitions": [{"name": "flow"}], "memory": "512", "cpu": "256"}
    assert task_definition_family(one) == task_definition_family(two)
    assert task_definition_family({**one, "family": "other"}) == task_definition_family(one)
    assert task_definition_family({**one, "cpu": "512"}) != task_definition_family(one)


@pytest.mark.parametrize(
    ("settings", "compatibilities", "network_mode"),
    [
        ({"launch_type": "EC2"}, ["EC2"], "awsvpc"),
        ({"launch_type": "EXTERNAL"}, ["EXTERNAL"], "bridge"),
        ({"launch_type": None}, ["EC2", "FARGATE"], "awsvpc"),
        (
            {"capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT"}]},
            ["FARGATE"],
            "awsvpc",
        ),
        ({"capacity_provider_strategy": [{"capacityProvider": "my-asg"}]}, ["EC2"], "awsvpc"),
    ],
)
def test_compatibilities_follow_the_launch_type(
    settings: dict[str, Any], compatibilities: list[str], network_mode: str
) -> None:
    built = build_task_definition(
        ECSRun(image="i"), EcsSettings(cluster="c", **settings), region="us-east-1"
    )
    assert built["requiresCompatibilities"] == compatibilities
    assert built["networkMode"] == network_mode


@pytest.mark.parametrize(
    ("cpu", "memory", "expected"),
    [
        ("1 vcpu", "2 GB", ("1024", "2048")),
        ("0.25 vcpu", "0.5 GB", ("256", "512")),
        ("2048", "4096", ("2048", "4096")),
    ],
)
def test_sizes_are_normalised_to_ecs_units(
    cpu: str, memory: str, expected: tuple[str, str]
) -> None:
    built = build_task_definition(
        ECSRun(image="i", cpu=cpu, memory=memory), EcsSettings(cluster="c")
    )
    assert (built["cpu"], built["memory"]) == expected
    assert built["containerDefinitions"][0]["memory"] == int(expected[1])


def test_run_task_kwargs_merge_rule() -> None:
    computed = {
        "launchType": "FARGATE",
        "networkConfiguration": {
            "awsvpcConfiguration": {"subnets": ["s"], "assignPublicIp": "DISABLED"}
        },
        "overrides": {
            "containerOverrides": [
                {"name": "flow", "environment": [{"name": "A", "value": "1"}]},
            ]
        },
        "tags": [{"key": "flowrelay:run-id", "value": "r"}],
    }
    extra = {
        "capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}],
        "networkConfiguration": {"awsvpcConfiguration": {"assignPublicIp": "ENABLED"}},
        "overrides": {
            "cpu": "512",
            "containerOverrides": [
                {"name": "flow", "environment": [{"name": "A", "value": "2"}], "cpu": 256},
                {"name": "sidecar", "command": ["x"]},
            ],
        },
        "tags": [{"key": "team", "value": "data"}],
    }
    merged = merge_run_task_kwargs(computed, extra)
    assert "launchType" not in merged
    assert merged["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT"}]
    assert merged["networkConfiguration"]["awsvpcConfiguration"] == {
        "subnets": ["s"],
        "assignPublicIp": "ENABLED",
    }
    assert merged["overrides"] == {
        "cpu": "512",
        "containerOverrides": [
            {"name": "flow", "environment": [{"name": "A", "value": "2"}], "cpu": 256},
            {"name": "sidecar", "command": ["x"]},
        ],
    }
    assert [tag["key"] for tag in merged["tags"]] == ["flowrelay:run-id", "team"]
    assert computed["launchType"] == "FARGATE"  # the inputs are left alone
    assert merge_run_task_kwargs(computed, {"networkConfiguration": None}) == {
        **computed,
        "networkConfiguration": None,
    }
