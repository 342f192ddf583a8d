"""ECS's answers as ``LaunchError``s: which refusals may pass (throttling, capacity, server
errors) and which will not (bad parameters, unknown cluster, access denied), with AWS's own
words kept for the run's message."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from flowrelay.aws.clients import answer_text
from flowrelay.launchers.base import LaunchError

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
TASK_NOT_FOUND = re.compile(r"task (was )?not found|could not find task", re.IGNORECASE)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "") or exc)


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def client_error(operation: str, exc: ClientError) -> LaunchError:
    """An AWS refusal as a LaunchError carrying AWS's message verbatim."""
    code, message, status = error_code(exc), error_message(exc), http_status(exc)
    retryable = code in _RETRYABLE_CODES or status >= 500 or bool(_CAPACITY_MESSAGE.search(message))
    if status >= 500:
        message = answer_text(message)
        answer = f"HTTP {status}" + (f" {code}" if code.isalpha() else "")
        text = f"{operation} answered {answer}: {message}"
    else:
        text = f"{operation} failed: {code or status}: {message}"
    return LaunchError(
        text,
        retryable=retryable,
        reason=message,
        code=code or None,
    )


def botocore_error(operation: str, exc: Exception) -> LaunchError:
    """Errors raised before or instead of an AWS answer: connection trouble may pass, bad
    parameters (``ParamValidationError``, e.g. a misspelt run_task_kwargs key) will not."""
    retryable = isinstance(exc, (BotoConnectionError, HTTPClientError))
    return LaunchError(f"{operation} failed: {exc}", retryable=retryable, reason=str(exc))


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


def call(operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    """``method(**kwargs)``, its errors as ``LaunchError`` named after ``operation``."""
    try:
        return method(**kwargs)
    except ClientError as exc:
        raise client_error(operation, exc) from exc
    except BotoCoreError as exc:
        raise botocore_error(operation, exc) from exc
