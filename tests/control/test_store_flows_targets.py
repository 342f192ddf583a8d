"""Flow registrations and launch targets in the table (moto server over HTTP)."""

from __future__ import annotations

import threading

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.core.routing import Target
from flowrelay.core.run_configs import ECSRun
from flowrelay.core.storage import Module
from flowrelay.sdk.flow import registration_for


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


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
