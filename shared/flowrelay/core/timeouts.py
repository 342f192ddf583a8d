"""How long a run may take to start, go without a heartbeat, run, and take to stop.

The monitor (``flowrelay.control.monitor``) holds each active run against these. Defaults
come from the functions' environment (template parameters); a target may set its own start and
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

from collections.abc import Mapping

from pydantic import ConfigDict, Field, model_validator

from flowrelay.core.modeling import Model

ENV_NAMES = {
    "start_seconds": "FLOWRELAY_START_TIMEOUT_SECONDS",
    "start_limit_seconds": "FLOWRELAY_START_LIMIT_SECONDS",
    "heartbeat_seconds": "FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS",
    "stop_grace_seconds": "FLOWRELAY_STOP_GRACE_SECONDS",
}


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

    start_seconds: float = Field(default=600.0, gt=0)
    start_limit_seconds: float = Field(default=1800.0, gt=0)
    heartbeat_seconds: float = Field(default=180.0, gt=0)
    run_seconds: float | None = Field(default=None, gt=0)
    stop_grace_seconds: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _limit_not_before_timeout(self) -> Timeouts:
        # The hard limit is when a still-pending task is given up on; it cannot come before the
        # moment the monitor first looks.
        self.start_limit_seconds = max(self.start_limit_seconds, self.start_seconds)
        return self

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Timeouts:
        """The deployment's defaults; ``ValueError`` naming the variable when one is not a
        positive number."""
        values: dict[str, float] = {}
        for field, name in ENV_NAMES.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not value > 0:
                raise ValueError(f"{name}={raw!r} is not a number of seconds > 0")
            values[field] = value
        return cls(**values)


def resolve_timeouts(
    defaults: Timeouts, target: TimeoutOverrides | None, run_seconds: float | None
) -> Timeouts:
    """The limits for one run: the target's over the defaults, and the run timeout."""
    update = target.model_dump(exclude_none=True) if target is not None else {}
    return Timeouts.model_validate({**defaults.model_dump(), **update, "run_seconds": run_seconds})
