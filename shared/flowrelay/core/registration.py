"""Flow registrations: what the control plane knows about a flow without importing it.

A registration is a flow's name, version, labels, run config, executor (as data: its class and
arguments), storage, parameters and schedule (``flowrelay.core.schedules``), as JSON.
Registering unchanged content again returns the existing version, so CI can register on every
deploy without minting versions. The parameter rule (``check_parameters``) is here too:
dispatch checks a request against the registration, the runner against the flow it loaded.

>>> check_parameters("etl", {"rows": False, "day": True}, {"day": "2026-11-29"})
>>> try:
...     check_parameters("etl", {"rows": False}, {"row": 1})
... except ParameterError as exc:
...     print(exc)
Flow 'etl' has no parameter 'row'; its parameters are: rows
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from flowrelay.core import jsonvalues
from flowrelay.core.labels import check_labels
from flowrelay.core.limits import REQUEST_BYTES, json_size, over
from flowrelay.core.modeling import Model
from flowrelay.core.run_configs import RunConfig
from flowrelay.core.schedules import ScheduleError, ScheduleSpec
from flowrelay.core.storage import Local, Storage, split_location


class ParameterError(ValueError):
    """Parameters given to a run do not fit the flow's parameters."""


class ExecutorSpec(Model):
    """An executor's class and constructor arguments (JSON-safe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["LocalExecutor", "LocalDaskExecutor", "DaskExecutor"] = "LocalExecutor"
    kwargs: dict[str, Any] = Field(default_factory=dict)


def check_parameters(
    flow_name: str, required: Mapping[str, bool], given: Mapping[str, Any]
) -> None:
    """Raise ParameterError when ``given`` names a parameter the flow does not declare, or leaves
    out a required one. ``required`` maps each declared parameter to whether it is required."""
    unexpected = sorted(set(given) - set(required))
    if unexpected:
        raise ParameterError(
            f"Flow {flow_name!r} has no parameter {', '.join(map(repr, unexpected))}; "
            f"its parameters are: {', '.join(sorted(required)) or 'none'}"
        )
    missing = sorted(name for name, needed in required.items() if needed and name not in given)
    if missing:
        raise ParameterError(
            f"Flow {flow_name!r} needs a value for required parameter "
            f"{', '.join(map(repr, missing))}"
        )


#: How long a flow's name may be (the bus, the table's keys and the CLI's tables carry it).
MAX_FLOW_NAME_CHARS = 256


def check_flow_name(name: str) -> str:
    """``name`` if it can name a flow; ``ValueError`` saying why not.

    >>> check_flow_name("etl")
    'etl'
    """
    if not name or not name.strip():
        raise ValueError("a flow's name cannot be empty")
    if len(name) > MAX_FLOW_NAME_CHARS:
        raise ValueError(
            f"the flow's name is {len(name):,} characters long; at most {MAX_FLOW_NAME_CHARS}"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ValueError(f"the flow's name {name!r} contains a control character")
    return name


def not_registered(flow_name: str, version: int | None = None) -> str:
    """Why a request for an unregistered flow (or version) cannot run, as the run and the CLI
    say it."""
    return f"flow {flow_name!r}{f' version {version}' if version else ''} is not registered"


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

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: list[str]) -> list[str]:
        return list(check_labels(labels))

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_flow_name(name)

    run_config: RunConfig | None = None
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    storage: Storage
    parameters: list[ParameterSpec] = Field(default_factory=list)
    schedule: ScheduleSpec | None = Field(
        default=None, description="Its clocks, each one EventBridge Scheduler schedule."
    )
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="Runs running longer are stopped and become TimedOut."
    )
    code_sha256: str | None = Field(
        default=None,
        description="The sha256 of a Local script as registered: a version runs only that code.",
    )
    content_hash: str = ""
    registered_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _schedule_as_text(cls, data: Any) -> Any:
        """A schedule given as an AWS expression is a schedule of one clock. Versions
        registered before schedules existed stored ``str(flow.schedule)``, whatever it was, and
        nothing read it: a stored one (it has ``registered_at``) that is no expression is read
        as no schedule, so the version stays readable and runnable."""
        if not isinstance(data, dict) or not isinstance(data.get("schedule"), str):
            return data
        try:
            schedule: ScheduleSpec | None = ScheduleSpec.of_expression(data["schedule"])
        except ScheduleError:
            if data.get("registered_at") is None:
                raise
            schedule = None
        return {**data, "schedule": schedule}

    @model_validator(mode="after")
    def _fits_the_table(self) -> FlowRegistration:
        jsonvalues.check(self.model_dump(), whole="registration")
        size = json_size(self.model_dump(mode="json"))
        if size > REQUEST_BYTES:
            raise ValueError(
                over(
                    f"the registration of flow {self.name!r}",
                    size,
                    REQUEST_BYTES,
                    "its run config, executor arguments and parameter defaults together",
                )
            )
        return self

    def check_run_parameters(self, given: Mapping[str, Any]) -> None:
        """``ParameterError`` when ``given`` does not fit this flow's parameters (an unknown
        one, a required one missing)."""
        required = {parameter.name: parameter.required for parameter in self.parameters}
        check_parameters(self.name, required, given)

    def check_schedule_parameters(self) -> None:
        """``ParameterError`` when a clock of the schedule gives a parameter the flow does not
        have, or leaves out a required one: every run it starts would be refused."""
        required = {parameter.name: parameter.required for parameter in self.parameters}
        for clock in self.schedule.clocks if self.schedule else ():
            try:
                check_parameters(self.name, required, clock.parameters)
            except ParameterError as exc:
                raise ParameterError(f"clock {clock.name!r} of the schedule: {exc}") from None

    def with_content_hash(self) -> FlowRegistration:
        """This registration with ``code_sha256`` (a Local script's) and ``content_hash`` set
        from everything that defines it."""
        code = local_code_sha256(self.storage) if isinstance(self.storage, Local) else None
        code = code or self.code_sha256
        content = self.model_dump(mode="json", exclude={"version", "content_hash", "registered_at"})
        content["code_sha256"] = code
        digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
        return self.model_copy(update={"content_hash": digest, "code_sha256": code})


def local_code_sha256(storage: Local) -> str | None:
    """The sha256 of the script a Local storage names; None when there is no such file."""
    script = Path(split_location(storage.path)[0])
    if not script.is_file():
        return None
    return hashlib.sha256(script.read_bytes()).hexdigest()
