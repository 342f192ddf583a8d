"""Lambda, as flowrelay relies on it, for running a function's handler in this process: the
``context`` object its handler gets, and the handler loaded from its code folder as Lambda loads
it. The dev stack's event sources and ``flowrelay invoke`` both run handlers through here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """What Lambda passes as ``context`` (the attributes Powertools and flowrelay read)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or f"devstack/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout - (time.monotonic() - self._started)) * 1000))


@dataclass
class Function:
    """One function of the stack: its loaded handler and how Lambda would describe it."""

    logical_id: str
    name: str
    arn: str
    handler: Handler
    timeout: float
    memory_size: int

    def invoke(self, event: dict[str, Any]) -> Any:
        context = LambdaContext(
            function_name=self.name,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory_size,
            timeout=self.timeout,
        )
        return self.handler(event, context)


def load_handler(root: Path, handler_path: str, handler_function: str, logical_id: str) -> Handler:
    """The handler callable, imported from its file as Lambda imports it from the code folder.

    Each function gets its own module name (every handler file is called app.py); a handler
    loaded once is kept, as a warm Lambda keeps it (what it caches lives in
    ``flowrelay.handlers.wiring``, which ``wiring.reset()`` clears).
    """
    path = (root / handler_path).resolve()
    name = f"flowrelay_devstack_{logical_id}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load handler file {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return _attribute(module, handler_function, path)


def _attribute(module: ModuleType, name: str, path: Path) -> Handler:
    handler = getattr(module, name, None)
    if not callable(handler):
        raise ImportError(f"{path} has no callable {name!r}")
    return handler  # type: ignore[no-any-return]


def function_arn(function_name: str, region: str, account: str = "123456789012") -> str:
    """The ARN Lambda gives a function (the dev stack's account by default)."""
    return f"arn:aws:lambda:{region}:{account}:function:{function_name}"
