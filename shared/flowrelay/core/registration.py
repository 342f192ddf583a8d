"""Flow registrations: what the control plane knows about a flow without importing it.

A registration is a flow's name, version, labels, run config, executor, storage and parameters,
as JSON. Registering unchanged content again returns the existing version, so CI can register
on every deploy without minting versions.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model
from flowrelay.core.run_configs import RunConfig
from flowrelay.sdk.executors.spec import ExecutorSpec, executor_spec
from flowrelay.sdk.storage import Local, Storage

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow


class ParameterSpec(Model):
    model_config = ConfigDict(extra="forbid")

    name: str
    default: Any = None
    required: bool = False


class FlowRegistration(Model):
    """One version of a registered flow."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=256)
    version: int = Field(default=0, ge=0, description="Assigned at registration.")
    labels: list[str] = Field(default_factory=list)
    run_config: RunConfig | None = None
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    storage: Storage
    parameters: list[ParameterSpec] = Field(default_factory=list)
    schedule: str | None = None
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="Runs running longer are stopped and become TimedOut."
    )
    content_hash: str = ""
    registered_at: datetime | None = None

    def with_content_hash(self) -> FlowRegistration:
        """This registration with ``content_hash`` set from everything that defines it."""
        content = self.model_dump(mode="json", exclude={"version", "content_hash", "registered_at"})
        if isinstance(self.storage, Local):
            script = Path(self.storage.path.rpartition(":")[0] or self.storage.path)
            if script.is_file():
                content["script_sha256"] = hashlib.sha256(script.read_bytes()).hexdigest()
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return self.model_copy(update={"content_hash": digest})


def registration_for(flow: Flow, storage: Storage | None = None) -> FlowRegistration:
    """The registration of ``flow`` (its own storage unless ``storage`` is given).

    Raises ValueError when the flow has no storage, or parameter defaults are not JSON.
    """
    where = storage or flow.storage
    if where is None:
        raise ValueError(
            f"Flow {flow.name!r} has no storage: set flow.storage (Module, Local or S3) so the "
            f"flow runner can find it"
        )
    parameters = [
        ParameterSpec(name=p.name, default=p.default, required=p.required)
        for p in sorted(flow.parameters(), key=lambda p: p.name)
    ]
    try:
        json.dumps([p.default for p in parameters])
    except TypeError as exc:
        raise ValueError(f"Flow {flow.name!r}: parameter defaults must be JSON: {exc}") from None
    registration = FlowRegistration(
        name=flow.name,
        labels=sorted(flow.labels),
        run_config=flow.run_config,
        executor=executor_spec(flow.executor),
        storage=where,
        parameters=parameters,
        schedule=str(flow.schedule) if flow.schedule is not None else None,
    )
    return registration.with_content_hash()
