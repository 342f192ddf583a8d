"""What a local target says about where its runs start (``Target.settings``)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model


class LocalSettings(Model):
    """A local target: runs as processes on the machine hosting the dev stack."""

    model_config = ConfigDict(extra="forbid")

    working_dir: str | None = Field(
        default=None,
        description="Where runs start unless their LocalRun says (default: where the dev stack "
        "runs).",
    )
    log_dir: str | None = Field(
        default=None,
        description="Where each run's output goes, as <run id>-<attempt>.log (default: a "
        "flowrelay-local-runs folder in the temporary directory).",
    )
