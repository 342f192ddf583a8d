"""ECS's own answers as ``LaunchError``s: RunTask's ``failures`` (capacity may pass, a placement
the request makes impossible will not); AWS errors in general are read by
``flowrelay.launchers.aws_errors`` (re-exported here)."""

from __future__ import annotations

import re
from typing import Any

from flowrelay.launchers.aws_errors import (
    botocore_error,
    call,
    client_error,
    error_code,
    error_message,
    http_status,
)
from flowrelay.launchers.base import LaunchError

# RunTask ``failures`` reasons that are about capacity or a transient condition. Anything else
# (ATTRIBUTE, LOCATION, MISSING, ...) is a placement the request itself makes impossible.
_RETRYABLE_FAILURE = re.compile(
    r"^RESOURCE:|^AGENT$|capacity is unavailable|insufficient|throttl|rate exceeded|timeout"
    r"|timed out|try again|service unavailable|internal error",
    re.IGNORECASE,
)
TASK_NOT_FOUND = re.compile(r"task (was )?not found|could not find task", re.IGNORECASE)


def failure_error(cluster: str, failures: list[dict[str, Any]]) -> LaunchError:
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
    "TASK_NOT_FOUND",
    "botocore_error",
    "call",
    "client_error",
    "error_code",
    "error_message",
    "failure_error",
    "http_status",
]
