"""A run's log lines, wherever its launcher left them: a CloudWatch Logs stream (ECS), a local
file (local targets, the dev stack), or its pod (Kubernetes, while the pod exists).
``flowrelay runs logs`` and the web UI's log tail both read them here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flowrelay.aws.logs import log_location, read_all
from flowrelay.core.runs import FlowRun
from flowrelay.operations import NotFoundError


@dataclass(frozen=True)
class LogLine:
    """One line of a run's log, with the time its source gives it (CloudWatch does; a file
    and a pod's log do not)."""

    message: str
    timestamp: datetime | None = None


@dataclass
class RunLog:
    """Where a run's log is (``where``: ``log_group`` and ``log_stream``, ``log_file`` or
    ``job``) and its lines, read as they are iterated (a long stream is never held whole).
    Reading raises NotFoundError when the log is not there (yet)."""

    run_id: str
    where: dict[str, str]
    lines: Iterator[LogLine] = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        """The log as ``runs logs --json`` prints it (reads every line)."""
        return {
            "run_id": self.run_id,
            **self.where,
            "events": [
                {
                    "timestamp": line.timestamp.isoformat() if line.timestamp else None,
                    "message": line.message,
                }
                for line in self.lines
            ],
        }


def read_log(
    run: FlowRun,
    last: int | None = None,
    *,
    logs_client: Callable[[], Any],
    kubernetes: Callable[[], Any],
) -> RunLog:
    """The log of ``run``, oldest line first, or only its ``last`` lines. ``logs_client``
    makes a CloudWatch Logs client and ``kubernetes`` the Kubernetes launcher; each is called
    only for a run that logs there.

    >>> log = read_log(run, 50, logs_client=..., kubernetes=...)  # doctest: +SKIP
    >>> [line.message for line in log.lines]                      # doctest: +SKIP
    """
    run_id = run.run_id
    if run.infrastructure.get("kind") == "kubernetes":
        job = f"{run.infrastructure.get('namespace')}/{run.infrastructure.get('job_name')}"
        text = read_pod_log(run, kubernetes, last)
        if text is None:
            raise NotFoundError(
                f"run {run_id} has no pod left to read a log from (Job {job}: deleted, or its "
                "pod not created yet)"
            )
        return RunLog(run_id, {"job": job}, (LogLine(line) for line in text.splitlines()))
    location = log_location(run.infrastructure)
    log_file = run.infrastructure.get("log_file")
    if location is None and isinstance(log_file, str):
        try:
            lines = Path(log_file).read_text(errors="replace").splitlines()
        except OSError as exc:
            raise NotFoundError(
                f"run {run_id} logs to {log_file}, which cannot be read here: {exc.strerror}"
            ) from None
        if last is not None:
            lines = lines[-last:]
        return RunLog(run_id, {"log_file": log_file}, (LogLine(line) for line in lines))
    if location is None:
        if not run.infrastructure:
            raise NotFoundError(
                f"run {run_id} has no log location yet: it has not been launched "
                f"(state {run.state})"
            )
        raise NotFoundError(
            f"run {run_id} has no log location: its task does not log to CloudWatch Logs "
            f"(no awslogs log configuration with a stream prefix)"
        )
    client = logs_client()

    def events() -> Iterator[LogLine]:
        from botocore.exceptions import ClientError

        try:
            if last is not None:
                # Read from the end and stop once there are enough: a long run's stream may
                # hold far more than anyone asks to see.
                tail: list[LogLine] = []
                for event in read_all(client, location, start_from_head=False, page_size=last):
                    tail.append(LogLine(event.message, event.timestamp))
                    if len(tail) == last:
                        break
                yield from reversed(tail)
                return
            for event in read_all(client, location):
                yield LogLine(event.message, event.timestamp)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            hint = (
                "its task may not have written any yet"
                if run.state.is_active
                else "its task never wrote any, or they expired"
            )
            raise NotFoundError(
                f"run {run_id} has no logs yet: log stream {location.stream!r} in group "
                f"{location.group!r} does not exist ({hint})"
            ) from None

    return RunLog(run_id, {"log_group": location.group, "log_stream": location.stream}, events())


def read_pod_log(
    run: FlowRun, kubernetes: Callable[[], Any], last: int | None = None
) -> str | None:
    """The log of a Kubernetes run's pod, read from the API server (None when no pod is
    left); NotFoundError when the API server cannot be asked."""
    from flowrelay.launchers.base import LaunchError

    try:
        text: str | None = kubernetes().read_log(run.infrastructure, last)
    except LaunchError as exc:
        raise NotFoundError(f"run {run.run_id}: cannot read its pod's log: {exc}") from None
    return text
