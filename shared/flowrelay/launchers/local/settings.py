"""What a local target says about where its runs start (``Target.settings``)."""

from __future__ import annotations

from pydantic import ConfigDict

from flowrelay.core.modeling import Model


class LocalSettings(Model):
    """A local target: runs as processes on the machine hosting the dev stack."""

    model_config = ConfigDict(extra="forbid")

    working_dir: str | None = None
