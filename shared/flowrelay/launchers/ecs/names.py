"""How flowrelay names and marks what it starts on ECS, and how it finds a run from a task.

Every task of a run carries ``group = "flowrelay:<run id>"`` (what "ECS Task State Change" events
are matched back to their run by: the state rule selects that prefix), ``startedBy`` and three
tags (run id, flow, attempt); RunTask's ``clientToken`` is one per attempt.

>>> run_id_of_group(group_of("r-1"))
'r-1'
>>> run_id_of_group("service:web") is None
True
>>> client_token("r-1", 2)
'r-1-2'
"""

from __future__ import annotations

import hashlib
import re

#: The container flowrelay builds, and the one it looks for in a custom task definition.
CONTAINER_NAME = "flow"
STARTED_BY = "flowrelay"
FAMILY_PREFIX = "flowrelay-"
LOG_STREAM_PREFIX = "flowrelay"
GROUP_PREFIX = "flowrelay:"
RUN_ID_TAG = "flowrelay:run-id"
FLOW_TAG = "flowrelay:flow"
ATTEMPT_TAG = "flowrelay:attempt"

_CLIENT_TOKEN_MAX = 64  # ECS's limit for RunTask's clientToken
_TAG_VALUE_MAX = 256
# ECS tag values allow letters, digits, spaces and + - = . _ : / @; anything else is replaced.
_TAG_UNSAFE = re.compile(r"[^\w\s+\-=.:/@]")


def group_of(run_id: str) -> str:
    """The ECS task group of a run's tasks."""
    return GROUP_PREFIX + run_id


def run_id_of_group(group: str | None) -> str | None:
    """The run whose task has this group; None for a task flowrelay did not start."""
    if group and group.startswith(GROUP_PREFIX):
        return group[len(GROUP_PREFIX) :] or None
    return None


def client_token(run_id: str, attempt: int) -> str:
    """RunTask's idempotency token for one attempt of one run: ``<run id>-<attempt>``, or, when
    that is longer than ECS's 64 characters, its first 47 characters, a dash and 16 hex digits
    of its sha256 (the same input always gives the same token, different inputs differ)."""
    token = f"{run_id}-{attempt}"
    if len(token) <= _CLIENT_TOKEN_MAX:
        return token
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
    return f"{token[: _CLIENT_TOKEN_MAX - 17]}-{digest}"


def tag_value(value: str) -> str:
    """``value`` as an ECS tag value can hold it."""
    return _TAG_UNSAFE.sub("_", value)[:_TAG_VALUE_MAX]


def log_stream(prefix: str, container: str, task_arn: str) -> str:
    """The CloudWatch log stream awslogs writes a container's output to:
    ``<prefix>/<container>/<task id>``."""
    return f"{prefix}/{container}/{task_arn.rsplit('/', 1)[-1]}"


def arn_region(arn: str | None) -> str | None:
    """The region of an ARN (``arn:partition:service:region:account:resource``)."""
    if not arn or not arn.startswith("arn:"):
        return None
    parts = arn.split(":", 5)
    if len(parts) < 6 or not parts[3]:
        return None
    return parts[3]
