"""The runner's side of an ephemeral Dask cluster (``RunClusters``), up to the moment the cluster
would be created: what it is created with, what is refused and why, and that nothing is created
that could not be found again. moto over HTTP; the cluster classes are the real ones (not
instantiated: the dev-stack tests in tests/devstack/test_dask_cluster_runs.py create them)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from distributed import LocalCluster

from flowrelay.aws.bus import Publisher
from flowrelay.control.store import Store
from flowrelay.core.clusters import cluster_name
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.ecs.launcher import LaunchResult
from flowrelay.runner.clusters import ClusterRefused, RunClusters
from flowrelay.runner.config import RunnerConfig
from flowrelay.runner.reporting import Reporter
from tests.launchers.test_ecs_dask_clusters import DASK_ROLE, flow_definition


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def fargate_cluster() -> Any:
    from dask_cloudprovider.aws import FargateCluster

    return FargateCluster


def launched_run(store: Store, infrastructure: dict[str, Any], target: str) -> FlowRun:
    run_id = f"r-{uuid.uuid4().hex[:10]}"
    store.runs.create(run_id, "etl", state=RunState.SUBMITTED)
    store.runs.transition(
        run_id, RunState.RUNNING, Source.RUNNER, infrastructure=infrastructure, target=target
    )
    run = store.runs.get(run_id)
    assert run is not None
    return run


def watcher(store: Store, run: FlowRun, bus: str) -> RunClusters:
    config = RunnerConfig(run_id=run.run_id, table_name=store.table_name, bus_name=bus, attempt=1)
    reporter = Reporter(Publisher(boto3.client("events"), bus), config)
    make: Any = boto3.client  # boto3-stubs type each service separately
    return RunClusters(run, store, reporter, make)


def ecs_run(store: Store, ecs: Any, cluster: str, settings: dict[str, Any]) -> FlowRun:
    store.targets.put(Target(name="fargate", kind="ecs", settings={"cluster": cluster, **settings}))
    launched = LaunchResult(
        task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/{uuid.uuid4().hex}",
        cluster=cluster,
        task_definition_arn=flow_definition(ecs),
        attempt=1,
    )
    return launched_run(store, launched.model_dump(mode="json"), "fargate")


def test_a_local_cluster_gets_nothing_and_is_not_reported(store: Store, bus: str) -> None:
    run = launched_run(store, {"kind": "local", "ref": "1"}, "dev-local")
    kwargs = {"n_workers": 2}
    assert watcher(store, run, bus).starting(LocalCluster, dict(kwargs)) == kwargs


def test_a_fargate_cluster_on_a_local_target_is_refused_before_anything_exists(
    store: Store, bus: str
) -> None:
    store.targets.put(Target(name="dev-local", kind="local", settings={}))
    run = launched_run(store, {"kind": "local", "ref": "1"}, "dev-local")
    with pytest.raises(ClusterRefused, match="cannot run on local target 'dev-local'"):
        watcher(store, run, bus).starting(fargate_cluster(), {"n_workers": 1})


def test_a_cluster_without_network_is_refused_naming_what_is_missing(
    store: Store, ecs: Any, cluster: str, bus: str
) -> None:
    run = ecs_run(store, ecs, cluster, {})  # no subnets, no security groups
    with pytest.raises(ClusterRefused, match="no subnets, security_groups"):
        watcher(store, run, bus).starting(fargate_cluster(), {})


def test_a_cluster_whose_target_is_gone_is_refused_naming_it(store: Store, bus: str) -> None:
    run = launched_run(store, {"kind": "ecs", "ref": "x"}, "deleted-target")
    with pytest.raises(ClusterRefused, match="target 'deleted-target' no longer exists"):
        watcher(store, run, bus).starting(fargate_cluster(), {})


def test_a_cluster_that_could_not_be_reported_is_not_created(
    store: Store, ecs: Any, cluster: str, network: dict[str, Any], bus: str
) -> None:
    run = ecs_run(store, ecs, cluster, {**network, "dask_task_role_arn": DASK_ROLE})
    with pytest.raises(ClusterRefused, match="could not record Dask cluster"):
        watcher(store, run, f"no-such-bus-{uuid.uuid4().hex[:6]}").starting(fargate_cluster(), {})


def test_a_cluster_without_its_own_role_is_refused_never_given_the_runs(
    store: Store, ecs: Any, cluster: str, network: dict[str, Any], bus: str
) -> None:
    run = ecs_run(store, ecs, cluster, network)  # no dask_task_role_arn
    with pytest.raises(ClusterRefused, match="no task_role_arn"):
        watcher(store, run, bus).starting(fargate_cluster(), {})


def test_a_cluster_is_created_with_the_supply(
    store: Store, ecs: Any, cluster: str, network: dict[str, Any], bus: str
) -> None:
    run = ecs_run(store, ecs, cluster, {**network, "dask_task_role_arn": DASK_ROLE})
    clusters = watcher(store, run, bus)
    kwargs = clusters.starting(fargate_cluster(), {"n_workers": 2, "skip_cleanup": False})
    name = cluster_name(run.run_id, 1)
    assert kwargs["name"] == name
    assert kwargs["n_workers"] == 2
    assert kwargs["skip_cleanup"] is True
    assert kwargs["task_role_arn"] == DASK_ROLE
    assert kwargs["subnets"] == network["subnets"]
    assert clusters.supply is not None
    assert kwargs["cluster_arn"] == cluster  # the run's own, where the sweep looks
    assert clusters.supply.sweep.cluster_class == "dask_cloudprovider.aws.ecs.FargateCluster"
