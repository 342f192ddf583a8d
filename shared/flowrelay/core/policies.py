"""The rules every run is held to: how launches are retried, and how long a run may take.

**Launch retries.** A launch attempt that fails for a reason that may pass (throttling, no
capacity, a Fargate task that could not get its network interface or pull its image in time) is
tried again as the next attempt, up to ``max_attempts``, after an exponential backoff with full
jitter: attempt ``n`` waits a random time in ``[0, min(cap, base * 2 ** (n - 1))]``, at least
``floor``. Jitter spreads the retries of many runs refused at once (a capacity shortage hits
them all) so they do not come back at once.

>>> policy = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60)
>>> [policy.ceiling(n) for n in (1, 2, 3, 4, 5)]
[10.0, 20.0, 40.0, 60.0, 60.0]
>>> 1.0 <= policy.delay(2) <= 20.0
True

**Timeouts.** How long a run may take to start, go without a heartbeat, run, and take to stop.
The monitor (``flowrelay.control.monitor``) holds each active run against these. Defaults come
from the functions' environment (template parameters); a target may set its own start and
heartbeat timeouts (its infrastructure starts slower or faster), and a flow or a single run its
own run timeout. The dispatcher resolves them once, when it launches, and stores them on the
run, so a target changed later does not change the rules for runs already launched.

>>> Timeouts().start_seconds, Timeouts().heartbeat_seconds
(600.0, 180.0)
>>> limits = resolve_timeouts(Timeouts(), TimeoutOverrides(start_seconds=120), run_seconds=3600)
>>> limits.start_seconds, limits.heartbeat_seconds, limits.run_seconds
(120.0, 180.0, 3600.0)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, ClassVar

from pydantic import ConfigDict, Field, model_validator

from flowrelay.core.modeling import Model
from flowrelay.core.settings import from_environment

if TYPE_CHECKING:
    from pydantic.config import JsonDict

_SECONDS: JsonDict = {"expects": "a number of seconds > 0"}


class RetryPolicy(Model):
    """Launch attempts per run and the backoff between them."""

    model_config = ConfigDict(extra="forbid")

    #: The variables that set a deployment's policy (template parameters).
    ENVIRONMENT: ClassVar[dict[str, str]] = {
        "max_attempts": "FLOWRELAY_MAX_LAUNCH_ATTEMPTS",
        "base_seconds": "FLOWRELAY_RETRY_BASE_SECONDS",
        "cap_seconds": "FLOWRELAY_RETRY_CAP_SECONDS",
    }

    max_attempts: int = Field(
        default=5, ge=1, le=20, json_schema_extra={"expects": "a whole number from 1 to 20"}
    )
    base_seconds: float = Field(default=10.0, gt=0, json_schema_extra=_SECONDS)
    cap_seconds: float = Field(default=300.0, gt=0, json_schema_extra=_SECONDS)
    floor_seconds: float = Field(default=1.0, ge=0)

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1)))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """How long to wait after failed attempt ``attempt`` (full jitter)."""
        return max(self.floor_seconds, rand() * self.ceiling(attempt))

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> RetryPolicy:
        """The deployment's policy; ``SettingsError`` naming each unusable variable."""
        return from_environment(cls, env, cls.ENVIRONMENT)


class TimeoutOverrides(Model):
    """What a target may set for the runs launched on it."""

    model_config = ConfigDict(extra="forbid")

    start_seconds: float | None = Field(
        default=None, gt=0, description="Submitted longer than this: ask the infrastructure."
    )
    start_limit_seconds: float | None = Field(
        default=None, gt=0, description="Still not started after this: stop it, Crashed."
    )
    heartbeat_seconds: float | None = Field(
        default=None, gt=0, description="Running with no heartbeat for this long: ask."
    )


class Timeouts(Model):
    """The limits one run is held to (seconds)."""

    model_config = ConfigDict(extra="forbid")

    #: The variables that set a deployment's defaults (template parameters).
    ENVIRONMENT: ClassVar[dict[str, str]] = {
        "start_seconds": "FLOWRELAY_START_TIMEOUT_SECONDS",
        "start_limit_seconds": "FLOWRELAY_START_LIMIT_SECONDS",
        "heartbeat_seconds": "FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS",
        "stop_grace_seconds": "FLOWRELAY_STOP_GRACE_SECONDS",
    }

    start_seconds: float = Field(default=600.0, gt=0, json_schema_extra=_SECONDS)
    start_limit_seconds: float = Field(default=1800.0, gt=0, json_schema_extra=_SECONDS)
    heartbeat_seconds: float = Field(default=180.0, gt=0, json_schema_extra=_SECONDS)
    run_seconds: float | None = Field(default=None, gt=0)
    stop_grace_seconds: float = Field(default=120.0, gt=0, json_schema_extra=_SECONDS)

    @model_validator(mode="after")
    def _limit_not_before_timeout(self) -> Timeouts:
        # The hard limit is when a still-pending task is given up on; it cannot come before the
        # moment the monitor first looks.
        self.start_limit_seconds = max(self.start_limit_seconds, self.start_seconds)
        return self

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Timeouts:
        """The deployment's defaults; ``SettingsError`` naming each unusable variable."""
        return from_environment(cls, env, cls.ENVIRONMENT)


def resolve_timeouts(
    defaults: Timeouts, target: TimeoutOverrides | None, run_seconds: float | None
) -> Timeouts:
    """The limits for one run: the target's over the defaults, and the run timeout."""
    update = target.model_dump(exclude_none=True) if target is not None else {}
    return Timeouts.model_validate({**defaults.model_dump(), **update, "run_seconds": run_seconds})
