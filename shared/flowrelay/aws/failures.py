"""What went wrong talking to AWS, in one line, with the exit code the CLI gives it: what the
CLI prints for such a failure and the web UI shows, so no user ever sees a botocore traceback
for a wrong name, endpoint or credentials."""

from __future__ import annotations

from typing import NamedTuple

from flowrelay.aws.bus import PublishError
from flowrelay.aws.clients import answer_text


class Failure(NamedTuple):
    """One line that says what failed, and the CLI's exit code for it (2: configuration, 1:
    the call failed)."""

    message: str
    code: int


def aws_failure(exc: BaseException) -> Failure | None:
    """How to tell ``exc`` to a user, when it is one of AWS's (or botocore's) failures; None
    for anything else.

    >>> from botocore.exceptions import NoRegionError
    >>> aws_failure(NoRegionError())
    Failure(message='AWS is not configured: You must specify a region.', code=2)
    """
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return Failure(f"AWS is not configured: {exc}", 2)
    if isinstance(exc, EndpointConnectionError):
        return Failure(f"cannot reach AWS: {exc}", 1)
    if isinstance(exc, PublishError):
        return Failure(str(exc), 1)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Error"), error.get("Message", str(exc))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if answer_text(message) != message:
            return Failure(
                f"{exc.operation_name}: AWS answered HTTP {status} with an error page, not an "
                f"AWS error (is the region or AWS_ENDPOINT_URL right?)",
                1,
            )
        if code == "ResourceNotFoundException":
            return Failure(
                f"{message} (is FLOWRELAY_TABLE_NAME / FLOWRELAY_BUS_NAME or the stack right?)", 2
            )
        return Failure(f"{exc.operation_name}: {code}: {message}", 1)
    return None
