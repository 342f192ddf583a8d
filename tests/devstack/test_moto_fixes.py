"""What AWS does that moto, as released, does not, and flowrelay relies on: each fix of
flowrelay.devstack.moto_fixes shown over real HTTP to the session's moto server."""

from __future__ import annotations

import copy
import ipaddress
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
    """AWS: a transaction whose condition fails changes nothing, and takes nothing else with it.
    moto 5.2.5 rolls back by restoring a copy of the whole table taken when the transaction
    began, which undoes any write another request made meanwhile (a run's history item was
    lost that way during a retry storm). Here the other write is made exactly in that window."""
    from moto.dynamodb.models.table import Table

    dynamodb = boto3.client("dynamodb")
    key = {"pk": {"S": "TXN"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=run_table, Item=key)
    backup_taken, written = threading.Event(), threading.Event()
    real_deepcopy = copy.deepcopy

    def deepcopy_then_pause(value: Any, *args: Any) -> Any:
        copied = real_deepcopy(value, *args)
        if isinstance(value, Table) and not backup_taken.is_set():
            backup_taken.set()
            written.wait(timeout=2)  # the other write lands now, unless writes are serialised
        return copied

    monkeypatch.setattr(copy, "deepcopy", deepcopy_then_pause)

    def other_writer() -> None:
        backup_taken.wait(timeout=5)
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
                    "Put": {
                        "TableName": run_table,
                        "Item": key,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )
    thread.join(timeout=10)
    other = dynamodb.get_item(TableName=run_table, Key={"pk": {"S": "OTHER"}, "sk": {"S": "1"}})
    assert "Item" in other
