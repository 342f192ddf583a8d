"""The target kinds: the launcher of each, the settings each takes, and the events each reads.
This is the one place that names concrete launchers (the handlers' composition root and the CLI
build them through ``build_launchers``).

A ``Target`` (``flowrelay.core.routing``) carries its settings as a plain mapping; what they
must hold is the launcher's business, so it is checked here, by the settings model of the
target's kind, when a target is saved (``checked_target``), and by the launcher when it
launches.

>>> checked_target(Target(name="t", kind="ecs", settings={"cluster": "flows"})).settings
{'cluster': 'flows', 'subnets': [], 'security_groups': [], 'assign_public_ip': False, \
'launch_type': 'FARGATE', 'cpu': '256', 'memory': '512'}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from flowrelay.core.clusters import ClusterSupply, ClusterSweep
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.core.settings import SettingsError
from flowrelay.core.wording import with_article
from flowrelay.launchers.base import EventReader, Launcher, LaunchError, Swept

S = TypeVar("S", bound=BaseModel)

KINDS = ("ecs", "kubernetes", "local")
#: The kinds a deployment can launch (a comma-separated list; default: ecs). The dev stack adds
#: local; a stack on AWS launches ecs (its functions cannot start processes on your machine).
LAUNCHER_KINDS_VARIABLE = "FLOWRELAY_LAUNCHER_KINDS"
DEFAULT_LAUNCHER_KINDS = ("ecs",)
#: Kinds whose targets can be described but that no launcher starts yet, with what to say.
COMING: dict[str, str] = {}


class TargetSettingsError(ValueError):
    """A target's settings do not fit its kind; the message names each bad setting as
    ``settings.NAME`` (``problems`` holds just those)."""

    def __init__(self, message: str, problems: str | None = None) -> None:
        super().__init__(message)
        self.problems = problems or message


def settings_model(kind: str) -> type[BaseModel]:
    """The settings model of target kind ``kind``; ``TargetSettingsError`` for an unknown kind."""
    # Imported here, one kind at a time: a kind's package may load heavy clients.
    if kind == "ecs":
        from flowrelay.launchers.ecs.settings import EcsSettings

        return EcsSettings
    if kind == "kubernetes":
        from flowrelay.launchers.kubernetes.settings import KubernetesSettings

        return KubernetesSettings
    if kind == "local":
        from flowrelay.launchers.local.settings import LocalSettings

        return LocalSettings
    raise TargetSettingsError(f"unknown target kind {kind!r} (known: {', '.join(KINDS)})")


def launcher_kinds(env: Mapping[str, str]) -> tuple[str, ...]:
    """The kinds this deployment launches, from ``FLOWRELAY_LAUNCHER_KINDS`` (default: ecs);
    ``SettingsError`` naming an unknown kind, or one no launcher starts yet.

    >>> launcher_kinds({"FLOWRELAY_LAUNCHER_KINDS": "ecs, local"})
    ('ecs', 'local')
    """
    raw = env.get(LAUNCHER_KINDS_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_LAUNCHER_KINDS
    kinds = tuple(dict.fromkeys(kind.strip() for kind in raw.split(",") if kind.strip()))
    for kind in kinds:
        if kind not in KINDS:
            raise SettingsError(
                f"{LAUNCHER_KINDS_VARIABLE}={raw!r}: unknown kind {kind!r} (known: "
                f"{', '.join(KINDS)})"
            )
        if kind in COMING:
            raise SettingsError(f"{LAUNCHER_KINDS_VARIABLE}={raw!r}: {COMING[kind]}")
    return kinds


def build_launchers(
    make_client: Callable[[str], Any],
    *,
    table_name: str,
    bus_name: str,
    kinds: Iterable[str] = DEFAULT_LAUNCHER_KINDS,
) -> dict[str, Launcher]:
    """The launcher of each of ``kinds``, by kind, with clients made by ``make_client(service)``;
    ``table_name`` and ``bus_name`` go to the runners they start."""
    launchers: dict[str, Launcher] = {}
    for kind in kinds:
        if kind == "ecs":
            from flowrelay.launchers.ecs import EcsLauncher

            launchers[kind] = EcsLauncher(
                make_client("ecs"), table_name=table_name, bus_name=bus_name
            )
        elif kind == "kubernetes":
            import boto3

            from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher

            # The session signs EKS tokens and describes clusters; its region goes to runners.
            session = boto3.session.Session()
            launchers[kind] = KubernetesLauncher(
                table_name=table_name,
                bus_name=bus_name,
                region=session.region_name,
                session=session,
            )
        elif kind == "local":
            from flowrelay.launchers.local.launcher import LocalLauncher

            launchers[kind] = LocalLauncher(
                make_client("events"), table_name=table_name, bus_name=bus_name
            )
        else:
            raise TargetSettingsError(COMING.get(kind, f"no launcher for {kind!r} targets"))
    return launchers


#: Lines of a crashed run's log quoted in its Crashed message.
CRASH_TAIL_LINES = 20


def crash_log_tail(
    infrastructure: Mapping[str, Any], launchers: Mapping[str, Launcher], logs_client: Any
) -> str:
    """The end of a run's log for its Crashed message (empty when nothing can be read): its
    pod's log for a Kubernetes run (read from the API server while the pod exists), else its
    CloudWatch stream."""
    from flowrelay.aws.logs import crash_log_tail as cloudwatch_tail
    from flowrelay.aws.logs import format_tail

    launcher = launchers.get(str(infrastructure.get("kind")))
    if infrastructure.get("kind") == "kubernetes" and launcher is not None:
        from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher

        assert isinstance(launcher, KubernetesLauncher)
        try:
            text = launcher.read_log(infrastructure, CRASH_TAIL_LINES)
        except LaunchError:
            return ""
        return format_tail((text or "").splitlines()[-CRASH_TAIL_LINES:])
    return cloudwatch_tail(logs_client, infrastructure)


def cluster_supply(
    run: FlowRun, target: Target, make_client: Callable[[str], Any]
) -> ClusterSupply | None:
    """What the Dask cluster a run's flow creates gets from the run's target and launch
    (``flowrelay.core.clusters``); None for a kind that supplies none (a local run's cluster
    is a ``LocalCluster`` in its own process group). Raises ``LaunchError`` naming what is
    missing or could not be read."""
    kind = run.infrastructure.get("kind")
    if kind == "ecs":
        from flowrelay.launchers.ecs import dask_clusters as ecs_clusters

        return ecs_clusters.cluster_supply(
            run, target, run.infrastructure, make_client("ecs"), make_client("ec2")
        )
    if kind == "kubernetes":
        from flowrelay.launchers.kubernetes import dask_clusters as kube_clusters

        return kube_clusters.cluster_supply(run, target, run.infrastructure)
    return None


def sweep_cluster_from_runner(
    run: FlowRun, cluster: ClusterSweep, make_client: Callable[[str], Any]
) -> Swept | None:
    """The runner's own sweep of its run's cluster, right after closing it: ECS (stop what is
    left, deregister the task definitions dask-cloudprovider's finalizers leave behind). None
    for a kind whose runner leaves it to the monitor (Kubernetes: closing a KubeCluster deletes
    its DaskCluster, and everything of it goes by owner reference; the runner's pod has no
    credentials of flowrelay's to reach the API with)."""
    if cluster.kind == "ecs" and run.infrastructure.get("kind") == "ecs":
        from flowrelay.launchers.ecs.dask_clusters import sweep
        from flowrelay.launchers.ecs.launcher import LaunchResult

        launched = LaunchResult.model_validate(run.infrastructure)
        return sweep(make_client("ecs"), launched.cluster, cluster.name, run.run_id)
    return None


def event_readers() -> dict[tuple[str, str], EventReader]:
    """The infrastructure events (source, detail-type) record_state takes, and their readers."""
    from flowrelay.launchers.ecs.events import DETAIL_TYPE, SOURCE, read_task_event
    from flowrelay.launchers.local import events as local

    return {
        (SOURCE, DETAIL_TYPE): read_task_event,
        (local.SOURCE, local.DETAIL_TYPE): local.read_process_event,
    }


def typed_settings(target: Target, model: type[S]) -> S:
    """``target``'s settings as ``model`` (the launcher's own settings model)."""
    try:
        return model.model_validate(target.settings)
    except ValidationError as exc:
        problems = settings_errors(exc)
        raise TargetSettingsError(
            f"target {target.name!r} has settings {with_article(target.kind)} target cannot use: "
            f"{problems}",
            problems,
        ) from None


def checked_target(target: Target) -> Target:
    """``target`` with its settings checked against its kind and written out in full (defaults
    filled in, unset ones left out); ``TargetSettingsError`` naming each bad setting."""
    settings = typed_settings(target, settings_model(target.kind))
    return target.model_copy(update={"settings": settings.model_dump(exclude_none=True)})


def target_json_schema() -> dict[str, Any]:
    """The JSON Schema of a launch target: name, labels and timeouts as every target has them,
    and the settings of each kind (one ``oneOf`` branch per kind, chosen by ``kind``)."""
    base = Target.model_json_schema()
    branches = []
    for kind in KINDS:
        settings = settings_model(kind).model_json_schema()
        description = settings.get("description", "")
        if kind in COMING:
            description = f"{description} {COMING[kind]}.".strip()
        branches.append(
            {
                "title": f"{kind} target",
                "description": description,
                "properties": {"kind": {"const": kind}, "settings": settings},
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://flowrelay.dev/schemas/target.json",
        **base,
        "oneOf": branches,
    }


def settings_errors(error: ValidationError) -> str:
    """A settings model's errors as one line, each setting named ``settings.NAME``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"settings.{location}: {message}" if location else message)
    return "; ".join(parts)


__all__ = [
    "COMING",
    "KINDS",
    "LAUNCHER_KINDS_VARIABLE",
    "TargetSettingsError",
    "build_launchers",
    "checked_target",
    "cluster_supply",
    "crash_log_tail",
    "event_readers",
    "launcher_kinds",
    "settings_errors",
    "settings_model",
    "sweep_cluster_from_runner",
    "target_json_schema",
    "typed_settings",
]
