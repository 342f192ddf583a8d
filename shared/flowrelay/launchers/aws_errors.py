"""AWS's answers as ``LaunchError``s, for every launcher that calls AWS (ECS, EKS, S3): which
refusals may pass (throttling, server errors) and which will not (bad parameters, access
denied), with AWS's own words kept for the run's message."""

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
# The codes of a refusal for the caller's request rate.
THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
    }
)
_CAPACITY_MESSAGE = re.compile(r"capacity is unavailable", re.IGNORECASE)


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
        throttled=code in THROTTLING_CODES,
    )


def botocore_error(operation: str, exc: Exception) -> LaunchError:
    """Errors raised before or instead of an AWS answer: connection trouble may pass, bad
    parameters (``ParamValidationError``, e.g. a misspelt run_task_kwargs key) will not."""
    retryable = isinstance(exc, (BotoConnectionError, HTTPClientError))
    return LaunchError(f"{operation} failed: {exc}", retryable=retryable, reason=str(exc))


def call(operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
    """``method(**kwargs)``, its errors as ``LaunchError`` named after ``operation``."""
    try:
        return method(**kwargs)
    except ClientError as exc:
        raise client_error(operation, exc) from exc
    except BotoCoreError as exc:
        raise botocore_error(operation, exc) from exc
