"""What AWS does that moto, as released, does not, and flowrelay relies on: each fix of
flowrelay.devstack.moto_fixes shown over real HTTP to the session's moto server."""

from __future__ import annotations

import copy
import ipaddress
import json
import threading
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError


def test_a_fargate_task_without_security_groups_gets_the_vpcs_default(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    """AWS: "If you don't specify a security group, the default security group for the VPC is
    used." moto 5.2.5 answers HTTP 500 (KeyError 'securityGroups')."""
    family = ecs.register_task_definition(
        family="moto-fix-default-sg",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "flow", "image": "example/flows:1", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    (task,) = ecs.run_task(
        cluster=cluster,
        taskDefinition=family,
        launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": network["subnets"]}},
    )["tasks"]
    details = {item["name"]: item["value"] for item in task["attachments"][0]["details"]}
    interface = boto3.client("ec2").describe_network_interfaces(
        NetworkInterfaceIds=[details["networkInterfaceId"]]
    )["NetworkInterfaces"][0]
    assert [group["GroupId"] for group in interface["Groups"]] == network["security_groups"]


def test_each_fargate_task_gets_a_loopback_address_of_its_own(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> None:
    """AWS: each awsvpc task's interface has an address of its own, on which its servers are
    reached; ECS names it in the task's attachment, EC2 in DescribeNetworkInterfaces
    (dask-cloudprovider reads the latter). moto 5.2.5 gives a random 10.x address, which
    nothing here listens on or may connect to: the dev stack's stand-in is a loopback address
    of its own for each task (127.77.x.y)."""
    family = ecs.register_task_definition(
        family="moto-fix-loopback-eni",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "flow", "image": "example/flows:1", "memory": 512}],
    )["taskDefinition"]["taskDefinitionArn"]
    tasks = ecs.run_task(
        cluster=cluster,
        taskDefinition=family,
        launchType="FARGATE",
        count=3,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network["subnets"],
                "securityGroups": network["security_groups"],
            }
        },
    )["tasks"]
    ec2 = boto3.client("ec2")
    addresses = []
    for task in tasks:
        details = {item["name"]: item["value"] for item in task["attachments"][0]["details"]}
        (interface,) = ec2.describe_network_interfaces(
            NetworkInterfaceIds=[details["networkInterfaceId"]]
        )["NetworkInterfaces"]
        assert (
            interface["PrivateIpAddresses"][0]["PrivateIpAddress"] == details["privateIPv4Address"]
        )
        addresses.append(details["privateIPv4Address"])
    assert len(set(addresses)) == 3
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses), addresses
    assert all(address.startswith("127.77.") for address in addresses)


def test_an_item_is_limited_by_its_size_after_the_update(run_table: str) -> None:
    """AWS: an update may leave the item at up to 400 KB. moto 5.2.5 counts the value being
    replaced too, refusing any update of an item over about 200 KB."""
    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": "SIZE"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=run_table, Item={**key, "payload": {"S": "a" * 250_000}})
    dynamodb.update_item(
        TableName=run_table,
        Key=key,
        UpdateExpression="SET payload = :payload",
        ExpressionAttributeValues={":payload": {"S": "b" * 250_000}},
    )
    item = dynamodb.get_item(TableName=run_table, Key=key)["Item"]
    assert item["payload"]["S"] == "b" * 250_000
    with pytest.raises(ClientError, match="Item size to update has exceeded"):
        dynamodb.update_item(
            TableName=run_table,
            Key=key,
            UpdateExpression="SET payload = :payload",
            ExpressionAttributeValues={":payload": {"S": "c" * 420_000}},
        )
    assert dynamodb.get_item(TableName=run_table, Key=key)["Item"]["payload"]["S"][0] == "b"


def test_a_failed_transaction_does_not_undo_other_writers(
    run_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS: a transaction whose condition fails changes nothing, and takes nothing else with it;
    writes of other items go on meanwhile. moto 5.2.5 rolls back by restoring a copy of the
    whole table taken when the transaction began, which undoes any write another request made
    meanwhile (a run's history item was lost that way during a retry storm). Here the
    transaction keeps a copy of its own item only, and the other write is made while it holds
    it."""
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": "TXN"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=run_table, Item={**key, "state": {"S": "before"}})
    copied, written = threading.Event(), threading.Event()
    real_deepcopy = copy.deepcopy

    def deepcopy_then_pause(value: Any, *args: Any) -> Any:
        copied_value = real_deepcopy(value, *args)
        if isinstance(value, Item) and not copied.is_set():
            copied.set()
            written.wait(timeout=2)  # the other write lands now, unless it waits for this one
        return copied_value

    monkeypatch.setattr(copy, "deepcopy", deepcopy_then_pause)

    def other_writer() -> None:
        copied.wait(timeout=5)
        boto3.client("dynamodb").put_item(
            TableName=run_table, Item={"pk": {"S": "OTHER"}, "sk": {"S": "1"}}
        )
        written.set()

    thread = threading.Thread(target=other_writer)
    thread.start()
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": run_table,
                        "Key": key,
                        "UpdateExpression": "SET #s = :after",
                        "ExpressionAttributeNames": {"#s": "state"},
                        "ExpressionAttributeValues": {":after": {"S": "after"}},
                    }
                },
                {
                    "Put": {
                        "TableName": run_table,
                        "Item": {"pk": {"S": "TXN"}, "sk": {"S": "2"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    thread.join(timeout=10)
    assert written.is_set()  # it did not wait for the transaction
    other = dynamodb.get_item(TableName=run_table, Key={"pk": {"S": "OTHER"}, "sk": {"S": "1"}})
    assert "Item" in other
    item = dynamodb.get_item(TableName=run_table, Key=key)["Item"]
    assert item["state"] == {"S": "before"}  # the transaction's first write was undone


def test_two_writes_of_one_item_wait_for_each_other(
    run_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS: a conditional write checks and writes as one step. Two launch claims of one item
    at once: the second waits for the first and fails its condition."""
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": "CLAIM"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=run_table, Item={**key, "owner": {"S": "nobody"}})
    copied, second_done = threading.Event(), threading.Event()
    real_deepcopy = copy.deepcopy

    def deepcopy_then_pause(value: Any, *args: Any) -> Any:
        copied_value = real_deepcopy(value, *args)
        if isinstance(value, Item) and not copied.is_set():
            copied.set()
            second_done.wait(timeout=0.5)  # the second claim must not get through meanwhile
        return copied_value

    monkeypatch.setattr(copy, "deepcopy", deepcopy_then_pause)

    def claim(owner: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": run_table,
                "Key": key,
                "UpdateExpression": "SET #o = :me",
                "ConditionExpression": "#o = :nobody",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":me": {"S": owner}, ":nobody": {"S": "nobody"}},
            }
        }

    outcomes: dict[str, str] = {}

    def second() -> None:
        copied.wait(timeout=5)
        try:
            boto3.client("dynamodb").transact_write_items(TransactItems=[claim("second")])
            outcomes["second"] = "won"
        except ClientError:
            outcomes["second"] = "lost"
        second_done.set()

    thread = threading.Thread(target=second)
    thread.start()
    dynamodb.transact_write_items(TransactItems=[claim("first")])
    outcomes["first"] = "won"
    thread.join(timeout=10)
    assert outcomes == {"first": "won", "second": "lost"}
    assert dynamodb.get_item(TableName=run_table, Key=key)["Item"]["owner"] == {"S": "first"}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        (
            "GetItem",
            {
                "Item": {
                    "id": {"S": "r1"},
                    "n": {"N": "1.5"},
                    "run": {"B": b"\x00\x01compressed"},
                    "B": {"S": "an attribute named B"},
                    "blobs": {"BS": [b"a", b"\xff"]},
                    "list": {"L": [{"S": "a"}, {"NULL": True}, {"BOOL": False}]},
                    "map": {"M": {"BS": {"NS": ["1", "2"]}, "set": {"SS": ["x", "y"]}}},
                }
            },
        ),
        (
            "Query",
            {
                "Count": 1,
                "ScannedCount": 3,
                "Items": [{"pk": {"S": "y"}, "blob": {"B": "text blob"}}],
                "LastEvaluatedKey": {"pk": {"S": "y"}},
                "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5},
            },
        ),
        ("BatchGetItem", {"Responses": {"t": [{"pk": {"S": "y"}}]}, "UnprocessedKeys": {}}),
        ("TransactWriteItems", {}),
        ("UpdateItem", {"Attributes": {"a": {"S": "1"}}}),
    ],
)
def test_items_are_answered_as_moto_would_write_them(operation: str, result: Any) -> None:
    """The answers written as JSON (``item_answer``) are what moto's serializer writes."""
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    from flowrelay.devstack.moto_fixes import item_answer

    model = get_service_model("dynamodb")
    serializer = get_serializer_class("dynamodb", model.protocol)(
        operation_model=model.operation_model(operation),
        pretty_print=False,
        value_picker=XFormedAttributePicker(),
    )
    expected = serializer.serialize(result)["body"]
    fast = item_answer(operation, result)
    assert fast is not None
    assert json.loads(fast) == json.loads(expected)


def test_other_answers_are_left_to_moto() -> None:
    from flowrelay.devstack.moto_fixes import item_answer

    assert item_answer("DescribeTable", {"Table": {"TableName": "t"}}) is None
    assert item_answer("GetItem", {"Item": {"at": {"S": object()}}}) is None


def test_queries_answer_as_dynamodb_whatever_the_table_holds(run_table: str) -> None:
    """A query reads its partition (moto_fixes): the answers are DynamoDB's, in key order,
    paged, both ways, on the table and on an index; a scan still sees every item once."""
    client = boto3.client("dynamodb")
    items = []
    for number in range(90):
        flow = ("a", "b", "c")[number % 3]
        at = f"2026-11-30T08:{number // 60:02d}:{number % 60:02d}+00:00"
        items.append(
            {
                "pk": {"S": f"RUN#{number:03d}"},
                "sk": {"S": "RUN"},
                "flow_pk": {"S": f"FLOW#{flow}"},
                "flow_sk": {"S": f"{at}#{number:03d}"},
            }
        )
        items += [
            {"pk": {"S": f"RUN#{number:03d}"}, "sk": {"S": f"HIST#{version:08d}"}}
            for version in (3, 1, 2)
        ]
    for item in items:
        client.put_item(TableName=run_table, Item=item)

    def pages(**query: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in client.get_paginator("query").paginate(
            TableName=run_table, PaginationConfig={"PageSize": 7}, **query
        ):
            found += page["Items"]
        return found

    history = pages(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "RUN#042"}}
    )
    assert [item["sk"]["S"] for item in history] == [
        "HIST#00000001",
        "HIST#00000002",
        "HIST#00000003",
        "RUN",
    ]
    of_b = [item for item in items if item.get("flow_pk") == {"S": "FLOW#b"}]
    newest_first = sorted(of_b, key=lambda item: item["flow_sk"]["S"], reverse=True)
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in newest_first]
    answered = pages(
        IndexName="by-flow",
        KeyConditionExpression="flow_pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "FLOW#b"}},
        ScanIndexForward=False,
    )
    assert [{"pk": item["pk"], "sk": item["sk"]} for item in answered] == keys
    before = newest_first[10]["flow_sk"]["S"]
    older = pages(
        IndexName="by-flow",
        KeyConditionExpression="flow_pk = :pk AND flow_sk < :before",
        ExpressionAttributeValues={":pk": {"S": "FLOW#b"}, ":before": {"S": before}},
    )
    assert [{"pk": item["pk"], "sk": item["sk"]} for item in older] == keys[11:][::-1]
    assert (
        pages(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "RUN#999"}}
        )
        == []
    )
    scanned = [
        (item["pk"]["S"], item["sk"]["S"])
        for page in client.get_paginator("scan").paginate(
            TableName=run_table, PaginationConfig={"PageSize": 13}
        )
        for item in page["Items"]
    ]
    assert sorted(scanned) == sorted((item["pk"]["S"], item["sk"]["S"]) for item in items)
