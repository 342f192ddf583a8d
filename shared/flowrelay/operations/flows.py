"""Flows: what is registered, each flow's versions, its schedules with their next fire times and
how its recent runs went (``flowrelay flows``, ``flowrelay schedules ls``, the web UI's Flows
page).

Schedules live in EventBridge Scheduler, in the stack's schedule group: a caller that does not
know the group (a stack named by its table and bus only) passes no ``target``, and the flows'
schedules are then unknown (None), not none.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_serializer

from flowrelay.control.fire_times import fire_times
from flowrelay.control.schedule_sync import ScheduleTarget, flow_prefix, schedules_of
from flowrelay.control.store import Store
from flowrelay.core.lifecycle import RunState
from flowrelay.core.modeling import Model
from flowrelay.core.registration import FlowRegistration, check_flow_name, not_registered
from flowrelay.core.runs import FlowRun
from flowrelay.operations import NotFoundError, RefusedError

#: Next fire times given per schedule.
NEXT_FIRES = 3
#: A flow's runs read to tell how its recent runs went.
RECENT_RUNS = 20
#: Flows whose recent runs are read side by side.
READERS = 8


class ScheduleRow(Model):
    """One EventBridge Scheduler schedule of a flow: its clock, expression, time zone, state,
    what a fire requests and its next fire times (none while paused)."""

    name: str
    flow: str
    version: int | None = None
    clock: str
    expression: str
    timezone: str
    state: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] | None = None
    next: list[datetime] = Field(default_factory=list)

    @field_serializer("next")
    def _next_as_isoformat(self, moments: list[datetime]) -> list[str]:
        return [moment.isoformat() for moment in moments]

    @property
    def enabled(self) -> bool:
        return self.state == "ENABLED"


class ScheduleListing(Model):
    """Schedules, and what could not be read of them (a schedule whose expression the fire
    times cannot be computed for: one line each, naming it)."""

    rows: list[ScheduleRow] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def schedule_rows(
    scheduler: Any,
    target: ScheduleTarget,
    flow_name: str | None,
    now: datetime,
    next_fires: int = NEXT_FIRES,
) -> ScheduleListing:
    """The stack's flowrelay schedules in ``target.group`` (of one flow, or every flow's), each
    with its next ``next_fires`` fire times after ``now``."""
    listing = ScheduleListing()
    for schedule in schedules_of(scheduler, target, flow_name):
        request = _request_of(schedule)
        flow = str(request.get("flow", ""))
        timezone = schedule.get("ScheduleExpressionTimezone") or "UTC"
        upcoming: list[datetime] = []
        if schedule.get("State") == "ENABLED":
            try:
                upcoming = _next_fires(schedule, timezone, now, next_fires)
            except ValueError as exc:
                listing.warnings.append(f"{schedule['Name']}: {exc}")
        version, labels = request.get("version"), request.get("labels")
        parameters = request.get("parameters")
        listing.rows.append(
            ScheduleRow(
                name=schedule["Name"],
                flow=flow,
                version=version if isinstance(version, int) else None,
                clock=schedule["Name"].removeprefix(flow_prefix(flow)) if flow else "",
                expression=schedule["ScheduleExpression"],
                timezone=timezone,
                state=schedule.get("State"),
                parameters=parameters if isinstance(parameters, dict) else {},
                labels=[str(label) for label in labels] if isinstance(labels, list) else None,
                next=upcoming,
            )
        )
    return listing


def _request_of(schedule: dict[str, Any]) -> dict[str, Any]:
    """The "Flow Run Requested" a schedule puts on the bus (its target's Input)."""
    try:
        request = json.loads((schedule.get("Target") or {}).get("Input") or "{}")
    except ValueError:
        return {}
    return request if isinstance(request, dict) else {}


def _next_fires(
    schedule: dict[str, Any], timezone: str, now: datetime, count: int
) -> list[datetime]:
    expression = schedule["ScheduleExpression"]
    return fire_times(
        expression,
        timezone,
        after=now,
        count=count,
        # A rate schedule without a start counts from its creation, as AWS's does.
        start_date=schedule.get("StartDate")
        or (schedule.get("CreationDate") if expression.startswith("rate(") else None),
        end_date=schedule.get("EndDate"),
    )


class RecentRuns(Model):
    """How a flow's recent runs went: how many were read, how many are in each state, and the
    share of the finished ones (in a final state) that succeeded."""

    runs: int = 0
    by_state: dict[str, int] = Field(default_factory=dict)
    finished: int = 0
    succeeded: int = 0
    success_rate: float | None = Field(
        default=None, description="succeeded / finished; None when none has finished."
    )
    last_run_at: datetime | None = Field(default=None, description="When the newest was made.")
    last_state: RunState | None = None

    @classmethod
    def of(cls, runs: Sequence[FlowRun]) -> RecentRuns:
        """What ``runs`` (newest first) say.

        >>> RecentRuns.of([]).success_rate is None
        True
        """
        counts = Counter(str(run.state) for run in runs)
        finished = sum(1 for run in runs if run.state.is_final)
        succeeded = counts.get(str(RunState.SUCCESS), 0)
        newest = max(runs, key=lambda run: run.created_at) if runs else None
        return cls(
            runs=len(runs),
            by_state={state: counts[state] for state in sorted(counts)},
            finished=finished,
            succeeded=succeeded,
            success_rate=succeeded / finished if finished else None,
            last_run_at=newest.created_at if newest else None,
            last_state=newest.state if newest else None,
        )


class FlowSummary(Model):
    """One registered flow, as a list of flows shows it."""

    name: str
    latest_version: int
    versions: int = Field(description="Versions are numbered from 1 and never removed.")
    registered_at: datetime | None = Field(default=None, description="Of the latest version.")
    schedules: int | None = Field(default=None, description="None: not known (no group).")
    paused: int | None = Field(default=None, description="Of its schedules, how many paused.")
    next_fire: datetime | None = None
    recent: RecentRuns = Field(default_factory=RecentRuns)


class FlowSummaries(Model):
    """Every flow in the catalog, by name, and what could not be read of their schedules."""

    flows: list[FlowSummary] = Field(default_factory=list)
    schedules_known: bool = False
    warnings: list[str] = Field(default_factory=list)


class VersionSummary(Model):
    """One version of a flow: when it was registered, its labels, parameters and clocks."""

    version: int
    registered_at: datetime | None = None
    labels: list[str] = Field(default_factory=list)
    parameters: list[str] = Field(default_factory=list)
    clocks: list[str] = Field(default_factory=list, description="Each clock's expression.")
    content_hash: str = ""

    @classmethod
    def of(cls, registration: FlowRegistration) -> VersionSummary:
        return cls(
            version=registration.version,
            registered_at=registration.registered_at,
            labels=list(registration.labels),
            parameters=[parameter.name for parameter in registration.parameters],
            clocks=[clock.expression for clock in registration.schedule.clocks]
            if registration.schedule is not None
            else [],
            content_hash=registration.content_hash,
        )


class FlowDetail(Model):
    """One flow: its latest registration, every version (newest first), its schedules (None:
    not known) and its recent runs (newest first) with how they went."""

    name: str
    latest: FlowRegistration
    versions: list[VersionSummary]
    schedules: list[ScheduleRow] | None = None
    warnings: list[str] = Field(default_factory=list)
    runs: list[FlowRun] = Field(default_factory=list)
    recent: RecentRuns = Field(default_factory=RecentRuns)


def checked_name(name: str) -> str:
    """``name`` if it can name a flow; ``RefusedError`` saying why not."""
    try:
        return check_flow_name(name)
    except ValueError as exc:
        raise RefusedError(str(exc)) from None


def flow_summaries(
    store: Store,
    scheduler: Any = None,
    target: ScheduleTarget | None = None,
    *,
    now: datetime | None = None,
    recent: int = RECENT_RUNS,
) -> FlowSummaries:
    """Every registered flow (the store's catalog), by name: its latest version, how many
    versions, its schedules (with ``scheduler`` and ``target``: how many, how many paused, the
    next fire) and how its last ``recent`` runs went. Reads the catalog (one Query), every
    schedule of the group once, and each flow's recent runs, a few flows side by side."""
    entries = store.flows.list()
    summaries = FlowSummaries(schedules_known=scheduler is not None and target is not None)
    by_flow: dict[str, list[ScheduleRow]] = {}
    if scheduler is not None and target is not None:
        listing = schedule_rows(scheduler, target, None, now or datetime.now(UTC), next_fires=1)
        summaries.warnings = listing.warnings
        for row in listing.rows:
            by_flow.setdefault(row.flow, []).append(row)
    with ThreadPoolExecutor(max_workers=max(1, min(READERS, len(entries)))) as pool:
        runs = list(pool.map(lambda entry: store.runs.of_flow(entry.name, limit=recent), entries))
    for entry, flow_runs in zip(entries, runs, strict=True):
        rows = by_flow.get(entry.name, [])
        fires = [row.next[0] for row in rows if row.next]
        summaries.flows.append(
            FlowSummary(
                name=entry.name,
                latest_version=entry.latest_version,
                versions=entry.latest_version,
                registered_at=entry.registered_at,
                schedules=len(rows) if summaries.schedules_known else None,
                paused=sum(1 for row in rows if not row.enabled)
                if summaries.schedules_known
                else None,
                next_fire=min(fires) if fires else None,
                recent=RecentRuns.of(flow_runs),
            )
        )
    return summaries


def flow_detail(
    store: Store,
    name: str,
    scheduler: Any = None,
    target: ScheduleTarget | None = None,
    *,
    now: datetime | None = None,
    recent: int = RECENT_RUNS,
    next_fires: int = NEXT_FIRES,
) -> FlowDetail:
    """One flow: its latest registration, its versions, its schedules with their next
    ``next_fires`` fire times (with ``scheduler`` and ``target``; by name) and its last
    ``recent`` runs.
    ``NotFoundError`` naming it when no such flow is registered; ``RefusedError`` for a name
    no flow can have (empty)."""
    checked_name(name)
    latest = store.flows.get(name)
    if latest is None:
        raise NotFoundError(not_registered(name))
    detail = FlowDetail(
        name=name,
        latest=latest,
        versions=[VersionSummary.of(version) for version in store.flows.versions(name)],
    )
    if scheduler is not None and target is not None:
        listing = schedule_rows(scheduler, target, name, now or datetime.now(UTC), next_fires)
        detail.schedules = sorted(listing.rows, key=lambda row: row.name)
        detail.warnings = listing.warnings
    detail.runs = store.runs.of_flow(name, limit=recent)
    detail.recent = RecentRuns.of(detail.runs)
    return detail
