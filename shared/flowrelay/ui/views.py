"""What the pages show, computed from runs and their histories: a run's state timeline as
segments of a bar (the run page's Gantt bar and each row's sparkline), durations in words, and
counts by state. Pure functions of their arguments, so they are tested without a server."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowrelay.core.lifecycle import RunState
from flowrelay.core.runs import FlowRun, HistoryEntry, states_reached


@dataclass(frozen=True)
class Segment:
    """A stretch of a run's life in one state: from ``start`` for ``seconds`` (to the next
    state, or to now while the run is in it); ``offset`` and ``share``: where it starts on the
    run's bar and how much of it it takes, both as fractions of the whole (0 to 1)."""

    state: RunState
    start: datetime
    seconds: float
    offset: float
    share: float
    ongoing: bool

    @property
    def css(self) -> str:
        """The state's CSS class (``state-running``)."""
        return state_css(self.state)


def state_css(state: RunState) -> str:
    """The CSS class a state is drawn with.

    >>> state_css(RunState.TIMED_OUT)
    'state-timedout'
    """
    return "state-" + str(state).lower()


def timeline(run: FlowRun, history: Iterable[HistoryEntry], now: datetime) -> list[Segment]:
    """The states ``run`` went through as segments of one bar, oldest first. A final state is
    where the bar ends (no length); a state the run is still in lasts until ``now``. Times out
    of order (clocks of different machines) give a segment no length, never a negative one.

    >>> from datetime import UTC, timedelta
    >>> t = datetime(2026, 11, 30, tzinfo=UTC)
    >>> run = FlowRun(run_id="r", flow_name="etl", state=RunState.RUNNING, created_at=t,
    ...               updated_at=t, state_entered_at=t + timedelta(seconds=3))
    >>> history = [HistoryEntry(version=1, state=RunState.PENDING, previous=None,
    ...                         source="dispatcher", at=t),
    ...            HistoryEntry(version=2, state=RunState.RUNNING, previous=RunState.PENDING,
    ...                         source="runner", at=t + timedelta(seconds=3))]
    >>> later = t + timedelta(seconds=12)
    >>> [(str(s.state), s.seconds, s.share) for s in timeline(run, history, later)]
    [('Pending', 3.0, 0.25), ('Running', 9.0, 0.75)]
    """
    reached = states_reached(history)
    if not reached:
        reached = [(run.state, run.state_entered_at)]
    spans: list[tuple[RunState, datetime, float, bool]] = []
    for index, (state, start) in enumerate(reached):
        if index + 1 < len(reached):
            end, ongoing = reached[index + 1][1], False
        elif state.is_final:
            end, ongoing = start, False
        else:
            end, ongoing = now, True
        spans.append((state, start, max(0.0, (end - start).total_seconds()), ongoing))
    total = sum(seconds for _, _, seconds, _ in spans)
    segments: list[Segment] = []
    offset = 0.0
    for state, start, seconds, ongoing in spans:
        share = seconds / total if total > 0 else (1.0 if state is run.state else 0.0)
        segments.append(Segment(state, start, seconds, offset, share, ongoing))
        offset += share
    return segments


def elapsed(run: FlowRun, now: datetime) -> float:
    """Seconds from a run's request to its end (to now while it has not ended)."""
    end = run.state_entered_at if run.state.is_final else now
    return max(0.0, (end - run.created_at).total_seconds())


def duration_words(seconds: float | None) -> str:
    """A duration as people say it.

    >>> [duration_words(s) for s in (0.25, 4.5, 61, 3725, 90061)]
    ['0.2 s', '4.5 s', '1 min 1 s', '1 h 2 min', '1 d 1 h']
    """
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def counts_by_state(runs: Iterable[FlowRun]) -> list[tuple[RunState, int]]:
    """How many of ``runs`` are in each state, in the order of the lifecycle."""
    counted = Counter(run.state for run in runs)
    return [(state, counted[state]) for state in RunState if counted[state]]


def cluster_of(notes: Iterable[HistoryEntry]) -> dict[str, Any] | None:
    """What a run's Dask cluster notes say of it, the latest of each (its name, scheduler,
    dashboard, workers), with ``notes``: each note's time and message, oldest first. None when
    the run had no cluster."""
    found: dict[str, Any] = {}
    said: list[tuple[datetime, str]] = []
    for entry in notes:
        found.update({key: value for key, value in entry.details.items() if value is not None})
        said.append((entry.at, entry.message or ""))
    if not said:
        return None
    return {**found, "notes": said}
