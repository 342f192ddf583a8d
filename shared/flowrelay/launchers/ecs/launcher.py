"""The ECS/Fargate launcher: one flow run becomes one ECS task running ``flowrelay-runner``.

What a launch does, and why:

- **Settings.** The run's ``ECSRun`` fields are merged over the target's ``EcsSettings``; a run
  with no run config (or a ``UniversalRun``) gets the target's defaults. A run is specific, a
  target is general, so the run wins.
- **Task definitions are content-addressed** (``flowrelay.launchers.ecs.task_definitions``):
  registered once per distinct content, reused by every later run.
- **RunTask is idempotent per attempt.** ``clientToken`` is ``<run id>-<attempt>``, so a
  redelivered dispatch message that repeats the same attempt cannot start a second task on AWS.
  ``group`` is ``flowrelay:<run id>``: that is how "ECS Task State Change" events are matched back
  to the run (``flowrelay.launchers.ecs.names``).
- **Errors say whether to try again** (``flowrelay.launchers.ecs.errors``): throttling, server
  errors and capacity shortages are retryable; everything that will fail the same way next time
  (bad parameters, unknown cluster, bad task definition, access denied) is not, and AWS's own
  words go on the run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import model_validator

from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import InfraStatus, Launched, LaunchError, Swept
from flowrelay.launchers.ecs.errors import (
    TASK_NOT_FOUND,
    botocore_error,
    call,
    client_error,
    error_code,
    error_message,
    failure_error,
    http_status,
)
from flowrelay.launchers.ecs.names import (
    ATTEMPT_TAG,
    CONTAINER_NAME,
    STARTED_BY,
    arn_region,
    group_of,
    log_stream,
)
from flowrelay.launchers.ecs.run_task import (
    check_identity,
    ecs_run,
    merge_run_task_kwargs,
    run_task_request,
)
from flowrelay.launchers.ecs.settings import EcsSettings
from flowrelay.launchers.ecs.status import EcsTaskStateChange, gone_status, task_status
from flowrelay.launchers.ecs.task_definitions import Definition, TaskDefinitions, placement_of
from flowrelay.launchers.kinds import typed_settings

_STOP_REASON_MAX = 255  # ECS's limit for StopTask's reason


class LaunchResult(Launched):
    """Where a launched run is: what the dispatcher stores as the run's ``infrastructure``, what
    ``stop`` and the monitor need to find the task again, and where its logs are (awslogs
    names the stream ``<prefix>/<container>/<task id>``)."""

    kind: Literal["ecs"] = "ecs"
    ref: str = ""
    task_arn: str
    cluster: str
    task_definition_arn: str
    container: str = CONTAINER_NAME
    log_stream_prefix: str | None = None

    @model_validator(mode="after")
    def _derived(self) -> LaunchResult:
        self.ref = self.ref or self.task_arn
        if self.log_stream is None and self.log_group and self.log_stream_prefix:
            self.log_stream = log_stream(self.log_stream_prefix, self.container, self.task_arn)
        if self.log_stream is not None and self.log_region is None:
            self.log_region = arn_region(self.task_arn)
        return self

    @property
    def label(self) -> str:
        return f"task {self.task_arn}"


class EcsLauncher:
    """Launches flow runs as ECS tasks, finds them again, describes and stops them (the
    ``flowrelay.launchers.base.Launcher`` contract).

    ``client`` is a boto3 ECS client (give it botocore's "standard" retry mode: it retries
    throttling within one call; ``LaunchError.retryable`` is for what is left after that).
    ``table_name``, ``bus_name`` and ``region`` are passed to the runner in its environment.
    ``s3_client`` reads ``task_definition_path`` values on S3; one is made when first needed.
    One launcher may be shared by threads (a batch of dispatches launches concurrently).

    >>> launcher = EcsLauncher(boto3.client("ecs"), table_name="t", bus_name="b")  # doctest: +SKIP
    >>> result = launcher.launch(run, target, attempt=1)                           # doctest: +SKIP
    """

    kind = "ecs"
    reports_events = True

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
        self.definitions = TaskDefinitions(client, region=self.region, s3_client=s3_client)

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
        config = ecs_run(run)
        settings = self.settings(target)
        extra = copy.deepcopy(config.run_task_kwargs or {})
        placement = placement_of(settings, extra)
        definition = self.definitions.for_run(config, settings, placement)
        computed = run_task_request(
            run,
            config,
            settings,
            definition,
            placement,
            attempt,
            table_name=self.table_name,
            bus_name=self.bus_name,
            region=self.region,
        )
        request = merge_run_task_kwargs(computed, extra)
        check_identity(request, computed, definition.container)
        if resume:
            found = self.find_task(request["cluster"], run.run_id, attempt, request["startedBy"])
            if found is not None:
                return self._result(found, request["cluster"], definition, attempt)
        try:
            response = self.client.run_task(**request)
        except ClientError as exc:
            error = client_error("RunTask", exc)
            error.outcome_unknown = http_status(exc) >= 500
            raise error from exc
        except BotoCoreError as exc:
            error = botocore_error("RunTask", exc)
            error.outcome_unknown = error.retryable
            raise error from exc
        tasks = response.get("tasks") or []
        failures = response.get("failures") or []
        if not tasks:
            raise failure_error(request["cluster"], failures)
        return self._result(tasks[0], request["cluster"], definition, attempt)

    @staticmethod
    def settings(target: Target) -> EcsSettings:
        """The target's settings as an ECS target's; ``LaunchError`` when they do not fit."""
        try:
            return typed_settings(target, EcsSettings)
        except ValueError as exc:
            raise LaunchError(str(exc), retryable=False) from None

    @staticmethod
    def _result(
        task: Mapping[str, Any], cluster: str, definition: Definition, attempt: int
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
        override = (ecs_run(run).run_task_kwargs or {}).get("cluster")
        clusters: dict[str, None] = {}
        for target in targets:
            if target.kind == "ecs":
                clusters[str(override or self.settings(target).cluster)] = None
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
                raise client_error("ListTasks", exc) from exc
            except BotoCoreError as exc:
                raise botocore_error("ListTasks", exc) from exc
            for start in range(0, len(arns), 100):
                described = call(
                    "DescribeTasks",
                    self.client.describe_tasks,
                    cluster=cluster,
                    tasks=arns[start : start + 100],
                    include=["TAGS"],
                )
                for task in described.get("tasks") or []:
                    tags = {tag.get("key"): tag.get("value") for tag in task.get("tags") or []}
                    if task.get("group") == group_of(run_id) and tags.get(ATTEMPT_TAG) == str(
                        attempt
                    ):
                        return dict(task)
        return None

    def describe_task(self, cluster: str, task_arn: str) -> dict[str, Any] | None:
        """The task as ECS describes it, or None when ECS no longer knows it (or its cluster)."""
        try:
            response = self.client.describe_tasks(cluster=cluster, tasks=[task_arn])
        except ClientError as exc:
            if error_code(exc) == "ClusterNotFoundException":
                return None
            raise client_error("DescribeTasks", exc) from exc
        except BotoCoreError as exc:
            raise botocore_error("DescribeTasks", exc) from exc
        tasks = response.get("tasks") or []
        return dict(tasks[0]) if tasks else None

    # --- stopping and describing ---------------------------------------------------------------

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
            if error_code(exc) == "ClusterNotFoundException" or (
                error_code(exc) == "InvalidParameterException"
                and TASK_NOT_FOUND.search(error_message(exc))
            ):
                return
            if http_status(exc) >= 500 and self._stopped_or_unknown(cluster, task_arn):
                return
            raise client_error("StopTask", exc) from exc
        except BotoCoreError as exc:
            raise botocore_error("StopTask", exc) from exc

    def stop_launched(self, infrastructure: Mapping[str, Any], reason: str) -> None:
        """Stop the task a launch recorded (``LaunchResult`` as stored on the run)."""
        launched = LaunchResult.model_validate(infrastructure)
        self.stop(launched.cluster, launched.task_arn, reason)

    def status(self, infrastructure: Mapping[str, Any]) -> InfraStatus:
        """The recorded task as ECS describes it now, read as its state-change events are (so
        the monitor and ``record_state`` agree); ``phase="gone"`` when ECS no longer knows it."""
        launched = LaunchResult.model_validate(infrastructure)
        task = self.describe_task(launched.cluster, launched.task_arn)
        if task is None:
            return gone_status(launched.task_arn)
        return task_status(EcsTaskStateChange.model_validate({"version": 0, **task}))

    def sweep_cluster(self, run: FlowRun, cluster: ClusterSweep) -> Swept:
        """Stop the tasks and deregister the task definitions of a run's Dask cluster, on the
        ECS cluster its launch recorded (``flowrelay.launchers.ecs.dask_clusters``)."""
        from flowrelay.launchers.ecs.dask_clusters import sweep

        launched = LaunchResult.model_validate(run.infrastructure)
        return sweep(self.client, launched.cluster, cluster.name, run.run_id)

    def _stopped_or_unknown(self, cluster: str, task_arn: str) -> bool:
        # AWS lists an unknown (or long-gone) task under failures with reason MISSING; moto
        # returns neither a task nor a failure: both are None here.
        task = self.describe_task(cluster, task_arn)
        if task is None:
            return True
        return "STOPPED" in (task.get("lastStatus"), task.get("desiredStatus"))
