"""AWS clients and the names of flowrelay's resources, from the environment.

Clients use botocore's "standard" retry mode: throttling and transient errors are retried with
backoff by botocore itself. ``AWS_ENDPOINT_URL`` (the dev stack, tests) is honoured by boto3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

from flowrelay.core.modeling import Model
from flowrelay.core.settings import SettingsError, from_environment

#: botocore's retry settings for every client: 5 retries (6 tries in all) with its backoff.
RETRIES: Any = {"mode": "standard", "max_attempts": 5}


def retry_settings() -> Any:
    """A copy of ``RETRIES`` for one client's ``Config``: botocore rewrites the dict it is
    given (``max_attempts`` becomes ``total_max_attempts``)."""
    return dict(RETRIES)


#: Settings that would send boto3 to real AWS or to real credentials: a process pointed at a
#: local endpoint (the dev stack's task processes, the tests) must not inherit them.
REAL_AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


class Settings(Model):
    """Where flowrelay's resources are: the table and the bus."""

    ENVIRONMENT: ClassVar[dict[str, str]] = {
        "table_name": "FLOWRELAY_TABLE_NAME",
        "bus_name": "FLOWRELAY_BUS_NAME",
    }

    table_name: str
    bus_name: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``FLOWRELAY_TABLE_NAME`` and ``FLOWRELAY_BUS_NAME``; ``SettingsError`` names a
        missing one."""
        try:
            return from_environment(cls, os.environ if env is None else env, cls.ENVIRONMENT)
        except SettingsError as exc:
            raise SettingsError(f"{exc} (the stack's TableName and BusName outputs)") from None


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service``, made once per process (Lambda reuses it across calls)."""
    import boto3
    from botocore.config import Config

    make: Any = boto3.client  # boto3-stubs type each service separately; any is fine here
    return make(service, config=Config(retries=retry_settings()))


def answer_text(message: str) -> str:
    """An AWS error's message as a person should read it: an HTML error page (a proxy, an
    emulator's internal error, a wrong endpoint) is said to be one, not quoted.

    >>> answer_text("<html><body>500 Internal Server Error</body></html>")
    'an error page, not an AWS error'
    """
    return "an error page, not an AWS error" if message.lstrip().startswith("<") else message
