"""``UniversalRun``: runs on any kind of launch target, with that target's defaults."""

from __future__ import annotations

from typing import ClassVar, Literal

from flowrelay.core.run_configs.base import RunConfigBase


class UniversalRun(RunConfigBase):
    """Runs on any kind of launch target with that target's defaults; only env and labels."""

    type: Literal["UniversalRun"] = "UniversalRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"ecs", "kubernetes", "local", "docker"})
