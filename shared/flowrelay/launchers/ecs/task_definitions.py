"""ECS task definitions for flow runs: built from a run's ECSRun over its target's settings,
named by their content, registered once.

The whole task definition is built, its canonical JSON hashed, and the family named
``flowrelay-<16 hex of sha256>``. Equal content means equal family, so it is registered once
(checked with ``DescribeTaskDefinition``, then cached) and reused by every later run.
Registering per run would hit ECS's registration throttle and leave thousands of revisions
behind. Everything that differs per run (the run id, the attempt, the run's ``env``) goes into
RunTask's container overrides instead (``flowrelay.launchers.ecs.run_task``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flowrelay.core.contract import RUNNER_COMMAND
from flowrelay.core.modeling import Model
from flowrelay.core.run_configs import ECSRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.documents import Documents
from flowrelay.launchers.ecs.errors import botocore_error, call, client_error, error_code
from flowrelay.launchers.ecs.names import CONTAINER_NAME, FAMILY_PREFIX, LOG_STREAM_PREFIX
from flowrelay.launchers.ecs.settings import EcsSettings

_FARGATE_PROVIDERS = frozenset({"FARGATE", "FARGATE_SPOT"})
# What DescribeTaskDefinition returns but RegisterTaskDefinition refuses: a described definition
# pasted into ``task_definition`` works as is.
_READ_ONLY_KEYS = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)
_VCPU = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*vcpu$", re.IGNORECASE)
_GB = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*gb$", re.IGNORECASE)


class Definition(Model):
    """A registered task definition, and what RunTask needs to know about it."""

    arn: str
    container: str
    log_group: str | None = None
    log_stream_prefix: str | None = None


class TaskDefinitions:
    """The task definitions one launcher uses: built, registered once per content, described
    once per external ARN. Safe to share between threads (a batch of dispatches launches
    concurrently): one family is described/registered once per process.

    ``s3_client`` reads ``task_definition_path`` values on S3; one is made when first needed.
    """

    def __init__(self, client: Any, *, region: str | None = None, s3_client: Any = None) -> None:
        self.client = client
        self.region = region
        self.documents = Documents(region=region, s3_client=s3_client)
        self._families: dict[str, str] = {}  # family -> task definition ARN
        self._described: dict[str, Definition] = {}  # external task definition ARN -> facts
        self._lock = threading.Lock()
        self._family_locks: dict[str, threading.Lock] = {}

    def for_run(
        self, config: ECSRun, settings: EcsSettings, placement: dict[str, Any]
    ) -> Definition:
        """The definition a run with ``config`` launches on a target with ``settings``."""
        if config.task_definition_arn is not None:
            if config.image is not None:
                raise LaunchError(
                    "image cannot be set together with task_definition_arn: ECS cannot override "
                    "a registered task definition's image; give task_definition instead",
                    retryable=False,
                )
            return self._describe_external(config.task_definition_arn)
        base = config.task_definition
        if config.task_definition_path is not None:
            base = self.documents.read(
                config.task_definition_path, "task_definition_path", "a task definition"
            )
        definition = build_task_definition(
            config, settings, placement=placement, base=base, region=self.region
        )
        arn = self._ensure_registered(definition)
        container = flow_container(definition["containerDefinitions"])
        log_group, prefix = awslogs(container)
        return Definition(
            arn=arn, container=container["name"], log_group=log_group, log_stream_prefix=prefix
        )

    def _ensure_registered(self, definition: dict[str, Any]) -> str:
        """The ARN of ``definition``'s family, registering it only if ECS does not have it.

        The family name is the content hash, so any ACTIVE revision of it has this content.
        """
        family: str = definition["family"]
        arn = self._families.get(family)
        if arn is not None:
            return arn
        with self._lock:
            family_lock = self._family_locks.setdefault(family, threading.Lock())
        with family_lock:
            arn = self._families.get(family)
            if arn is not None:
                return arn
            try:
                described = self.client.describe_task_definition(taskDefinition=family)
                arn = str(described["taskDefinition"]["taskDefinitionArn"])
            except ClientError as exc:
                # ECS answers an unknown family with ClientException "Unable to describe task
                # definition."; anything else (access denied, throttling) is an error.
                if error_code(exc) != "ClientException":
                    raise client_error("DescribeTaskDefinition", exc) from exc
            except BotoCoreError as exc:
                raise botocore_error("DescribeTaskDefinition", exc) from exc
            if arn is None:
                registered = call(
                    "RegisterTaskDefinition", self.client.register_task_definition, **definition
                )
                arn = str(registered["taskDefinition"]["taskDefinitionArn"])
            self._families[family] = arn
            return arn

    def _describe_external(self, arn: str) -> Definition:
        """Which container to override and where it logs, for a definition flowrelay did not
        build. A revisioned ARN never changes, so it is described once per launcher."""
        known = self._described.get(arn)
        if known is not None:
            return known
        described = call(
            "DescribeTaskDefinition", self.client.describe_task_definition, taskDefinition=arn
        )["taskDefinition"]
        containers = described.get("containerDefinitions") or []
        if not containers:
            raise LaunchError(
                f"task definition {arn} has no containers", retryable=False, code=None
            )
        container = flow_container(containers)
        log_group, prefix = awslogs(container)
        result = Definition(
            arn=described.get("taskDefinitionArn", arn),
            container=container["name"],
            log_group=log_group,
            log_stream_prefix=prefix,
        )
        if re.search(r":\d+$", arn):
            self._described[arn] = result
        return result


# --- building the task definition -------------------------------------------------------------


def build_task_definition(
    config: ECSRun,
    settings: EcsSettings,
    *,
    placement: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    region: str | None = None,
) -> dict[str, Any]:
    """The task definition a run needs, as ``RegisterTaskDefinition`` takes it, with its
    content-hash family name.

    Without ``base`` one container named ``flow`` is built. With ``base`` (the run's
    ``task_definition``, or the file at ``task_definition_path``) that definition is kept and
    completed: the ``flow`` container (or the first one) gets the runner command if it has no
    command of its own, and the image, sizes and roles are filled in. Precedence for each of
    image, cpu, memory, task and execution role: ``ECSRun`` field > ``base`` > target setting.
    cpu and memory are normalised to ECS units ("1 vcpu" -> "1024", "2 GB" -> "2048"), so the
    same size written two ways is one task definition.
    """
    placement = placement if placement is not None else placement_of(settings, {})
    if base is None:
        definition: dict[str, Any] = {
            "containerDefinitions": [
                {"name": CONTAINER_NAME, "essential": True, "command": list(RUNNER_COMMAND)}
            ]
        }
    else:
        definition = {
            key: copy.deepcopy(value)
            for key, value in base.items()
            if key not in _READ_ONLY_KEYS and key != "family"
        }
    containers = definition.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise LaunchError("the task definition has no containerDefinitions", retryable=False)
    if not all(isinstance(item, dict) for item in containers):
        raise LaunchError(
            "each of the task definition's containerDefinitions must be a mapping",
            retryable=False,
        )
    container = flow_container(containers)
    container.setdefault("name", CONTAINER_NAME)
    container.setdefault("command", list(RUNNER_COMMAND))

    image = config.image or container.get("image") or settings.image
    if not image:
        raise LaunchError(
            "no image to run: set image in the run's ECSRun, in its task definition, or in the "
            "target's settings",
            retryable=False,
        )
    container["image"] = image

    cpu = cpu_units(config.cpu or definition.get("cpu") or settings.cpu)
    memory = memory_mib(config.memory or definition.get("memory") or settings.memory)
    definition["cpu"] = cpu
    definition["memory"] = memory
    for key, run_value, target_value in (
        ("taskRoleArn", config.task_role_arn, settings.task_role_arn),
        ("executionRoleArn", config.execution_role_arn, settings.execution_role_arn),
    ):
        value = run_value or definition.get(key) or target_value
        if value:
            definition[key] = value
    definition.setdefault("networkMode", network_mode(placement))
    definition.setdefault("requiresCompatibilities", compatibilities(placement))
    if (
        "memory" not in container
        and "memoryReservation" not in container
        and memory is not None
        and memory.isdigit()
    ):
        # Optional on AWS with task-level memory, but moto needs a container-level value.
        container["memory"] = int(memory)
    if settings.log_group and "logConfiguration" not in container:
        options = {"awslogs-group": settings.log_group, "awslogs-stream-prefix": LOG_STREAM_PREFIX}
        if region:
            options["awslogs-region"] = region
        container["logConfiguration"] = {"logDriver": "awslogs", "options": options}
    return {"family": task_definition_family(definition), **definition}


def task_definition_family(definition: Mapping[str, Any]) -> str:
    """``flowrelay-`` and the first 16 hex digits of the sha256 of the definition's canonical
    JSON (sorted keys, no whitespace; the family itself left out).

    >>> task_definition_family({"cpu": "256"}) == task_definition_family({"cpu": "256"})
    True
    """
    content = {key: value for key, value in definition.items() if key != "family"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return FAMILY_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def placement_of(settings: EcsSettings, extra: Mapping[str, Any]) -> dict[str, Any]:
    """launchType or capacityProviderStrategy (and platformVersion), as RunTask will get them
    once ``extra`` is merged: the task definition's compatibilities must match those."""
    placement: dict[str, Any] = {}
    if settings.capacity_provider_strategy:
        placement["capacityProviderStrategy"] = copy.deepcopy(settings.capacity_provider_strategy)
    elif settings.launch_type:
        placement["launchType"] = settings.launch_type
    if "launchType" in extra:
        placement.pop("capacityProviderStrategy", None)
        placement["launchType"] = extra["launchType"]
    if "capacityProviderStrategy" in extra:
        placement.pop("launchType", None)
        placement["capacityProviderStrategy"] = extra["capacityProviderStrategy"]
    if settings.platform_version and "FARGATE" in compatibilities(placement):
        placement["platformVersion"] = settings.platform_version
    return placement


def compatibilities(placement: Mapping[str, Any]) -> list[str]:
    launch_type = placement.get("launchType")
    if launch_type:
        return [str(launch_type)]
    strategy = placement.get("capacityProviderStrategy")
    if strategy:
        providers = {str(item.get("capacityProvider")) for item in strategy}
        if providers <= _FARGATE_PROVIDERS:
            return ["FARGATE"]
        if not providers & _FARGATE_PROVIDERS:
            return ["EC2"]
    # The cluster's default capacity provider decides: fit either.
    return ["EC2", "FARGATE"]


def network_mode(placement: Mapping[str, Any]) -> str:
    # External (ECS Anywhere) instances do not support awsvpc.
    return "bridge" if placement.get("launchType") == "EXTERNAL" else "awsvpc"


def flow_container(containers: list[dict[str, Any]]) -> dict[str, Any]:
    for container in containers:
        if container.get("name") == CONTAINER_NAME:
            return container
    return containers[0]


def awslogs(container: Mapping[str, Any]) -> tuple[str | None, str | None]:
    logging = container.get("logConfiguration") or {}
    if logging.get("logDriver") != "awslogs":
        return None, None
    options = logging.get("options") or {}
    return options.get("awslogs-group"), options.get("awslogs-stream-prefix")


def cpu_units(value: Any) -> str | None:
    """ECS CPU units as a string: "1 vcpu" -> "1024"; numbers pass through."""
    if value is None:
        return None
    text = str(value).strip()
    match = _VCPU.match(text)
    if match:
        return str(round(float(match.group(1)) * 1024))
    return str(int(float(text))) if _is_number(text) else text


def memory_mib(value: Any) -> str | None:
    """ECS memory in MiB as a string: "2 GB" -> "2048"; numbers pass through."""
    if value is None:
        return None
    text = str(value).strip()
    match = _GB.match(text)
    if match:
        return str(round(float(match.group(1)) * 1024))
    return str(int(float(text))) if _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
