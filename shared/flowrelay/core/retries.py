"""How often, and how soon, a launch that AWS refused for now is tried again.

A launch attempt that fails for a reason that may pass (throttling, no capacity, a Fargate task
that could not get its network interface or pull its image in time) is tried again as the next
attempt, up to ``max_attempts``, after an exponential backoff with full jitter: attempt ``n``
waits a random time in ``[0, min(cap, base * 2 ** (n - 1))]``, at least ``floor``. Jitter spreads
the retries of many runs refused at once (a capacity shortage hits them all) so they do not
come back at once.

>>> policy = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=60)
>>> [policy.ceiling(n) for n in (1, 2, 3, 4, 5)]
[10.0, 20.0, 40.0, 60.0, 60.0]
>>> 1.0 <= policy.delay(2) <= 20.0
True
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model

ENV_NAMES = {
    "max_attempts": "FLOWRELAY_MAX_LAUNCH_ATTEMPTS",
    "base_seconds": "FLOWRELAY_RETRY_BASE_SECONDS",
    "cap_seconds": "FLOWRELAY_RETRY_CAP_SECONDS",
}


class RetryPolicy(Model):
    """Launch attempts per run and the backoff between them."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=5, ge=1, le=20)
    base_seconds: float = Field(default=10.0, gt=0)
    cap_seconds: float = Field(default=300.0, gt=0)
    floor_seconds: float = Field(default=1.0, ge=0)

    def ceiling(self, attempt: int) -> float:
        """The longest wait after failed attempt ``attempt`` (1-based)."""
        return float(min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempt - 1)))

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """How long to wait after failed attempt ``attempt`` (full jitter)."""
        return max(self.floor_seconds, rand() * self.ceiling(attempt))

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> RetryPolicy:
        """The deployment's policy; ``ValueError`` naming the variable when one is unusable."""
        values: dict[str, float] = {}
        for field, name in ENV_NAMES.items():
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                values[field] = int(raw) if field == "max_attempts" else float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None
        try:
            return cls.model_validate(values)
        except Exception as exc:
            names = ", ".join(f"{ENV_NAMES[k]}={v}" for k, v in values.items())
            raise ValueError(f"launch retry settings are not usable ({names}): {exc}") from None
