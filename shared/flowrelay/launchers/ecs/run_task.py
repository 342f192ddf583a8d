"""The RunTask request of one launch attempt: what flowrelay computes, and the run's own
``run_task_kwargs`` merged over it without detaching the task from its run.

Secrets never go in the overrides: the container's environment holds only the run config's
``env`` and the runner contract's ``FLOWRELAY_*`` variables (plus ``AWS_REGION``). Secrets belong
in the task definition's ``secrets`` (Secrets Manager / SSM references), which a custom
``task_definition`` can carry.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from flowrelay.core.contract import RESERVED_PREFIX
from flowrelay.core.run_configs import ECSRun
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError, container_environment, run_config_as
from flowrelay.launchers.ecs.names import (
    ATTEMPT_TAG,
    FLOW_TAG,
    RUN_ID_TAG,
    STARTED_BY,
    client_token,
    group_of,
    tag_value,
)
from flowrelay.launchers.ecs.settings import EcsSettings
from flowrelay.launchers.ecs.task_definitions import Definition, cpu_units, memory_mib, network_mode


def run_task_request(
    run: FlowRun,
    config: ECSRun,
    settings: EcsSettings,
    definition: Definition,
    placement: dict[str, Any],
    attempt: int,
    *,
    table_name: str,
    bus_name: str,
    region: str | None,
) -> dict[str, Any]:
    """The RunTask arguments flowrelay computes, before ``run_task_kwargs`` are merged."""
    container_override: dict[str, Any] = {
        "name": definition.container,
        "environment": [
            {"name": name, "value": value}
            for name, value in container_environment(
                run, config, attempt, table_name=table_name, bus_name=bus_name, region=region
            ).items()
        ],
    }
    overrides: dict[str, Any] = {"containerOverrides": [container_override]}
    if config.task_definition_arn is not None:
        # An external definition is not rebuilt, so the run's sizes and roles are applied the
        # one way ECS allows without registering: as task-level overrides.
        for key, value in (
            ("cpu", cpu_units(config.cpu)),
            ("memory", memory_mib(config.memory)),
            ("taskRoleArn", config.task_role_arn),
            ("executionRoleArn", config.execution_role_arn),
        ):
            if value is not None:
                overrides[key] = value
    request: dict[str, Any] = {
        "cluster": settings.cluster,
        "taskDefinition": definition.arn,
        "count": 1,
        **placement,
        "overrides": overrides,
        "clientToken": client_token(run.run_id, attempt),
        "group": group_of(run.run_id),
        "startedBy": STARTED_BY,
        "tags": [
            {"key": RUN_ID_TAG, "value": tag_value(run.run_id)},
            {"key": FLOW_TAG, "value": tag_value(run.flow_name)},
            {"key": ATTEMPT_TAG, "value": str(attempt)},
        ],
    }
    if network_mode(placement) == "awsvpc" and settings.subnets:
        vpc: dict[str, Any] = {
            "subnets": list(settings.subnets),
            "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED",
        }
        if settings.security_groups:
            vpc["securityGroups"] = list(settings.security_groups)
        request["networkConfiguration"] = {"awsvpcConfiguration": vpc}
    return request


def ecs_run(run: FlowRun) -> ECSRun:
    """The run's config as an ECSRun; none (or a UniversalRun) means the target's defaults."""
    return run_config_as(run, ECSRun, "ecs")


# Lists whose items are matched by a key field instead of being replaced wholesale.
_KEYED_LISTS: dict[tuple[str, ...], str] = {
    ("tags",): "key",
    ("overrides", "containerOverrides"): "name",
    ("overrides", "containerOverrides", "environment"): "name",
    ("overrides", "containerOverrides", "resourceRequirements"): "type",
}


def merge_run_task_kwargs(
    computed: Mapping[str, Any], extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``extra`` (the run's ``run_task_kwargs``) merged over the RunTask arguments flowrelay
    computed. The rule:

    - mappings merge key by key, recursively (``networkConfiguration.awsvpcConfiguration``,
      ``overrides``, ...): giving ``{"awsvpcConfiguration": {"assignPublicIp": "ENABLED"}}``
      keeps the target's subnets and security groups;
    - lists are replaced, except these, whose items are matched by a key and merged item by
      item (new items are appended): ``tags`` by ``key``, ``overrides.containerOverrides`` by
      ``name``, and inside a container override ``environment`` by ``name`` and
      ``resourceRequirements`` by ``type``;
    - any other value in ``extra`` wins;
    - ``launchType`` and ``capacityProviderStrategy`` exclude each other: giving one in
      ``extra`` drops the other from the computed arguments.

    ``group``, ``clientToken`` and the runner's ``FLOWRELAY_*`` variables identify the run and
    may not be changed (``EcsLauncher.launch`` refuses such kwargs).
    """
    result = copy.deepcopy(dict(computed))
    extra = dict(extra or {})
    if "launchType" in extra:
        result.pop("capacityProviderStrategy", None)
    if "capacityProviderStrategy" in extra:
        result.pop("launchType", None)
    return _merge(result, extra, ())


def _merge(base: dict[str, Any], over: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    for key, value in over.items():
        here = (*path, key)
        current = base.get(key)
        if isinstance(current, dict) and isinstance(value, Mapping):
            base[key] = _merge(current, value, here)
        elif isinstance(current, list) and isinstance(value, list) and here in _KEYED_LISTS:
            base[key] = _merge_keyed(current, value, here, _KEYED_LISTS[here])
        else:
            base[key] = copy.deepcopy(value)
    return base


def _merge_keyed(base: list[Any], over: list[Any], path: tuple[str, ...], field: str) -> list[Any]:
    merged = list(base)
    index = {
        item[field]: position
        for position, item in enumerate(merged)
        if isinstance(item, dict) and field in item
    }
    for item in over:
        position = index.get(item.get(field)) if isinstance(item, dict) else None
        if position is None:
            merged.append(copy.deepcopy(item))
        else:
            merged[position] = _merge(merged[position], item, path)
    return merged


def check_identity(request: Mapping[str, Any], computed: Mapping[str, Any], container: str) -> None:
    """Refuse ``run_task_kwargs`` that would detach the task from its run: without the group the
    task's state events cannot find the run, without the token a retry could start a second
    task, without the runner's variables the runner reports for another run or nowhere."""
    for key in ("group", "clientToken"):
        if request.get(key) != computed.get(key):
            raise LaunchError(
                f"run_task_kwargs may not set {key!r}: flowrelay uses it to track the run",
                retryable=False,
            )
    count = request.get("count", 1)
    if count != 1:
        raise LaunchError(
            f"run_task_kwargs may not set count to {count!r}: a flow run is one task",
            retryable=False,
        )

    def runner_env(arguments: Mapping[str, Any]) -> dict[Any, Any]:
        for override in arguments.get("overrides", {}).get("containerOverrides", []):
            if isinstance(override, dict) and override.get("name") == container:
                return {
                    item.get("name"): item.get("value")
                    for item in override.get("environment", [])
                    if isinstance(item, dict)
                    and str(item.get("name", "")).startswith(RESERVED_PREFIX)
                }
        return {}

    if runner_env(request) != runner_env(computed):
        raise LaunchError(
            "run_task_kwargs may not change the FLOWRELAY_* environment variables of the "
            f"{container!r} container: the runner needs them to report on this run",
            retryable=False,
        )
