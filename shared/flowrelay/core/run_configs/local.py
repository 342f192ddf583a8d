"""``LocalRun``: a run as a local process."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flowrelay.core.run_configs.base import RunConfigBase


class LocalRun(RunConfigBase):
    """Runs as a local process (the dev stack's local target)."""

    type: Literal["LocalRun"] = "LocalRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"local"})

    working_dir: str | None = Field(
        default=None, min_length=1, description="Directory the run starts in."
    )
