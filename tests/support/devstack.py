"""What tests of a running dev stack share: clients for it, made as another process would make
them (the stack's own credentials, region and loopback endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

from flowrelay.devstack import DevStack


def clients_of(dev: DevStack) -> Callable[[str], Any]:
    """``client(service)`` for the running stack ``dev``."""
    env = dev.environment()
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    make: Any = session.client  # boto3-stubs type each service separately
    return lambda service: make(service, endpoint_url=env["AWS_ENDPOINT_URL"])
