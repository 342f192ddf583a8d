"""A run's Dask cluster, as the control plane keeps track of it: the runner's reports become notes
in the run's history, a cluster that is starting is remembered before it exists, and the monitor
sweeps it once the run is over, however it ended (moto over HTTP, the real ECS launcher)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.monitor import Monitor
from flowrelay.control.recorder import StateRecorder
from flowrelay.control.store import Store
from flowrelay.core.clusters import FARGATE_CLUSTER, ClusterSweep, cluster_name
from flowrelay.core.events import EventError, parse_event
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.launchers.ecs.dask_clusters import GROUP_PREFIX, families
from flowrelay.launchers.ecs.launcher import EcsLauncher, LaunchResult
from flowrelay.launchers.kinds import event_readers
from tests.launchers.test_ecs_dask_clusters import start_task


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def cluster_event(
    run_id: str, phase: str, cluster: ClusterSweep, message: str, event_id: str = "e-1"
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Flow Run Cluster Changed",
        "source": "flowrelay",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "flow_run_id": run_id,
            "phase": phase,
            "cluster": cluster.model_dump(mode="json"),
            "message": message,
            "timestamp": "2026-11-29T12:00:00Z",
            "event_id": event_id,
        },
    }


def running_run(store: Store, ecs_cluster: str, run_id: str = "dask-run") -> ClusterSweep:
    launched = LaunchResult(
        task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/{ecs_cluster}/flow",
        cluster=ecs_cluster,
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/flowrelay-x:1",
        attempt=1,
    )
    store.runs.create(run_id, "etl", state=RunState.SUBMITTED)
    store.runs.transition(
        run_id,
        RunState.RUNNING,
        Source.RUNNER,
        infrastructure=launched.model_dump(mode="json"),
        target="fargate",
    )
    return ClusterSweep(kind="ecs", name=cluster_name(run_id, 1), cluster_class=FARGATE_CLUSTER)


def test_a_starting_cluster_is_remembered_and_noted_once_however_often_it_is_delivered(
    store: Store, cluster: str
) -> None:
    record = running_run(store, cluster)
    recorder = StateRecorder(store)
    event = cluster_event("dask-run", "starting", record, "Dask cluster starting")
    first = recorder.handle(parse_event(event, event_readers()))
    again = recorder.handle(parse_event(event, event_readers()))

    assert (first.applied, again.applied) == (True, False)
    assert [(p.run_id, p.cluster) for p in store.clusters.pending()] == [("dask-run", record)]
    notes = [entry for entry in store.runs.history("dask-run") if entry.note]
    assert [(n.message, n.state, n.details["cluster"]) for n in notes] == [
        ("Dask cluster starting", RunState.RUNNING, record.name)
    ]
    run = store.runs.get("dask-run")
    assert run is not None
    assert run.state is RunState.RUNNING


def test_a_cluster_report_about_an_unknown_run_is_refused_with_the_reason(store: Store) -> None:
    record = ClusterSweep(kind="ecs", name="frd-x-1", cluster_class=FARGATE_CLUSTER)
    with pytest.raises(EventError, match="no flow run 'nobody'"):
        StateRecorder(store).handle(
            parse_event(cluster_event("nobody", "started", record, "started"), event_readers())
        )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("flowrelay", "ecs"),  # the ECS launcher's startedBy: the monitor would stop flow runs
        (cluster_name("another-run", 1), "ecs"),  # another run's cluster
        (cluster_name("dask-run", 2), "ecs"),  # an attempt the run never made
        (cluster_name("dask-run", 1), "kubernetes"),  # not the kind the run was launched on
    ],
)
def test_a_report_naming_anything_but_the_runs_own_cluster_is_refused(
    store: Store, cluster: str, name: str, kind: str
) -> None:
    running_run(store, cluster)
    forged = ClusterSweep(kind=kind, name=name, cluster_class=FARGATE_CLUSTER)
    with pytest.raises(EventError, match="is not a cluster of run 'dask-run'"):
        StateRecorder(store).handle(
            parse_event(cluster_event("dask-run", "starting", forged, "starting"), event_readers())
        )
    assert store.clusters.pending() == []  # nothing for the monitor to sweep


def test_a_cluster_whose_run_is_gone_is_forgotten(store: Store, ecs: Any, bus: str) -> None:
    record = ClusterSweep(
        kind="ecs", name=cluster_name("vanished", 1), cluster_class=FARGATE_CLUSTER
    )
    store.clusters.expect("vanished", record)
    monitor = Monitor(
        store,
        {"ecs": EcsLauncher(ecs, table_name=store.table_name, bus_name=bus)},
        Publisher(boto3.client("events"), bus),
    )
    assert monitor.run_once().actions == []
    assert store.clusters.pending() == []  # nothing says where it ran: not tried for ever


def test_the_monitor_sweeps_a_cluster_only_once_its_run_is_over(
    store: Store, ecs: Any, cluster: str, bus: str, network: dict[str, Any]
) -> None:
    record = running_run(store, cluster)
    StateRecorder(store).handle(
        parse_event(cluster_event("dask-run", "starting", record, "starting"), event_readers())
    )
    scheduler, worker = families(record.name)
    group = GROUP_PREFIX + "dask-run"
    tasks = [
        start_task(ecs, cluster, scheduler, record.name, network, group),
        start_task(ecs, cluster, worker, record.name, network, group),
    ]
    monitor = Monitor(
        store,
        {"ecs": EcsLauncher(ecs, table_name=store.table_name, bus_name=bus)},
        Publisher(boto3.client("events"), bus),
    )

    report = monitor.run_once()
    assert report.count("swept") == 0  # the run is still running: its runner owns the cluster
    assert len(store.clusters.pending()) == 1
    assert set(tasks) <= set(ecs.list_tasks(cluster=cluster)["taskArns"])

    # The runner was killed (SIGKILL): it never closed its cluster, and the run crashed.
    store.runs.transition("dask-run", RunState.CRASHED, Source.MONITOR, message="killed")
    report = monitor.run_once()

    message = f"Dask cluster {record.name} swept: stopped 2 tasks, deregistered 2 task definitions"
    assert [(a.run_id, a.action, a.message) for a in report.actions] == [
        ("dask-run", "swept", message)
    ]
    assert report.clusters_checked == 1
    assert store.clusters.pending() == []
    assert not set(tasks) & set(
        ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    )
    assert [e.message for e in store.runs.history("dask-run") if e.note][-1] == message
    # Nothing left to check: the next pass does not look at it again.
    assert monitor.run_once().clusters_checked == 0
