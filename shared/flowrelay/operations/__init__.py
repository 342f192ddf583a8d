"""What a user does with a stack, done once for every way of asking: the ``flowrelay`` CLI and
the web UI (``flowrelay ui``) call these functions and only render what they return.

Each takes what it works with (the store, a publisher, an AWS client) from its caller, which
knows which stack it talks to; none prints, exits or knows HTTP. A request the stack cannot
carry out raises ``OperationError`` with one line that says why.
"""

from __future__ import annotations


class OperationError(Exception):
    """A request that cannot be carried out, in one line. ``code`` 1: what it names does not
    exist or cannot be read; 2: the request is refused as it stands (the CLI's exit codes)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class NotFoundError(OperationError):
    """What a request names does not exist (code 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 1)


class RefusedError(OperationError):
    """The request is refused as it stands (code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 2)
