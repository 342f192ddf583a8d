"""What tests of a running dev stack share: clients for it, made as another process would make
them (the stack's own credentials, region and loopback endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowrelay.devstack import DevStack


def clients_of(dev: DevStack) -> Callable[[str], Any]:
    """``client(service)`` for the running stack ``dev``."""
    return dev.clients()
