"""template.yaml: lint, offline SAM translation, and the properties the architecture relies on
(dead-letter queues with alarms, least-privilege IAM, event routing, function triggers)."""

from __future__ import annotations

import ast
import copy
import doctest
import fnmatch
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import flowrelay.devstack.template
from flowrelay.core.events import SOURCE
from flowrelay.devstack.template import (
    EventSource,
    function_event_sources,
    functions,
    load_template,
    rate_seconds,
    resource_properties,
)
from flowrelay.launchers.ecs.names import GROUP_PREFIX

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

#: Actions that must never be granted on Resource "*".
SENSITIVE_ACTIONS = (
    "ecs:RunTask",
    "ecs:StopTask",
    "iam:PassRole",
    "events:PutEvents",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
#: The only actions that may use Resource "*": AWS supports no resource-level permissions for them.
LAUNCH_WILDCARDS = {"ecs:RegisterTaskDefinition", "ecs:DescribeTaskDefinition"}
ACTIONS_THAT_NEED_A_WILDCARD = LAUNCH_WILDCARDS | {
    # authorized on the cluster through the ecs:cluster condition key, always with it
    "ecs:ListTasks",
    # an ephemeral Dask cluster's lookups, and sweeping its task definitions
    "ecs:DeregisterTaskDefinition",
    "ecs:ListTaskDefinitions",
    "ecs:ListAccountSettings",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
RUN_TABLE_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
}
REQUIRED_OUTPUTS = {
    "BusName",
    "BusArn",
    "TableName",
    "DispatchQueueUrl",
    "DispatchDLQUrl",
    "StateQueueUrl",
    "StateDLQUrl",
    "CancelQueueUrl",
    "CancelDLQUrl",
    "DeliveryDLQUrl",
    "ClusterName",
    "ClusterArn",
    "FlowRunTaskRoleArn",
    "FlowRunExecutionRoleArn",
    "LogGroupName",
    "DispatchFunctionName",
    "RecordStateFunctionName",
    "MonitorFunctionName",
    "AlarmTopicArn",
}
#: Work queues that no function in this template consumes yet (a later change adds the cancel
#: consumer; it must then drop CancelQueue from here).
UNCONSUMED_QUEUES: set[str] = set()


class StubManagedPolicyLoader:
    """aws-sam-translator asks this only for managed policy names it does not know; offline
    there is nothing to ask, and the names the template uses are all known to it."""

    def load(self) -> dict[str, str]:
        return {}


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    """template.yaml as plain CloudFormation, translated offline by aws-sam-translator."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse(TEMPLATE.read_text())
    for logical_id, resource in sam["Resources"].items():
        # The translator takes only S3 locations for code (`sam build`/`package` upload it).
        key = {
            "AWS::Serverless::Function": "CodeUri",
            "AWS::Serverless::LayerVersion": "ContentUri",
        }.get(resource["Type"])
        if key:
            resource["Properties"][key] = f"s3://flowrelay-artifacts/{logical_id}.zip"
    with pytest.MonkeyPatch.context() as monkeypatch:
        # The translator reads the region from a boto3 session; that needs no network.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        result: dict[str, Any] = transform(sam, {}, StubManagedPolicyLoader())
    return result


# --- helpers -------------------------------------------------------------------------------------


def of_type(resources: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: dict(resource.get("Properties", {}))
        for logical_id, resource in resources.items()
        if resource["Type"] == resource_type
    }


def get_att(logical_id: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def dead_letter_queues(resources: dict[str, Any]) -> set[str]:
    """Queues something sends dead letters to: an SQS RedrivePolicy or a rule target's
    DeadLetterConfig."""
    dlqs = set()
    for properties in of_type(resources, "AWS::SQS::Queue").values():
        if "RedrivePolicy" in properties:
            dlqs.add(properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0])
    for properties in of_type(resources, "AWS::Events::Rule").values():
        for target in properties.get("Targets", []):
            if "DeadLetterConfig" in target:
                dlqs.add(target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
    # Schedules are made at registration (flowrelay.control.schedule_sync), not in the template:
    # their DLQ is the one the scheduler's role may send to.
    if "ScheduleDLQ" in resources:
        dlqs.add("ScheduleDLQ")
    return dlqs


def rule_senders(resources: dict[str, Any]) -> dict[str, set[str]]:
    """For each queue, the rules that may send to it (as target or as dead-letter queue)."""
    senders: dict[str, set[str]] = {}
    for rule, properties in of_type(resources, "AWS::Events::Rule").items():
        for target in properties.get("Targets", []):
            arns = [target["Arn"], target.get("DeadLetterConfig", {}).get("Arn")]
            for arn in arns:
                if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                    senders.setdefault(arn["Fn::GetAtt"][0], set()).add(rule)
    return senders


def policy_statements(translated: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every inline IAM statement in the translated template, with the role/policy it is in."""
    for logical_id, resource in translated["Resources"].items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            # A policy under a condition (Fn::If) counts as present: the grant is what matters.
            policies = [
                policy["Fn::If"][1] if "Fn::If" in policy else policy
                for policy in properties.get("Policies", [])
            ]
            documents = [policy["PolicyDocument"] for policy in policies]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [properties["PolicyDocument"]]
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement


def wildcard_grants(statements: list[dict[str, Any]]) -> list[str]:
    """Sensitive actions some Allow statement grants on Resource "*" (an action pattern like
    ``ecs:*`` or ``*`` counts for every action it matches)."""
    found = []
    for statement in statements:
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource")):
            continue
        for pattern in as_list(statement.get("Action", [])):
            found += [a for a in SENSITIVE_ACTIONS if fnmatch.fnmatchcase(a, pattern)]
    return found


def grants(translated: dict[str, Any], role: str) -> dict[str, list[dict[str, Any]]]:
    """Action -> the statements of ``role``'s inline policies that allow it."""
    by_action: dict[str, list[dict[str, Any]]] = {}
    for owner, statement in policy_statements(translated):
        if owner == role and statement.get("Effect") == "Allow":
            for action in as_list(statement["Action"]):
                by_action.setdefault(action, []).append(statement)
    return by_action


def resources_of(statements: list[dict[str, Any]]) -> list[Any]:
    return [resource for statement in statements for resource in as_list(statement["Resource"])]


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- lint and translation ------------------------------------------------------------------------


def test_cfn_lint_passes() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    command = [str(cfn_lint)] if cfn_lint.exists() else [shutil.which("cfn-lint") or "cfn-lint"]
    result = subprocess.run(
        [*command, str(TEMPLATE)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_translates_offline_to_the_expected_resources(translated: dict[str, Any]) -> None:
    types = Counter(resource["Type"] for resource in translated["Resources"].values())
    assert not [t for t in types if t.startswith("AWS::Serverless::")]
    assert types == {
        "AWS::Events::EventBus": 1,
        "AWS::Events::Rule": 5,  # 4 routing rules + the monitor's schedule
        "AWS::SQS::Queue": 8,
        "AWS::SQS::QueuePolicy": 4,
        "AWS::DynamoDB::Table": 1,
        "AWS::ECS::Cluster": 1,
        "AWS::Logs::LogGroup": 1,
        # 4 functions + the flow runs' task and execution roles + the Dask clusters' task role
        # + EventBridge Scheduler's
        "AWS::IAM::Role": 8,
        "AWS::Scheduler::ScheduleGroup": 1,
        # only with DaskVpcId: the group flow runs and their Dask clusters share
        "AWS::EC2::SecurityGroup": 1,
        "AWS::EC2::SecurityGroupIngress": 1,
        "AWS::Lambda::LayerVersion": 2,
        "AWS::Lambda::Function": 4,
        "AWS::Lambda::EventSourceMapping": 3,
        "AWS::Lambda::Permission": 1,  # EventBridge may invoke the monitor
        "AWS::SNS::Topic": 1,
        "AWS::CloudWatch::Alarm": 6,  # one per DLQ, and silent runners
    }


def test_translated_triggers_are_what_lambda_gets(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    mappings = {
        properties["FunctionName"]["Ref"]: properties
        for properties in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    }
    assert set(mappings) == {"Dispatch", "RecordState", "Cancel"}
    for function, queue in (
        ("Dispatch", "DispatchQueue"),
        ("RecordState", "StateQueue"),
        ("Cancel", "CancelQueue"),
    ):
        assert mappings[function]["EventSourceArn"] == get_att(queue, "Arn")
        assert mappings[function]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mappings[function]["BatchSize"] == 10
    schedules = [
        properties
        for properties in of_type(resources, "AWS::Events::Rule").values()
        if "ScheduleExpression" in properties
    ]
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == "rate(1 minute)"
    assert schedules[0]["Targets"][0]["Arn"] == get_att("Monitor", "Arn")


# --- queues, dead letters, alarms ----------------------------------------------------------------


def test_every_work_queue_redrives_to_its_own_dlq(resources: dict[str, Any]) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    dlqs = dead_letter_queues(resources)
    work = set(queues) - dlqs
    assert work == {"DispatchQueue", "StateQueue", "CancelQueue"}
    assert dlqs == {"DispatchDLQ", "StateDLQ", "CancelDLQ", "DeliveryDLQ", "ScheduleDLQ"}
    targets = []
    for name in work:
        redrive = queues[name].get("RedrivePolicy")
        assert redrive, f"{name} has no RedrivePolicy"
        dlq = redrive["deadLetterTargetArn"]["Fn::GetAtt"]
        assert dlq[1] == "Arn"
        assert dlq[0] in dlqs
        assert redrive["maxReceiveCount"] == 5
        # A message keeps its age when it moves to the DLQ: the DLQ must keep it longer.
        assert queues[dlq[0]]["MessageRetentionPeriod"] >= queues[name]["MessageRetentionPeriod"]
        targets.append(dlq[0])
    assert len(set(targets)) == len(targets), "work queues share a DLQ"
    for name in dlqs:
        assert queues[name]["MessageRetentionPeriod"] == 14 * 24 * 3600
        assert "RedrivePolicy" not in queues[name]
    for name, properties in queues.items():
        assert properties["SqsManagedSseEnabled"] is True, name


def test_visibility_timeout_is_six_times_the_consumer_timeout(template: dict[str, Any]) -> None:
    queues = of_type(template["Resources"], "AWS::SQS::Queue")
    consumed = set()
    for sources in function_event_sources(template).values():
        for source in sources:
            if source.kind == "sqs":
                assert source.queue is not None
                consumed.add(source.queue)
                assert queues[source.queue]["VisibilityTimeout"] >= 6 * source.timeout
    work = set(queues) - dead_letter_queues(template["Resources"])
    assert work - consumed == UNCONSUMED_QUEUES
    for name in UNCONSUMED_QUEUES:  # ready for a 60 s consumer
        assert queues[name]["VisibilityTimeout"] >= 6 * 60


def test_every_dlq_has_an_alarm(resources: dict[str, Any]) -> None:
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    watched = {}
    for name, alarm in alarms.items():
        if name == "RunnersSilentAlarm":
            continue
        (dimension,) = alarm["Dimensions"]
        assert dimension["Name"] == "QueueName"
        queue, attribute = dimension["Value"]["Fn::GetAtt"]
        assert attribute == "QueueName"
        watched[queue] = name
        assert alarm["Namespace"] == "AWS/SQS"
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["Threshold"] == 0
        assert alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert set(watched) == dead_letter_queues(resources)


# --- events --------------------------------------------------------------------------------------


def test_rules_route_each_event_to_its_queue(resources: dict[str, Any]) -> None:
    rules = {
        name: properties
        for name, properties in of_type(resources, "AWS::Events::Rule").items()
        if "EventPattern" in properties
    }
    routes = {
        name: (
            properties.get("EventBusName"),
            properties["EventPattern"],
            [target["Arn"] for target in properties["Targets"]],
        )
        for name, properties in rules.items()
    }
    bus = get_att("Bus", "Name")
    assert routes == {
        "RunRequestedRule": (
            bus,
            {"source": [SOURCE], "detail-type": ["Flow Run Requested"]},
            [get_att("DispatchQueue", "Arn")],
        ),
        "StateChangedRule": (
            bus,
            {
                "source": [SOURCE],
                "detail-type": [
                    "Flow Run State Changed",
                    "Flow Run Cluster Changed",
                    "Local Process State Change",
                ],
            },
            [get_att("StateQueue", "Arn")],
        ),
        "CancelRequestedRule": (
            bus,
            {"source": [SOURCE], "detail-type": ["Flow Run Cancel Requested"]},
            [get_att("CancelQueue", "Arn")],
        ),
        # ECS publishes on the default bus.
        "EcsTaskStateRule": (
            None,
            {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {"group": [{"prefix": GROUP_PREFIX}]},
            },
            [get_att("StateQueue", "Arn")],
        ),
    }
    for name, properties in rules.items():
        assert properties["State"] == "ENABLED"
        for target in properties["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": get_att("DeliveryDLQ", "Arn")}, name


def test_queue_policies_let_only_their_rules_send(resources: dict[str, Any]) -> None:
    senders = rule_senders(resources)
    policies = of_type(resources, "AWS::SQS::QueuePolicy")
    covered = []
    for name, policy in policies.items():
        (queue_ref,) = policy["Queues"]
        queue = queue_ref["Ref"]
        covered.append(queue)
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Allow", name
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}, name
        assert statement["Action"] == "sqs:SendMessage", name
        assert statement["Resource"] == get_att(queue, "Arn"), name
        source_arns = as_list(statement["Condition"]["ArnEquals"]["aws:SourceArn"])
        assert sorted(arn["Fn::GetAtt"][0] for arn in source_arns) == sorted(senders[queue])
        assert all(arn["Fn::GetAtt"][1] == "Arn" for arn in source_arns)
    assert sorted(covered) == sorted(senders), "each queue a rule sends to has one policy"


def test_the_bus_is_never_referred_to_by_ref(template: dict[str, Any]) -> None:
    """``!Ref Bus`` breaks the dev stack in moto; ``!GetAtt Bus.Name/Arn`` works everywhere."""
    for node in walk(template):
        assert node != {"Ref": "Bus"}
        if isinstance(node, dict) and "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            assert "${Bus}" not in text


# --- IAM -----------------------------------------------------------------------------------------


def test_the_wildcard_check_catches_wildcards() -> None:
    assert wildcard_grants([{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]) == [
        "ecs:RunTask",
        "ecs:StopTask",
    ]
    assert wildcard_grants([{"Effect": "Allow", "Action": ["iam:PassRole"], "Resource": ["*"]}])
    assert not wildcard_grants([{"Effect": "Deny", "Action": "*", "Resource": "*"}])
    assert not wildcard_grants([{"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "arn"}])


def test_no_sensitive_action_on_any_resource(translated: dict[str, Any]) -> None:
    statements = list(policy_statements(translated))
    assert statements
    assert wildcard_grants([statement for _, statement in statements]) == []
    on_wildcard = {
        action
        for _, statement in statements
        if "*" in as_list(statement.get("Resource"))
        for action in as_list(statement["Action"])
    }
    assert on_wildcard == ACTIONS_THAT_NEED_A_WILDCARD


def test_dispatch_may_launch_flow_runs_and_nothing_else(translated: dict[str, Any]) -> None:
    allowed = grants(translated, "DispatchRole")
    assert set(allowed) == RUN_TABLE_ACTIONS | LAUNCH_WILDCARDS | {
        "events:PutEvents",
        "ecs:RunTask",
        "ecs:TagResource",
        "iam:PassRole",
        # finding an unanswered attempt's task; stopping a task whose run was cancelled
        "ecs:ListTasks",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        # a request waiting out a backoff is queued again with a delay
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
    }
    for action in ("ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"):
        (statement,) = allowed[action]
        assert statement["Condition"] == {
            "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
        }
    # ListTasks authorizes on the cluster: "*" with the ecs:cluster key, not a resource ARN.
    assert resources_of(allowed["ecs:ListTasks"]) == ["*"]
    # Its own queue (a request that must wait), and its DLQ (a last failure, with the reason).
    assert resources_of(allowed["sqs:GetQueueUrl"]) == [get_att("DispatchQueue", "Arn")]
    assert resources_of(allowed["sqs:SendMessage"]) == [
        get_att("DispatchQueue", "Arn"),
        get_att("DispatchDLQ", "Arn"),
    ]
    for action in RUN_TABLE_ACTIONS:
        assert resources_of(allowed[action]) == [
            get_att("Table", "Arn"),
            {"Fn::Sub": "${Table.Arn}/index/*"},
        ]
    assert resources_of(allowed["events:PutEvents"]) == [get_att("Bus", "Arn")]
    (run_task,) = allowed["ecs:RunTask"]
    assert run_task["Resource"]["Fn::Sub"].endswith(":task-definition/flowrelay-*")
    assert run_task["Condition"] == {
        "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
    }
    (tag,) = allowed["ecs:TagResource"]
    assert tag["Condition"] == {
        "StringEquals": {"ecs:CreateAction": ["RunTask", "RegisterTaskDefinition"]}
    }
    (pass_role,) = allowed["iam:PassRole"]
    assert pass_role["Resource"] == [
        get_att("FlowRunTaskRole", "Arn"),
        get_att("FlowRunExecutionRole", "Arn"),
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_record_state_may_only_write_runs(translated: dict[str, Any]) -> None:
    allowed = grants(translated, "RecordStateRole")
    # and ask for a relaunch on the bus, and read a crashed run's log
    # and dead-letter a message with its reason
    assert set(allowed) == RUN_TABLE_ACTIONS | {
        "events:PutEvents",
        "logs:GetLogEvents",
        "sqs:SendMessage",
    }
    for action in RUN_TABLE_ACTIONS:
        assert get_att("Table", "Arn") in resources_of(allowed[action])
    assert resources_of(allowed["events:PutEvents"]) == [get_att("Bus", "Arn")]
    assert resources_of(allowed["logs:GetLogEvents"]) == [get_att("FlowRunLogGroup", "Arn")]
    assert resources_of(allowed["sqs:SendMessage"]) == [get_att("StateDLQ", "Arn")]


def test_cancel_may_stop_flow_tasks_on_the_cluster(translated: dict[str, Any]) -> None:
    allowed = grants(translated, "CancelRole")
    assert set(allowed) == RUN_TABLE_ACTIONS | {
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "sqs:SendMessage",
    }
    assert resources_of(allowed["sqs:SendMessage"]) == [get_att("CancelDLQ", "Arn")]
    for action in ("ecs:DescribeTasks", "ecs:StopTask"):
        (statement,) = allowed[action]
        assert statement["Resource"]["Fn::Sub"].endswith(":task/${FlowrelayCluster}/*")
        assert statement["Condition"] == {
            "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
        }


def test_monitor_may_reconcile_runs_on_the_cluster(translated: dict[str, Any]) -> None:
    allowed = grants(translated, "MonitorRole")
    assert set(allowed) == RUN_TABLE_ACTIONS | {
        "dynamodb:DeleteItem",  # a swept Dask cluster is forgotten
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:ListTasks",
        "ecs:ListTaskDefinitions",
        "ecs:DeregisterTaskDefinition",
        "events:PutEvents",
        "logs:GetLogEvents",
    }
    (listing,) = allowed["ecs:ListTasks"]
    assert listing["Condition"] == {
        "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
    }
    for action in ("ecs:DescribeTasks", "ecs:StopTask"):
        (statement,) = allowed[action]
        assert statement["Resource"]["Fn::Sub"].endswith(":task/${FlowrelayCluster}/*")
        assert statement["Condition"] == {
            "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
        }
    assert resources_of(allowed["events:PutEvents"]) == [get_att("Bus", "Arn")]
    assert resources_of(allowed["logs:GetLogEvents"]) == [get_att("FlowRunLogGroup", "Arn")]


def test_flow_run_roles(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    for role in ("FlowRunTaskRole", "FlowRunExecutionRole"):
        (trust,) = resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert trust["Action"] == "sts:AssumeRole"
    allowed = grants(translated, "FlowRunTaskRole")
    cluster_tasks = {
        "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:"
        "task/${FlowrelayCluster}/*"
    }
    granted = {action: resources_of(s) for action, s in allowed.items()}
    assert granted.pop("events:PutEvents") == [get_att("Bus", "Arn")]
    assert granted.pop("dynamodb:GetItem") == [get_att("Table", "Arn")]
    # Secrets under the prefix (test_flow_runs_read_only_secrets_under_the_prefix).
    for action in ("secretsmanager:GetSecretValue", "ssm:GetParameter", "kms:Decrypt"):
        assert granted.pop(action)
    # An ephemeral Dask cluster: tasks of dask-frd-* definitions on the stack's cluster only,
    # the stack's roles passed to ECS tasks only.
    (run_task,) = allowed["ecs:RunTask"]
    assert run_task["Resource"]["Fn::Sub"].endswith(":task-definition/dask-frd-*")
    assert run_task["Condition"] == {
        "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
    }
    assert granted.pop("ecs:RunTask")
    # Stopping and describing only the cluster's own tasks (tagged dask_cluster_name, which a
    # flow cannot add: tags only on create).
    for action in ("ecs:DescribeTasks", "ecs:StopTask"):
        (statement,) = allowed[action]
        assert granted.pop(action) == [cluster_tasks], action
        assert statement["Condition"] == {"Null": {"aws:ResourceTag/dask_cluster_name": "false"}}
    (tagging,) = allowed["ecs:TagResource"]
    assert cluster_tasks in granted.pop("ecs:TagResource")
    assert tagging["Condition"] == {
        "StringEquals": {"ecs:CreateAction": ["RunTask", "RegisterTaskDefinition"]}
    }
    (listing,) = allowed["ecs:ListTasks"]
    assert listing["Condition"] == {
        "ArnEquals": {"ecs:cluster": get_att("FlowrelayCluster", "Arn")}
    }
    assert granted.pop("ecs:ListTasks") == ["*"]
    assert granted.pop("ecs:DescribeClusters") == [get_att("FlowrelayCluster", "Arn")]
    (pass_role,) = allowed["iam:PassRole"]
    assert granted.pop("iam:PassRole") == [
        get_att("FlowRunExecutionRole", "Arn"),
        get_att("DaskTaskRole", "Arn"),
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }
    assert granted == {
        **{action: ["*"] for action in ACTIONS_THAT_NEED_A_WILDCARD - {"ecs:ListTasks"}},
        "logs:GetLogEvents": [get_att("FlowRunLogGroup", "Arn")],
        "logs:DescribeLogStreams": [get_att("FlowRunLogGroup", "Arn")],
    }
    dask = resources["DaskTaskRole"]["Properties"]
    # Nothing by default but the secrets the flow's tasks may read (they run there).
    assert grants(translated, "DaskTaskRole").keys() == {
        "secretsmanager:GetSecretValue",
        "ssm:GetParameter",
        "kms:Decrypt",
    }
    assert "ManagedPolicyArns" not in dask
    execution = resources["FlowRunExecutionRole"]["Properties"]
    assert "Policies" not in execution
    (managed,) = execution["ManagedPolicyArns"]
    assert managed["Fn::Sub"].endswith(":policy/service-role/AmazonECSTaskExecutionRolePolicy")


# --- functions and layers ------------------------------------------------------------------------


def test_function_event_sources_are_the_architectures(template: dict[str, Any]) -> None:
    sources = function_event_sources(template)
    assert set(sources) == {"Dispatch", "RecordState", "Cancel", "Monitor"}
    for function, queue, folder in (
        ("Dispatch", "DispatchQueue", "dispatch"),
        ("RecordState", "StateQueue", "record_state"),
        ("Cancel", "CancelQueue", "cancel"),
    ):
        (source,) = sources[function]
        assert source.kind == "sqs"
        assert source.queue == queue
        assert source.batch_size == 10
        assert source.report_batch_item_failures is True
        # Latency over batching on every hop a user waits on (docs/decisions.md, issue 16).
        assert source.maximum_batching_window_seconds == 0
        assert source.maximum_concurrency is not None
        assert 2 <= source.maximum_concurrency <= 1000
        assert source.enabled is True
        assert source.handler_path == f"functions/{folder}/app.py"
        assert source.handler_function == "handler"
    (monitor,) = sources["Monitor"]
    assert monitor.kind == "schedule"
    assert monitor.schedule == "rate(1 minute)"
    assert monitor.interval_seconds == 60
    assert monitor.handler_path == "functions/monitor/app.py"


def test_functions_share_runtime_layers_and_environment(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.11"
    assert globals_["Architectures"] == ["arm64"]
    assert globals_["Layers"] == [{"Ref": "DependenciesLayer"}, {"Ref": "FlowrelayLayer"}]
    specs = functions(template)
    for spec in specs.values():
        environment = spec.environment
        assert environment["FLOWRELAY_TABLE_NAME"] == {"Ref": "Table"}
        assert environment["FLOWRELAY_BUS_NAME"] == get_att("Bus", "Name")
        assert environment["POWERTOOLS_SERVICE_NAME"] == "flowrelay"
        assert environment["LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert specs["Dispatch"].environment["FLOWRELAY_TASK_ROLE_ARN"] == get_att(
        "FlowRunTaskRole", "Arn"
    )


@pytest.mark.parametrize("function", ["Dispatch", "RecordState", "Cancel", "Monitor"])
def test_handler_file_defines_the_handler(template: dict[str, Any], function: str) -> None:
    spec = functions(template)[function]
    path = ROOT / spec.handler_path
    if not path.exists():
        pytest.skip(f"{spec.handler_path} is not written yet")
    tree = ast.parse(path.read_text())
    defined = (
        {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        | {
            alias.asname or alias.name
            for node in tree.body
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
    )
    assert spec.handler_function in defined


def test_dependencies_layer_lists_the_runtime_dependencies(resources: dict[str, Any]) -> None:
    layer = resources["DependenciesLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    folder = ROOT / layer["Properties"]["ContentUri"]
    makefile = (folder / "Makefile").read_text()
    assert "build-DependenciesLayer:" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--python-version 3.11" in makefile
    lines = (folder / "requirements.txt").read_text().splitlines()
    listed = {str(Requirement(line)) for line in lines if line.strip() and not line.startswith("#")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = {
        str(Requirement(spec))
        for spec in project["dependencies"]
        if Requirement(spec).name != "boto3"  # the Lambda runtime has it
    }
    assert listed == expected


def test_flowrelay_layer_is_built_by_its_makefile(resources: dict[str, Any]) -> None:
    layer = resources["FlowrelayLayer"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = ROOT / layer["Properties"]["ContentUri"] / "Makefile"
    assert "build-FlowrelayLayer:" in makefile.read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_flowrelay_layer_build_copies_what_lambda_imports(tmp_path: Path) -> None:
    """What `sam build` runs: from another working directory, into ARTIFACTS_DIR/python; only
    the layers Lambda imports (docs/architecture.md), and every handler imports from it."""
    makefile = ROOT / "layers" / "flowrelay" / "Makefile"
    artifacts = tmp_path / "artifacts"
    result = subprocess.run(
        [
            "make",
            "-f",
            str(makefile),
            "build-FlowrelayLayer",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    package = ROOT / "shared" / "flowrelay"
    built = artifacts / "python" / "flowrelay"

    def files(root: Path) -> set[str]:
        return {
            str(path.relative_to(root))
            for path in root.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        }

    lambda_parts = ("core", "aws", "launchers", "control", "handlers")
    shipped = {
        name
        for name in files(package)
        if name in ("__init__.py", "py.typed") or name.split("/", 1)[0] in lambda_parts
    }
    assert files(built) == shipped
    assert not {"sdk", "cli", "devstack", "runner"} & {name.split("/")[0] for name in shipped}
    assert "__init__.py" in files(built)
    # Each handler imports with the layer and the dependencies only (no site .pth files: the
    # editable install's path to the whole package is not there).
    site_packages = next(path for path in map(Path, sys.path) if path.name == "site-packages")
    for function in ("dispatch", "record_state", "cancel", "monitor"):
        code = (
            f"import sys; sys.path[:0] = [{str(ROOT / 'functions' / function)!r}, "
            f"{str(artifacts / 'python')!r}]; sys.path.append({str(site_packages)!r}); "
            "import app; assert callable(app.handler); "
            "import flowrelay; assert flowrelay.__file__.startswith(sys.path[1])"
        )
        imported = subprocess.run(
            [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=False
        )
        assert imported.returncode == 0, (function, imported.stderr)
    assert (built / "py.typed").exists()
    # Every module ships bytecode Lambda can use from a read-only /opt: hash-checked (PEP 552
    # flags 0b11), since the zip's timestamps would never validate timestamp-based files.
    sources = sorted(built.rglob("*.py"))
    compiled = {
        path: built_pyc
        for path in sources
        if (built_pyc := Path(importlib.util.cache_from_source(str(path)))).exists()
    }
    assert set(compiled) == set(sources)
    flags = {int.from_bytes(pyc.read_bytes()[4:8], "little") for pyc in compiled.values()}
    assert flags == {0b11}


# --- outputs and the table -----------------------------------------------------------------------


def test_outputs_name_everything_the_cli_needs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) >= REQUIRED_OUTPUTS
    assert outputs["BusName"]["Value"] == get_att("Bus", "Name")
    assert outputs["BusArn"]["Value"] == get_att("Bus", "Arn")
    for name in REQUIRED_OUTPUTS:
        assert outputs[name].get("Description"), name


def test_table_keeps_its_keys_and_indexes(template: dict[str, Any]) -> None:
    assert template["Resources"]["Table"]["DeletionPolicy"] == "Retain"
    assert template["Resources"]["Table"]["UpdateReplacePolicy"] == "Retain"
    table = resource_properties(template, "Table")
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by-flow", "active", "recent"}
    assert [key["AttributeName"] for key in indexes["by-flow"]["KeySchema"]] == [
        "flow_pk",
        "flow_sk",
    ]
    assert [key["AttributeName"] for key in indexes["active"]["KeySchema"]] == [
        "active_pk",
        "active_sk",
    ]
    assert [key["AttributeName"] for key in indexes["recent"]["KeySchema"]] == [
        "recent_pk",
        "recent_sk",
    ]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}


# --- the helpers in flowrelay.devstack.template ---------------------------------------------------


def synthetic(**events: dict[str, Any]) -> dict[str, Any]:
    return {
        "Globals": {"Function": {"Timeout": 30, "Handler": "app.handler"}},
        "Resources": {
            "Jobs": {"Type": "AWS::SQS::Queue"},
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "src/worker/", "Events": events},
            },
        },
    }


def test_event_source_defaults_follow_lambda() -> None:
    template = synthetic(Jobs={"Type": "SQS", "Properties": {"Queue": get_att("Jobs", "Arn")}})
    (source,) = function_event_sources(template)["Worker"]
    assert source == EventSource(
        function="Worker",
        name="Jobs",
        kind="sqs",
        handler_path="src/worker/app.py",
        handler_function="handler",
        timeout=30,
        queue="Jobs",
        batch_size=10,
    )
    assert source.interval_seconds is None


def test_event_source_reads_function_settings_over_globals() -> None:
    template = synthetic(
        Jobs={
            "Type": "SQS",
            "Properties": {
                "Queue": {"Fn::GetAtt": "Jobs.Arn"},
                "BatchSize": 3,
                "Enabled": False,
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
            },
        },
        Nightly={"Type": "Schedule", "Properties": {"Schedule": "cron(0 3 * * ? *)"}},
    )
    worker = template["Resources"]["Worker"]["Properties"]
    worker.update(Timeout=90, Handler="pkg.entry.main")
    jobs, nightly = function_event_sources(template)["Worker"]
    assert (jobs.batch_size, jobs.enabled, jobs.report_batch_item_failures) == (3, False, True)
    assert (jobs.timeout, jobs.handler_path, jobs.handler_function) == (
        90,
        "src/worker/pkg/entry.py",
        "main",
    )
    assert (nightly.kind, nightly.schedule, nightly.interval_seconds) == (
        "schedule",
        "cron(0 3 * * ? *)",
        None,
    )


def test_event_source_reads_batching_window_and_maximum_concurrency() -> None:
    """What the dev stack's pollers honour: BatchSize, MaximumBatchingWindowInSeconds and
    ScalingConfig.MaximumConcurrency (None when unset: Lambda's own scaling)."""
    template = synthetic(
        Jobs={
            "Type": "SQS",
            "Properties": {
                "Queue": get_att("Jobs", "Arn"),
                "BatchSize": 25,
                "MaximumBatchingWindowInSeconds": "2",
                "ScalingConfig": {"MaximumConcurrency": 50},
            },
        },
        Plain={"Type": "SQS", "Properties": {"Queue": get_att("Jobs", "Arn")}},
    )
    jobs, plain = function_event_sources(template)["Worker"]
    assert (jobs.batch_size, jobs.maximum_batching_window_seconds, jobs.maximum_concurrency) == (
        25,
        2,
        50,
    )
    assert (plain.batch_size, plain.maximum_batching_window_seconds) == (10, 0)
    assert plain.maximum_concurrency is None


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"BatchSize": 0}, "BatchSize must be from 1 to 10000, got 0"),
        ({"BatchSize": 20}, "a BatchSize over 10 needs MaximumBatchingWindowInSeconds"),
        (
            {"MaximumBatchingWindowInSeconds": 301},
            "MaximumBatchingWindowInSeconds must be from 0 to 300, got 301",
        ),
        (
            {"ScalingConfig": {"MaximumConcurrency": 1}},
            "MaximumConcurrency must be from 2 to 1000, got 1",
        ),
        (
            {"ScalingConfig": {"MaximumConcurrency": {"Ref": "P"}}},
            "MaximumConcurrency must be a literal",
        ),
        ({"ScalingConfig": {"Maximum": 5}}, "ScalingConfig takes only MaximumConcurrency"),
    ],
)
def test_event_source_settings_lambda_refuses_are_errors(
    properties: dict[str, Any], message: str
) -> None:
    template = synthetic(
        Jobs={"Type": "SQS", "Properties": {"Queue": get_att("Jobs", "Arn"), **properties}}
    )
    with pytest.raises(ValueError, match="function Worker, event Jobs: " + message):
        function_event_sources(template)


def test_function_without_events_has_no_sources() -> None:
    assert function_event_sources(synthetic()) == {"Worker": []}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"Type": "Api", "Properties": {}}, "event type 'Api' is not supported"),
        ({"Type": "SQS", "Properties": {"Queue": "arn:aws:sqs:x"}}, "Queue must be"),
        ({"Type": "SQS", "Properties": {"Queue": get_att("Nope", "Arn")}}, "Queue must be"),
        (
            {"Type": "SQS", "Properties": {"Queue": get_att("Jobs", "Arn"), "BatchSize": "x"}},
            "BatchSize must be a literal number",
        ),
        ({"Type": "Schedule", "Properties": {"Schedule": {"Ref": "P"}}}, "Schedule must be"),
    ],
)
def test_event_sources_that_cannot_be_wired_are_errors(event: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="function Worker, event Trigger: " + message):
        function_event_sources(synthetic(Trigger=event))


def test_function_without_code_is_an_error() -> None:
    template = synthetic()
    del template["Resources"]["Worker"]["Properties"]["CodeUri"]
    with pytest.raises(ValueError, match="function Worker: no literal CodeUri"):
        functions(template)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 days)", 172800),
        ("cron(0/5 * * * ? *)", None),
        ("rate(soon)", None),
    ],
)
def test_rate_seconds(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds


def test_template_module_doctests() -> None:
    result = doctest.testmod(flowrelay.devstack.template)
    assert result.attempted
    assert not result.failed


def test_load_template_keeps_what_it_reads_unchanged(template: dict[str, Any]) -> None:
    before = copy.deepcopy(template)
    function_event_sources(template)
    assert template == before


def test_the_scheduler_may_only_put_requests_on_the_bus(translated: dict[str, Any]) -> None:
    """EventBridge Scheduler's role for flowrelay's schedules: PutEvents on the bus, and the
    schedule DLQ for fires it could not deliver; assumed by the scheduler of this account's
    schedule group only."""
    role = translated["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # The schedule group's ARN: AWS's confused-deputy guidance for EventBridge Scheduler scopes
    # aws:SourceArn to the group, never to schedules or a name prefix.
    assert trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"].endswith(
        ":schedule-group/${AWS::StackName}-flows"
    )
    allowed = grants(translated, "SchedulerRole")
    assert {action: resources_of(s) for action, s in allowed.items()} == {
        "events:PutEvents": [get_att("Bus", "Arn")],
        "sqs:SendMessage": [get_att("ScheduleDLQ", "Arn")],
    }
    group = translated["Resources"]["ScheduleGroup"]["Properties"]
    assert group["Name"] == {"Fn::Sub": "${AWS::StackName}-flows"}
    outputs = translated["Outputs"]
    assert outputs["ScheduleGroupName"]["Value"] == {"Fn::Sub": "${AWS::StackName}-flows"}


def test_flow_runs_read_only_secrets_under_the_prefix(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    for role in ("FlowRunTaskRole", "DaskTaskRole"):
        (policy,) = [p for p in resources[role]["Properties"]["Policies"] if "Fn::If" in p]
        condition, secrets, absent = policy["Fn::If"]
        assert (condition, absent) == ("HasSecretPrefix", {"Ref": "AWS::NoValue"})
        assert secrets["PolicyName"] == "read-secrets"
        statements = {s["Sid"]: s for s in secrets["PolicyDocument"]["Statement"]}
        assert statements["ReadSecrets"]["Action"] == "secretsmanager:GetSecretValue"
        assert statements["ReadSecrets"]["Resource"]["Fn::Sub"].endswith(
            ":secret:${SecretNamePrefix}*"
        )
        assert statements["ReadSecretParameters"]["Resource"]["Fn::Sub"].endswith(
            ":parameter/${SecretNamePrefix}*"
        )
        condition_keys = set(statements["DecryptSecrets"]["Condition"]["StringEquals"])
        assert condition_keys == {"kms:ViaService"}
