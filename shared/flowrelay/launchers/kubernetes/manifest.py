"""The Job of one attempt of a flow run: its ``KubernetesRun`` merged over its target's
defaults and a job template, as the engine the seeds describe merged them.

The order, for each field: the run's ``KubernetesRun`` wins, then the job template (the run's
``job_template`` / ``job_template_path``, else the target's ``job_template``), then the
target's default. The container named ``flow`` (else the first; one named ``flow`` is added to
a template with none) runs flowrelay's runner: its ``command`` is the runner's and its ``args``
are cleared, and its environment is the template's, then the run's ``env``, then the runner
contract's ``FLOWRELAY_*`` variables (which win: a run config cannot point the runner at another
run).

What flowrelay sets on every Job, because its guarantees rest on it:

- ``metadata.name``: ``names.job_name(run id, attempt)``, deterministic, so a repeated create of
  the same attempt meets the first (409) instead of starting a second Job;
- labels (managed-by, run key, attempt, flow) and annotations (the exact run id) on the Job and
  its pod template;
- ``backoffLimit: 0`` and ``restartPolicy: Never``: flowrelay counts attempts itself (a pod
  retried by Kubernetes would run the flow twice under one attempt); a template asking for
  anything else is refused, not overridden;
- ``ttlSecondsAfterFinished`` (the template's, else the target's);
- ``activeDeadlineSeconds`` when the run has a time limit: the limit plus the start limit, a
  backstop for when the monitor cannot act (the monitor's own verdict, TimedOut, comes first);
- ``terminationGracePeriodSeconds`` at least ``STOP_GRACE_SECONDS``, the runner's time to
  report after SIGTERM.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from flowrelay.core.contract import RUNNER_COMMAND
from flowrelay.core.run_configs import KubernetesRun
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError, container_environment, run_config_as
from flowrelay.launchers.kubernetes.names import (
    CONTAINER_NAME,
    job_name,
    run_annotations,
    run_labels,
)
from flowrelay.launchers.kubernetes.settings import KubernetesSettings

#: The least grace a pod gets between SIGTERM and SIGKILL (as ECS's stopTimeout).
STOP_GRACE_SECONDS = 30


def default_template() -> dict[str, Any]:
    """The Job a run starts from when neither it nor its target gives a template."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {},
        "spec": {"template": {"metadata": {}, "spec": {"containers": [{"name": CONTAINER_NAME}]}}},
    }


def _refuse(message: str) -> LaunchError:
    return LaunchError(message, retryable=False)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _refuse(f"job template: {where} must be a mapping, not {type(value).__name__}")
    return value


def flow_container(containers: list[Any]) -> dict[str, Any]:
    """The container that runs the flow: the one named ``flow``, else the first."""
    for container in containers:
        if isinstance(container, dict) and container.get("name") == CONTAINER_NAME:
            return container
    first = containers[0]
    if not isinstance(first, dict):
        raise _refuse("job template: spec.template.spec.containers[0] must be a mapping")
    return first


def build_job(
    run: FlowRun,
    config: KubernetesRun,
    settings: KubernetesSettings,
    *,
    attempt: int,
    table_name: str,
    bus_name: str,
    region: str | None = None,
    template: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Job manifest of attempt ``attempt`` of ``run`` (see the module docstring);
    ``template``: the run's job template as read (``job_template`` or the file at
    ``job_template_path``). ``LaunchError`` (final) for what no Job can be made of."""
    source = template if template is not None else settings.job_template
    job = copy.deepcopy(dict(source)) if source is not None else default_template()
    kind, api_version = job.setdefault("kind", "Job"), job.setdefault("apiVersion", "batch/v1")
    if kind != "Job" or api_version != "batch/v1":
        raise _refuse(f"job template is a {api_version} {kind}, not a batch/v1 Job")
    name = job_name(run.run_id, attempt)
    labels = run_labels(run.run_id, attempt, run.flow_name)
    annotations = run_annotations(run.run_id, run.flow_name)

    metadata = _mapping(job.setdefault("metadata", {}), "metadata")
    namespace = metadata.get("namespace")
    if namespace not in (None, settings.namespace):
        raise _refuse(
            f"job template names namespace {namespace!r}, but its target creates Jobs in "
            f"{settings.namespace!r}: remove metadata.namespace or use a target for that namespace"
        )
    metadata.pop("generateName", None)  # the name is flowrelay's (one Job per attempt)
    metadata.update(name=name, namespace=settings.namespace)
    metadata["labels"] = {**_mapping(metadata.get("labels"), "metadata.labels"), **labels}
    metadata["annotations"] = {
        **_mapping(metadata.get("annotations"), "metadata.annotations"),
        **annotations,
    }

    spec = _mapping(job.setdefault("spec", {}), "spec")
    _job_limits(spec, run, settings)
    pod = _mapping(spec.setdefault("template", {}), "spec.template")
    pod_metadata = _mapping(pod.setdefault("metadata", {}), "spec.template.metadata")
    pod_metadata["labels"] = {
        **_mapping(pod_metadata.get("labels"), "spec.template.metadata.labels"),
        **labels,
    }
    pod_metadata["annotations"] = {
        **_mapping(pod_metadata.get("annotations"), "spec.template.metadata.annotations"),
        **annotations,
    }
    pod_spec = _mapping(pod.setdefault("spec", {}), "spec.template.spec")
    _pod_settings(pod_spec, config, settings)
    containers = pod_spec.setdefault("containers", [])
    if not isinstance(containers, list):
        raise _refuse("job template: spec.template.spec.containers must be a list")
    if not containers:
        containers.append({"name": CONTAINER_NAME})
    container = flow_container(containers)
    _flow_container(container, run, config, settings, attempt, table_name, bus_name, region)
    return job


def _job_limits(spec: dict[str, Any], run: FlowRun, settings: KubernetesSettings) -> None:
    backoff = spec.get("backoffLimit", 0)
    if backoff != 0:
        raise _refuse(
            f"job template sets backoffLimit: {backoff}; flowrelay counts a run's attempts "
            "itself (a pod retried by Kubernetes would run the flow twice): remove it or set 0"
        )
    for field in ("completions", "parallelism"):
        if spec.get(field, 1) != 1:
            raise _refuse(
                f"job template sets {field}: {spec[field]}; a flow run is one pod: remove it"
            )
    spec["backoffLimit"] = 0
    spec.setdefault("ttlSecondsAfterFinished", settings.ttl_seconds_after_finished)
    limit = run.timeout_seconds or (run.timeouts.run_seconds if run.timeouts else None)
    if limit is not None:
        start_limit = run.timeouts.start_limit_seconds if run.timeouts else 0.0
        spec["activeDeadlineSeconds"] = math.ceil(limit + start_limit)


def _pod_settings(
    pod_spec: dict[str, Any], config: KubernetesRun, settings: KubernetesSettings
) -> None:
    policy = pod_spec.get("restartPolicy", "Never")
    if policy != "Never":
        raise _refuse(
            f"job template sets restartPolicy: {policy}; flowrelay runs each attempt once "
            "(restartPolicy: Never): remove it"
        )
    pod_spec["restartPolicy"] = "Never"
    grace = pod_spec.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace < STOP_GRACE_SECONDS:
        pod_spec["terminationGracePeriodSeconds"] = STOP_GRACE_SECONDS
    if config.service_account_name:
        pod_spec["serviceAccountName"] = config.service_account_name
    elif settings.service_account_name and not pod_spec.get("serviceAccountName"):
        pod_spec["serviceAccountName"] = settings.service_account_name
    secrets = config.image_pull_secrets
    if secrets is None and not pod_spec.get("imagePullSecrets"):
        secrets = settings.image_pull_secrets or None
    if secrets is not None:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in secrets]


def _flow_container(
    container: dict[str, Any],
    run: FlowRun,
    config: KubernetesRun,
    settings: KubernetesSettings,
    attempt: int,
    table_name: str,
    bus_name: str,
    region: str | None,
) -> None:
    container.setdefault("name", CONTAINER_NAME)
    image = config.image or container.get("image") or settings.image
    if not image:
        raise _refuse(
            "no image for the flow container: give KubernetesRun(image=...), an image in the "
            "job template, or the target's image setting"
        )
    container["image"] = image
    container["command"] = list(RUNNER_COMMAND)
    container.pop("args", None)
    if config.image_pull_policy:
        container["imagePullPolicy"] = config.image_pull_policy
    env: dict[str, dict[str, Any]] = {}
    for item in container.get("env") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _refuse(f"job template: an env item of the flow container is not named: {item!r}")
        env[item["name"]] = item
    ours = container_environment(
        run, config, attempt, table_name=table_name, bus_name=bus_name, region=region
    )
    for name, value in ours.items():
        env[name] = {"name": name, "value": value}
    container["env"] = list(env.values())
    resources = _mapping(container.setdefault("resources", {}), "the flow container's resources")
    for key, request, limit in (
        ("cpu", config.cpu_request, config.cpu_limit),
        ("memory", config.memory_request, config.memory_limit),
    ):
        if request is not None:
            _mapping(resources.setdefault("requests", {}), "resources.requests")[key] = str(request)
        if limit is not None:
            _mapping(resources.setdefault("limits", {}), "resources.limits")[key] = str(limit)
    if not resources:
        container.pop("resources")


def kubernetes_run(run: FlowRun) -> KubernetesRun:
    """The run's config as a KubernetesRun: none (or a UniversalRun) means the target's
    defaults."""
    return run_config_as(run, KubernetesRun, "kubernetes")
