"""The Kubernetes API's answers as ``LaunchError``s, classified as ECS's are: throttling (429),
server errors (5xx) and lost connections may pass; everything else (a 422 for an invalid Job, a
403 for a missing permission, a 404 for a missing namespace) will not, and the API server's own
message goes on the run. A create that got no answer may have happened: it is
``outcome_unknown``, and the next try looks the Job up before creating it.

>>> body = '{"kind": "Status", "reason": "Invalid", "message": "Job.batch fr-x-1 is invalid"}'
>>> api_error("create Job fr-x-1", 422, body).reason
'Job.batch fr-x-1 is invalid'
"""

from __future__ import annotations

import json
from typing import Any

from flowrelay.aws.clients import answer_text
from flowrelay.launchers.base import LaunchError

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def status_message(body: Any) -> tuple[str, str | None]:
    """The message and reason of an API ``Status`` body (the text itself when it is not one)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = str(body or "").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return answer_text(text), None
    if isinstance(parsed, dict) and parsed.get("message"):
        reason = parsed.get("reason")
        return str(parsed["message"]), str(reason) if reason else None
    return answer_text(text), None


def api_error(operation: str, status: int, body: Any, *, creates: bool = False) -> LaunchError:
    """An answer of HTTP ``status`` (with the API server's ``body``) to ``operation``.
    ``creates``: the call creates something, so a server error leaves its outcome unknown."""
    message, reason = status_message(body)
    retryable = status in _RETRYABLE_STATUS
    if status == 401:
        text = f"{operation}: the API server did not accept flowrelay's credentials ({message})"
    elif status == 403:
        text = f"{operation}: forbidden: {message}"
    else:
        text = f"{operation} failed: HTTP {status}" + (f" {reason}" if reason else "")
        text += f": {message}"
    return LaunchError(
        text,
        retryable=retryable,
        reason=message,
        code=reason or str(status),
        outcome_unknown=creates and status >= 500,
        throttled=status == 429,
    )


def connection_error(operation: str, exc: BaseException, *, creates: bool = False) -> LaunchError:
    """No answer at all (refused, reset, timed out): may pass; a create's outcome is unknown."""
    return LaunchError(
        f"{operation}: no answer from the API server: {exc}",
        retryable=True,
        reason=str(exc),
        outcome_unknown=creates,
    )
