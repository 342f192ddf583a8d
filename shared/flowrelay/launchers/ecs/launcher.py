"""The ECS/Fargate launcher: one flow run becomes one ECS task running ``flowrelay-runner``.

What a launch does, and why:

- **Settings.** The run's ``ECSRun`` fields are merged over the target's ``EcsSettings``; a run
  with no run config (or a ``UniversalRun``) gets the target's defaults. A run is specific, a
  target is general, so the run wins.
- **Task definitions are content-addressed.** The launcher builds the whole task definition,
  hashes its canonical JSON, and names the family ``flowrelay-<16 hex of sha256>``. Equal content
  means equal family, so it is registered once (checked with ``DescribeTaskDefinition``, then
  cached per launcher) and reused by every later run. Registering per run would hit ECS's
  registration throttle and leave thousands of revisions behind. Everything that differs per run
  (the run id, the attempt, the run's ``env``) goes into RunTask's container overrides instead.
- **RunTask is idempotent per attempt.** ``clientToken`` is ``<run id>-<attempt>``, so a
  redelivered dispatch message that repeats the same attempt cannot start a second task on AWS.
  ``group`` is ``flowrelay:<run id>``: that is how "ECS Task State Change" events are matched back
  to the run (``flowrelay.core.events.EcsTaskStateChange.flow_run_id``).
- **Errors say whether to try again.** ``LaunchError.retryable`` is true for throttling, server
  errors and capacity shortages (AWS may say yes later) and false for everything that will fail
  the same way next time (bad parameters, unknown cluster, bad task definition, access denied);
  ``LaunchError.reason`` holds AWS's own text so the run's message shows what AWS said.

Secrets never go in the overrides: the container's environment holds only the run config's
``env`` and the ``FLOWRELAY_*`` names the runner needs (plus ``AWS_REGION``). Secrets belong in
the task definition's ``secrets`` (Secrets Manager / SSM references), which a custom
``task_definition`` can carry.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import ValidationError

from flowrelay.control.store import FlowRun
from flowrelay.core.events import ECS_GROUP_PREFIX, EcsTaskStateChange, describe
from flowrelay.core.modeling import Model
from flowrelay.core.routing import EcsSettings, Target
from flowrelay.core.run_configs import ECSRun, UniversalRun, parse_run_config

#: The container flowrelay builds, and the one it looks for in a custom task definition.
CONTAINER_NAME = "flow"
RUNNER_COMMAND = ("flowrelay-runner",)
STARTED_BY = "flowrelay"
FAMILY_PREFIX = "flowrelay-"
LOG_STREAM_PREFIX = "flowrelay"
RUN_ID_TAG = "flowrelay:run-id"
FLOW_TAG = "flowrelay:flow"
ATTEMPT_TAG = "flowrelay:attempt"

_CLIENT_TOKEN_MAX = 64  # ECS's limit for RunTask's clientToken
_STOP_REASON_MAX = 255  # ECS's limit for StopTask's reason
_TAG_VALUE_MAX = 256
# ECS tag values allow letters, digits, spaces and + - = . _ : / @; anything else is replaced.
_TAG_UNSAFE = re.compile(r"[^\w\s+\-=.:/@]")
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
# ClientError codes that mean "not now" rather than "never".
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)
# RunTask ``failures`` reasons that are about capacity or a transient condition. Anything else
# (ATTRIBUTE, LOCATION, MISSING, ...) is a placement the request itself makes impossible.
_RETRYABLE_FAILURE = re.compile(
    r"^RESOURCE:|^AGENT$|capacity is unavailable|insufficient|throttl|rate exceeded|timeout"
    r"|timed out|try again|service unavailable|internal error",
    re.IGNORECASE,
)
_CAPACITY_MESSAGE = re.compile(r"capacity is unavailable", re.IGNORECASE)
_TASK_NOT_FOUND = re.compile(r"task (was )?not found|could not find task", re.IGNORECASE)
_VCPU = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*vcpu$", re.IGNORECASE)
_GB = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*gb$", re.IGNORECASE)


class LaunchError(Exception):
    """A run could not be launched.

    ``retryable``: whether the same launch may succeed later (throttling, capacity), so the
    dispatcher retries with backoff instead of failing the run. ``reason``: AWS's own text when
    AWS refused (verbatim, e.g. ``"Cluster not found."`` or ``"RESOURCE:MEMORY"``), otherwise
    flowrelay's explanation. ``code``: the AWS error code, or ``"RunTaskFailure"`` for an entry
    of RunTask's ``failures``, or None when flowrelay itself refused. ``outcome_unknown``:
    RunTask got no answer (connection lost, timeout, a server error), so the task may have
    started; the same attempt must be tried again, with the same token, looking for its task
    first (``launch(resume=True)``), rather than counted as failed.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        reason: str | None = None,
        code: str | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.reason = reason if reason is not None else message
        self.code = code
        self.outcome_unknown = outcome_unknown


class LaunchResult(Model):
    """Where a launched run is: what the dispatcher stores as the run's ``infrastructure``, what
    ``stop`` and the monitor need to find the task again, and where its logs are."""

    kind: Literal["ecs"] = "ecs"
    task_arn: str
    cluster: str
    task_definition_arn: str
    attempt: int
    container: str = CONTAINER_NAME
    log_group: str | None = None
    log_stream_prefix: str | None = None

    @property
    def log_stream(self) -> str | None:
        """The CloudWatch log stream of the flow container (awslogs names it
        ``<prefix>/<container>/<task id>``), when the task logs with awslogs."""
        if self.log_group is None or self.log_stream_prefix is None:
            return None
        task_id = self.task_arn.rsplit("/", 1)[-1]
        return f"{self.log_stream_prefix}/{self.container}/{task_id}"


class _Definition(Model):
    """A registered task definition, and what RunTask needs to know about it."""

    arn: str
    container: str
    log_group: str | None = None
    log_stream_prefix: str | None = None


class EcsLauncher:
    """Launches flow runs as ECS tasks and stops them.

    ``client`` is a boto3 ECS client (give it botocore's "standard" retry mode: it retries
    throttling within one call; ``LaunchError.retryable`` is for what is left after that).
    ``table_name``, ``bus_name`` and ``region`` are passed to the runner in its environment.
    ``s3_client`` reads ``task_definition_path`` values on S3; one is made when first needed.

    One launcher may be shared by threads (a batch of dispatches launches concurrently): the
    task definition cache is guarded so one family is described/registered once per process.

    >>> launcher = EcsLauncher(boto3.client("ecs"), table_name="t", bus_name="b")  # doctest: +SKIP
    >>> result = launcher.launch(run, target, attempt=1)                           # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        *,
        table_name: str,
        bus_name: str,
        region: str | None = None,
        s3_client: Any = None,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.bus_name = bus_name
        self.region: str | None = region or getattr(
            getattr(client, "meta", None), "region_name", None
        )
        self._s3_client = s3_client
        self._families: dict[str, str] = {}  # family -> task definition ARN
        self._described: dict[str, _Definition] = {}  # external task definition ARN -> facts
        self._lock = threading.Lock()
        self._family_locks: dict[str, threading.Lock] = {}

    # --- launching -----------------------------------------------------------------------------

    def launch(
        self, run: FlowRun, target: Target, *, attempt: int = 1, resume: bool = False
    ) -> LaunchResult:
        """Start one ECS task for ``run`` on ``target`` (attempt ``attempt`` of launching it).

        ``resume``: this attempt was begun before and may have started a task (its dispatcher
        died, or RunTask went unanswered). The task is looked for first (by ``startedBy``, then
        its group and attempt tag) and returned if found, so an attempt never starts two tasks
        even where ``clientToken`` is not honoured.

        Raises ``LaunchError``; see the module docstring for what is retryable.
        """
        if target.kind != "ecs":
            raise LaunchError(
                f"the ECS launcher cannot launch on {target.kind} target {target.name!r}",
                retryable=False,
            )
        if attempt < 1:
            raise LaunchError(f"attempt must be >= 1, got {attempt}", retryable=False)
        config = _ecs_run(run)
        settings: EcsSettings = target.typed_settings()
        extra = copy.deepcopy(config.run_task_kwargs or {})
        placement = _placement(settings, extra)
        definition = self._definition(config, settings, placement)
        computed = self._run_task_request(run, config, settings, definition, placement, attempt)
        request = merge_run_task_kwargs(computed, extra)
        _check_identity(request, computed, definition.container)
        if resume:
            found = self.find_task(request["cluster"], run.run_id, attempt, request["startedBy"])
            if found is not None:
                return self._result(found, request["cluster"], definition, attempt)
        try:
            response = self.client.run_task(**request)
        except ClientError as exc:
            error = _client_error("RunTask", exc)
            error.outcome_unknown = _status(exc) >= 500
            raise error from exc
        except BotoCoreError as exc:
            error = _botocore_error("RunTask", exc)
            error.outcome_unknown = error.retryable
            raise error from exc
        tasks = response.get("tasks") or []
        failures = response.get("failures") or []
        if not tasks:
            raise _failure_error(request["cluster"], failures)
        return self._result(tasks[0], request["cluster"], definition, attempt)

    @staticmethod
    def _result(
        task: Mapping[str, Any], cluster: str, definition: _Definition, attempt: int
    ) -> LaunchResult:
        return LaunchResult(
            task_arn=task["taskArn"],
            cluster=task.get("clusterArn") or cluster,
            task_definition_arn=task.get("taskDefinitionArn") or definition.arn,
            attempt=attempt,
            container=definition.container,
            log_group=definition.log_group,
            log_stream_prefix=definition.log_stream_prefix,
        )

    def find_unrecorded(
        self, run: FlowRun, attempt: int, targets: Iterable[Target]
    ) -> LaunchResult | None:
        """The task attempt ``attempt`` of ``run`` started without the run recording it (its
        dispatcher died between RunTask and writing the task down), looked for on the clusters
        of the ECS ``targets`` it could have been launched on; None when there is none."""
        override = (_ecs_run(run).run_task_kwargs or {}).get("cluster")
        clusters: dict[str, None] = {}
        for target in targets:
            if target.kind == "ecs":
                settings: EcsSettings = target.typed_settings()
                clusters[str(override or settings.cluster)] = None
        for cluster in clusters:
            task = self.find_task(cluster, run.run_id, attempt)
            if task is not None:
                return LaunchResult(
                    task_arn=task["taskArn"],
                    cluster=task.get("clusterArn") or cluster,
                    task_definition_arn=task.get("taskDefinitionArn") or "",
                    attempt=attempt,
                )
        return None

    def find_task(
        self, cluster: str, run_id: str, attempt: int, started_by: str = STARTED_BY
    ) -> dict[str, Any] | None:
        """The task attempt ``attempt`` of run ``run_id`` started, if any (running or stopped;
        ECS lists stopped tasks for about an hour)."""
        for desired in ("RUNNING", "STOPPED"):
            pages = self.client.get_paginator("list_tasks").paginate(
                cluster=cluster, startedBy=started_by, desiredStatus=desired
            )
            try:
                arns = [arn for page in pages for arn in page.get("taskArns", [])]
            except ClientError as exc:
                raise _client_error("ListTasks", exc) from exc
            except BotoCoreError as exc:
                raise _botocore_error("ListTasks", exc) from exc
            for start in range(0, len(arns), 100):
                described = self._call(
                    "DescribeTasks",
                    self.client.describe_tasks,
                    cluster=cluster,
                    tasks=arns[start : start + 100],
                    include=["TAGS"],
                )
                for task in described.get("tasks") or []:
                    tags = {tag.get("key"): tag.get("value") for tag in task.get("tags") or []}
                    if task.get("group") == ECS_GROUP_PREFIX + run_id and tags.get(
                        ATTEMPT_TAG
                    ) == str(attempt):
                        return dict(task)
        return None

    def describe_task(self, cluster: str, task_arn: str) -> dict[str, Any] | None:
        """The task as ECS describes it, or None when ECS no longer knows it (or its cluster)."""
        try:
            response = self.client.describe_tasks(cluster=cluster, tasks=[task_arn])
        except ClientError as exc:
            if _code(exc) == "ClusterNotFoundException":
                return None
            raise _client_error("DescribeTasks", exc) from exc
        except BotoCoreError as exc:
            raise _botocore_error("DescribeTasks", exc) from exc
        tasks = response.get("tasks") or []
        return dict(tasks[0]) if tasks else None

    def _run_task_request(
        self,
        run: FlowRun,
        config: ECSRun,
        settings: EcsSettings,
        definition: _Definition,
        placement: dict[str, Any],
        attempt: int,
    ) -> dict[str, Any]:
        """The RunTask arguments flowrelay computes, before ``run_task_kwargs`` are merged."""
        container_override: dict[str, Any] = {
            "name": definition.container,
            "environment": [
                {"name": name, "value": value}
                for name, value in self._environment(run, config, attempt).items()
            ],
        }
        overrides: dict[str, Any] = {"containerOverrides": [container_override]}
        if config.task_definition_arn is not None:
            # An external definition is not rebuilt, so the run's sizes and roles are applied the
            # one way ECS allows without registering: as task-level overrides.
            for key, value in (
                ("cpu", _cpu_units(config.cpu)),
                ("memory", _memory_mib(config.memory)),
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
            "group": ECS_GROUP_PREFIX + run.run_id,
            "startedBy": STARTED_BY,
            "tags": [
                {"key": RUN_ID_TAG, "value": _tag_value(run.run_id)},
                {"key": FLOW_TAG, "value": _tag_value(run.flow_name)},
                {"key": ATTEMPT_TAG, "value": str(attempt)},
            ],
        }
        if _network_mode(placement) == "awsvpc" and settings.subnets:
            vpc: dict[str, Any] = {
                "subnets": list(settings.subnets),
                "assignPublicIp": "ENABLED" if settings.assign_public_ip else "DISABLED",
            }
            if settings.security_groups:
                vpc["securityGroups"] = list(settings.security_groups)
            request["networkConfiguration"] = {"awsvpcConfiguration": vpc}
        return request

    def _environment(self, run: FlowRun, config: ECSRun, attempt: int) -> dict[str, str]:
        """The run's own ``env``, then what the runner needs (which wins on a clash: a run config
        must not be able to point the runner at another run or table)."""
        env = dict(config.env or {})
        if self.region:
            env["AWS_REGION"] = self.region
        env.update(
            {
                "FLOWRELAY_RUN_ID": run.run_id,
                "FLOWRELAY_TABLE_NAME": self.table_name,
                "FLOWRELAY_BUS_NAME": self.bus_name,
                "FLOWRELAY_ATTEMPT": str(attempt),
            }
        )
        return env

    # --- task definitions ----------------------------------------------------------------------

    def _definition(
        self, config: ECSRun, settings: EcsSettings, placement: dict[str, Any]
    ) -> _Definition:
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
            base = self._load_task_definition(config.task_definition_path)
        definition = build_task_definition(
            config, settings, placement=placement, base=base, region=self.region
        )
        arn = self._ensure_registered(definition)
        container = _flow_container(definition["containerDefinitions"])
        log_group, prefix = _awslogs(container)
        return _Definition(
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
                if _code(exc) != "ClientException":
                    raise _client_error("DescribeTaskDefinition", exc) from exc
            except BotoCoreError as exc:
                raise _botocore_error("DescribeTaskDefinition", exc) from exc
            if arn is None:
                registered = self._call(
                    "RegisterTaskDefinition", self.client.register_task_definition, **definition
                )
                arn = str(registered["taskDefinition"]["taskDefinitionArn"])
            self._families[family] = arn
            return arn

    def _describe_external(self, arn: str) -> _Definition:
        """Which container to override and where it logs, for a definition flowrelay did not
        build. A revisioned ARN never changes, so it is described once per launcher."""
        known = self._described.get(arn)
        if known is not None:
            return known
        described = self._call(
            "DescribeTaskDefinition", self.client.describe_task_definition, taskDefinition=arn
        )["taskDefinition"]
        containers = described.get("containerDefinitions") or []
        if not containers:
            raise LaunchError(
                f"task definition {arn} has no containers", retryable=False, code=None
            )
        container = _flow_container(containers)
        log_group, prefix = _awslogs(container)
        result = _Definition(
            arn=described.get("taskDefinitionArn", arn),
            container=container["name"],
            log_group=log_group,
            log_stream_prefix=prefix,
        )
        if re.search(r":\d+$", arn):
            self._described[arn] = result
        return result

    def _load_task_definition(self, path: str) -> dict[str, Any]:
        """A task definition from YAML or JSON text at a local path, ``s3://bucket/key`` or an
        ``http(s)://`` URL. Read on every launch: the file may change, the family hash follows."""
        import yaml

        if path.startswith("s3://"):
            text = self._read_s3(path)
        elif path.startswith(("https://", "http://")):
            text = _read_url(path)
        else:
            local = Path(path.removeprefix("file://")).expanduser()
            try:
                text = local.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise LaunchError(
                    f"cannot read task_definition_path {path!r}: {exc}", retryable=False
                ) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise LaunchError(
                f"task_definition_path {path!r} is not valid YAML or JSON: {exc}", retryable=False
            ) from exc
        if not isinstance(loaded, dict):
            raise LaunchError(
                f"task_definition_path {path!r} must hold a mapping (a task definition), "
                f"not {type(loaded).__name__}",
                retryable=False,
            )
        return loaded

    def _read_s3(self, path: str) -> str:
        bucket, _, key = path.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise LaunchError(
                f"task_definition_path {path!r} is not s3://BUCKET/KEY", retryable=False
            )
        with self._lock:
            if self._s3_client is None:
                import boto3

                make: Any = boto3.client
                self._s3_client = make("s3", region_name=self.region)
        response = self._call(
            f"GetObject {path}", self._s3_client.get_object, Bucket=bucket, Key=key
        )
        body: bytes = response["Body"].read()
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LaunchError(f"{path} is not UTF-8 text: {exc}", retryable=False) from exc

    # --- stopping ------------------------------------------------------------------------------

    def stop(self, cluster: str, task_arn: str, reason: str) -> None:
        """Stop a task. A task that is already stopped, being stopped, or unknown is not an
        error: cancelling is idempotent, and the monitor may ask twice.

        The task is described first and StopTask is sent only for a task that is still meant
        to run. Besides saving a call, this avoids asking ECS to stop a task it does not know:
        AWS answers that with InvalidParameterException, while moto (the dev stack) fails with
        an HTTP 500 that botocore would first retry with backoff. A 5xx from StopTask is still
        handled: the task is described again and, if it is gone or stopped, all is well.
        Other failures raise ``LaunchError`` (retryable for throttling and server errors).
        """
        if self._stopped_or_unknown(cluster, task_arn):
            return
        try:
            self.client.stop_task(cluster=cluster, task=task_arn, reason=reason[:_STOP_REASON_MAX])
        except ClientError as exc:
            if _code(exc) == "ClusterNotFoundException" or (
                _code(exc) == "InvalidParameterException" and _TASK_NOT_FOUND.search(_message(exc))
            ):
                return
            if _status(exc) >= 500 and self._stopped_or_unknown(cluster, task_arn):
                return
            raise _client_error("StopTask", exc) from exc
        except BotoCoreError as exc:
            raise _botocore_error("StopTask", exc) from exc

    def stop_launched(self, infrastructure: Mapping[str, Any], reason: str) -> None:
        """Stop the task a launch recorded (``LaunchResult`` as stored on the run)."""
        launched = LaunchResult.model_validate(infrastructure)
        self.stop(launched.cluster, launched.task_arn, reason)

    def status(self, infrastructure: Mapping[str, Any]) -> EcsTaskStateChange | None:
        """The recorded task as ECS describes it now, in the shape of its state-change events
        (so the monitor reads it exactly as ``record_state`` reads events); None when ECS no
        longer knows the task."""
        launched = LaunchResult.model_validate(infrastructure)
        task = self.describe_task(launched.cluster, launched.task_arn)
        if task is None:
            return None
        return EcsTaskStateChange.model_validate({"version": 0, **task})

    def _stopped_or_unknown(self, cluster: str, task_arn: str) -> bool:
        # AWS lists an unknown (or long-gone) task under failures with reason MISSING; moto
        # returns neither a task nor a failure: both are None here.
        task = self.describe_task(cluster, task_arn)
        if task is None:
            return True
        return "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus"))

    # --- calls ---------------------------------------------------------------------------------

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as exc:
            raise _client_error(operation, exc) from exc
        except BotoCoreError as exc:
            raise _botocore_error(operation, exc) from exc


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
    placement = placement if placement is not None else _placement(settings, {})
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
    container = _flow_container(containers)
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

    cpu = _cpu_units(config.cpu or definition.get("cpu") or settings.cpu)
    memory = _memory_mib(config.memory or definition.get("memory") or settings.memory)
    definition["cpu"] = cpu
    definition["memory"] = memory
    for key, run_value, target_value in (
        ("taskRoleArn", config.task_role_arn, settings.task_role_arn),
        ("executionRoleArn", config.execution_role_arn, settings.execution_role_arn),
    ):
        value = run_value or definition.get(key) or target_value
        if value:
            definition[key] = value
    definition.setdefault("networkMode", _network_mode(placement))
    definition.setdefault("requiresCompatibilities", _compatibilities(placement))
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


def client_token(run_id: str, attempt: int) -> str:
    """RunTask's idempotency token for one attempt of one run: ``<run id>-<attempt>``, or, when
    that is longer than ECS's 64 characters, its first 47 characters, a dash and 16 hex digits
    of its sha256 (the same input always gives the same token, different inputs differ).

    >>> client_token("r-1", 2)
    'r-1-2'
    """
    token = f"{run_id}-{attempt}"
    if len(token) <= _CLIENT_TOKEN_MAX:
        return token
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return f"{token[: _CLIENT_TOKEN_MAX - 17]}-{digest}"


# --- merging run_task_kwargs ------------------------------------------------------------------

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


def _check_identity(
    request: Mapping[str, Any], computed: Mapping[str, Any], container: str
) -> None:
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
                    if isinstance(item, dict) and str(item.get("name", "")).startswith("FLOWRELAY_")
                }
        return {}

    if runner_env(request) != runner_env(computed):
        raise LaunchError(
            "run_task_kwargs may not change the FLOWRELAY_* environment variables of the "
            f"{container!r} container: the runner needs them to report on this run",
            retryable=False,
        )


# --- helpers ----------------------------------------------------------------------------------


def _ecs_run(run: FlowRun) -> ECSRun:
    """The run's config as an ECSRun; none (or a UniversalRun) means the target's defaults."""
    if run.run_config is None:
        return ECSRun()
    try:
        config = parse_run_config(run.run_config)
    except ValidationError as exc:
        raise LaunchError(
            f"run {run.run_id} has an invalid run config: {describe(exc, 'run_config')}",
            retryable=False,
        ) from exc
    if isinstance(config, ECSRun):
        return config
    if isinstance(config, UniversalRun):
        return ECSRun(env=config.env, labels=config.labels)
    raise LaunchError(f"a {config.type} cannot run on an ecs target", retryable=False)


def _placement(settings: EcsSettings, extra: Mapping[str, Any]) -> dict[str, Any]:
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
    if settings.platform_version and "FARGATE" in _compatibilities(placement):
        placement["platformVersion"] = settings.platform_version
    return placement


def _compatibilities(placement: Mapping[str, Any]) -> list[str]:
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


def _network_mode(placement: Mapping[str, Any]) -> str:
    # External (ECS Anywhere) instances do not support awsvpc.
    return "bridge" if placement.get("launchType") == "EXTERNAL" else "awsvpc"


def _flow_container(containers: list[dict[str, Any]]) -> dict[str, Any]:
    for container in containers:
        if container.get("name") == CONTAINER_NAME:
            return container
    return containers[0]


def _awslogs(container: Mapping[str, Any]) -> tuple[str | None, str | None]:
    logging = container.get("logConfiguration") or {}
    if logging.get("logDriver") != "awslogs":
        return None, None
    options = logging.get("options") or {}
    return options.get("awslogs-group"), options.get("awslogs-stream-prefix")


def _cpu_units(value: Any) -> str | None:
    """ECS CPU units as a string: "1 vcpu" -> "1024"; numbers pass through."""
    if value is None:
        return None
    text = str(value).strip()
    match = _VCPU.match(text)
    if match:
        return str(round(float(match.group(1)) * 1024))
    return str(int(float(text))) if _is_number(text) else text


def _memory_mib(value: Any) -> str | None:
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


def _tag_value(value: str) -> str:
    return _TAG_UNSAFE.sub("_", value)[:_TAG_VALUE_MAX]


def _read_url(url: str) -> str:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        raise LaunchError(
            f"cannot read task_definition_path {url}: HTTP {exc.code} {exc.reason}",
            retryable=exc.code >= 500 or exc.code == 429,
        ) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise LaunchError(f"cannot read task_definition_path {url}: {exc}", retryable=True) from exc
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LaunchError(f"{url} is not UTF-8 text: {exc}", retryable=False) from exc


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "") or exc)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _client_error(operation: str, exc: ClientError) -> LaunchError:
    """An AWS refusal as a LaunchError carrying AWS's message verbatim."""
    code, message, status = _code(exc), _message(exc), _status(exc)
    retryable = code in _RETRYABLE_CODES or status >= 500 or bool(_CAPACITY_MESSAGE.search(message))
    if status >= 500 and message.lstrip().startswith("<"):
        message = f"HTTP {status} from the ECS endpoint"  # an HTML error page, not AWS's words
    return LaunchError(
        f"{operation} failed: {code or status}: {message}",
        retryable=retryable,
        reason=message,
        code=code or None,
    )


def _botocore_error(operation: str, exc: Exception) -> LaunchError:
    """Errors raised before or instead of an AWS answer: connection trouble may pass, bad
    parameters (``ParamValidationError``, e.g. a misspelt run_task_kwargs key) will not."""
    retryable = isinstance(exc, (BotoConnectionError, HTTPClientError))
    return LaunchError(f"{operation} failed: {exc}", retryable=retryable, reason=str(exc))


def _failure_error(cluster: str, failures: list[dict[str, Any]]) -> LaunchError:
    """RunTask answered but started no task: its ``failures`` say why."""
    if not failures:
        return LaunchError(
            f"RunTask on cluster {cluster!r} started no task and gave no reason",
            retryable=True,
            reason="RunTask started no task",
        )
    failure = failures[0]
    reason = str(failure.get("reason") or "unknown")
    detail = failure.get("detail")
    text = f"{reason} ({detail})" if detail else reason
    return LaunchError(
        f"RunTask on cluster {cluster!r} started no task: {text}",
        retryable=bool(_RETRYABLE_FAILURE.search(reason)),
        reason=reason,
        code="RunTaskFailure",
    )


__all__ = [
    "ATTEMPT_TAG",
    "CONTAINER_NAME",
    "FAMILY_PREFIX",
    "STARTED_BY",
    "EcsLauncher",
    "LaunchError",
    "LaunchResult",
    "build_task_definition",
    "client_token",
    "merge_run_task_kwargs",
    "task_definition_family",
]
