"""Flow registrations and launch targets in the table (moto server over HTTP)."""

from __future__ import annotations

import threading

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.control.store.flows import FlowEntry
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.routing import Target
from flowrelay.core.run_configs import ECSRun
from flowrelay.core.storage import Module
from flowrelay.sdk.flow import registration_for
from tests.support.aws import Clock


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def named(name: str, module: str) -> FlowRegistration:
    return FlowRegistration(name=name, storage=Module(module))


def etl_registration(rows: int = 10):
    from flowrelay.sdk.examples.etl import flow

    registration = registration_for(flow, storage=Module("flowrelay.sdk.examples.etl:flow"))
    return registration.model_copy(
        update={
            "parameters": [
                p.model_copy(update={"default": rows}) if p.name == "rows" else p
                for p in registration.parameters
            ]
        }
    ).with_content_hash()


def test_registering_unchanged_content_keeps_the_version(store: Store) -> None:
    first, created = store.flows.register(etl_registration())
    assert (first.version, created) == (1, True)
    again, created = store.flows.register(etl_registration())
    assert (again.version, created) == (1, False)
    changed, created = store.flows.register(etl_registration(rows=20))
    assert (changed.version, created) == (2, True)
    assert store.flows.get("etl").version == 2  # type: ignore[union-attr]
    assert store.flows.get("etl", version=1).parameters[1].default == 10  # type: ignore[union-attr]
    assert store.flows.get("etl", version=3) is None
    assert store.flows.get("nope") is None


def test_a_registration_round_trips_everything(store: Store) -> None:
    stored, _ = store.flows.register(etl_registration())
    loaded = store.flows.get("etl")
    assert loaded == stored
    assert loaded.storage == Module("flowrelay.sdk.examples.etl:flow")
    assert loaded.executor.type == "LocalDaskExecutor"
    assert {p.name for p in loaded.parameters} == {"rows", "factor"}
    assert loaded.registered_at is not None


def test_concurrent_registrations_get_distinct_versions(store: Store) -> None:
    barrier = threading.Barrier(4)
    versions: list[int] = []

    def register(rows: int) -> None:
        barrier.wait()
        versions.append(store.flows.register(etl_registration(rows=rows))[0].version)

    threads = [threading.Thread(target=register, args=(rows,)) for rows in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == [1, 2, 3, 4]
    assert store.flows.get("etl").version == 4  # type: ignore[union-attr]


# --- the catalog and versions ---------------------------------------------------------------


def test_the_catalog_lists_every_flow_by_name_with_its_latest_version(store: Store) -> None:
    clock = Clock()
    store.clock = clock
    assert store.flows.list() == []
    store.flows.register(etl_registration())
    clock.advance(60)
    store.flows.register(etl_registration(rows=20))
    store.flows.register(named("another", "x:flow"))

    assert store.flows.list() == [
        FlowEntry(name="another", latest_version=1, registered_at=clock.now),
        FlowEntry(name="etl", latest_version=2, registered_at=clock.now),
    ]
    assert store.flows.names() == ["another", "etl"]
    # One item per flow in the catalog's partition, beside the flows' own items.
    catalog = store.client.query(
        TableName=store.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "FLOWS"}},
    )["Items"]
    assert [item["sk"]["S"] for item in catalog] == ["another", "etl"]


def test_versions_are_newest_first_and_unchanged_content_adds_none(store: Store) -> None:
    store.flows.register(etl_registration())
    store.flows.register(etl_registration(rows=20))
    again, created = store.flows.register(etl_registration(rows=20))
    assert (again.version, created) == (2, False)

    versions = store.flows.versions("etl")
    assert [version.version for version in versions] == [2, 1]
    assert [p.default for p in versions[0].parameters if p.name == "rows"] == [20]
    assert versions[0] == store.flows.get("etl")
    assert [version.version for version in store.flows.versions("etl", limit=1)] == [2]
    assert store.flows.list()[0].latest_version == 2
    assert store.flows.versions("nope") == []
    # A flow whose name starts with another's is not among its versions.
    store.flows.register(named("etl-2", "x:flow"))
    assert [version.name for version in store.flows.versions("etl")] == ["etl", "etl"]


def test_a_flow_registered_before_the_catalog_joins_it_when_registered_again(
    store: Store,
) -> None:
    store.flows.register(etl_registration())
    store.flows.register(etl_registration(rows=20))
    store.client.delete_item(
        TableName=store.table_name, Key={"pk": {"S": "FLOWS"}, "sk": {"S": "etl"}}
    )
    assert store.flows.list() == []

    again, created = store.flows.register(etl_registration(rows=20))  # unchanged
    assert (again.version, created) == (2, False)
    assert [(entry.name, entry.latest_version) for entry in store.flows.list()] == [("etl", 2)]
    assert store.flows.list()[0].registered_at == again.registered_at
    # Registering an older content again is a new version; the catalog follows the pointer.
    newest, created = store.flows.register(etl_registration())
    assert (newest.version, created) == (3, True)
    assert store.flows.list()[0].latest_version == 3


def test_targets_crud(store: Store) -> None:
    fargate = Target(
        name="fargate", kind="ecs", labels=["prod", "prod"], settings={"cluster": "flows"}
    )
    laptop = Target(name="laptop", kind="local")
    store.targets.put(fargate)
    store.targets.put(laptop)
    assert [t.name for t in store.targets.list()] == ["fargate", "laptop"]
    assert store.targets.get("fargate") == fargate
    assert store.targets.get("fargate").labels == ["prod"]  # type: ignore[union-attr]
    store.targets.put(
        Target(name="fargate", kind="ecs", labels=["prod", "ml"], settings={"cluster": "flows"})
    )
    assert store.targets.get("fargate").labels == ["ml", "prod"]  # type: ignore[union-attr]
    assert store.targets.delete("laptop")
    assert not store.targets.delete("laptop")
    assert [t.name for t in store.targets.list()] == ["fargate"]


def test_registration_needs_storage() -> None:
    from flowrelay import Flow

    with pytest.raises(ValueError, match="has no storage"):
        registration_for(Flow("bare"))


def test_run_config_survives_registration(store: Store) -> None:
    from flowrelay import Flow

    flow = Flow(
        "configured", run_config=ECSRun(cpu="1 vcpu", labels=["prod"]), storage=Module("x:flow")
    )
    stored, _ = store.flows.register(registration_for(flow))
    assert store.flows.get("configured").run_config == ECSRun(cpu="1 vcpu", labels=["prod"])  # type: ignore[union-attr]
    assert stored.labels == ["prod"]
