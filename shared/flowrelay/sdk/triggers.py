"""Triggers: whether a task runs, given how its upstream tasks ended (the seeds' engine's
``prefect.triggers``).

A trigger takes ``upstream_states`` (``{Edge: State}``) and returns True to run the task; to
refuse it raises ``TRIGGERFAIL`` (the task ends TriggerFailed) or ``SKIP`` (Skipped). A mapped
upstream counts as each of its children. ``all_successful`` is the default::

    @task(trigger=all_failed)          # runs only when everything upstream failed: clean-up
    def alert(): ...

A trigger is only asked once every upstream task has finished.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flowrelay.sdk import signals

if TYPE_CHECKING:
    from flowrelay.sdk.states import State
    from flowrelay.sdk.tasks import Edge

Trigger = Callable[[Mapping["Edge", "State"]], bool]


def _states(upstream_states: Mapping[Any, State]) -> list[State]:
    """Every upstream state, a mapped upstream as its children."""
    found: list[State] = []
    for state in upstream_states.values():
        if state.map_states is not None:
            found.extend(state.map_states)
        else:
            found.append(state)
    return found


def all_finished(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs whatever happened upstream (every upstream task is finished when it is asked)."""
    return True


#: Runs whatever happened upstream: ``all_finished`` under another name.
always_run = all_finished


def manual_only(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs only when someone resumes the run by hand. flowrelay runs have no one to resume
    them (there is no Paused state to resume from), so the task fails, saying so."""
    raise signals.FAIL(
        'Trigger was "manual_only", which waits for someone to resume the run: flowrelay runs '
        "are not paused and resumed by hand; give the task another trigger, or split the flow "
        "in two and start the second run when it is approved"
    )


def all_successful(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs when every upstream task succeeded (Skipped counts as success). The default."""
    if not all(state.is_successful() for state in _states(upstream_states)):
        raise signals.TRIGGERFAIL(
            'Trigger was "all_successful" but some of the upstream tasks failed.'
        )
    return True


def all_failed(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs when every upstream task failed."""
    if not all(state.is_failed() for state in _states(upstream_states)):
        raise signals.TRIGGERFAIL(
            'Trigger was "all_failed" but some of the upstream tasks succeeded.'
        )
    return True


def any_successful(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs when at least one upstream task succeeded (or there is none)."""
    found = _states(upstream_states)
    if found and not any(state.is_successful() for state in found):
        raise signals.TRIGGERFAIL(
            'Trigger was "any_successful" but none of the upstream tasks succeeded.'
        )
    return True


def any_failed(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs when at least one upstream task failed (or there is none)."""
    found = _states(upstream_states)
    if found and not any(state.is_failed() for state in found):
        raise signals.TRIGGERFAIL('Trigger was "any_failed" but none of the upstream tasks failed.')
    return True


def not_all_skipped(upstream_states: Mapping[Edge, State]) -> bool:
    """Runs when every upstream task succeeded and not all were skipped; Skipped when all were
    (what ``merge`` uses)."""
    found = _states(upstream_states)
    if found and all(state.is_skipped() for state in found):
        raise signals.SKIP(message="All upstreams were skipped", result=None)
    if not all(state.is_successful() for state in found):
        raise signals.TRIGGERFAIL(
            'Trigger was "not_all_skipped" but some of the upstream tasks failed.'
        )
    return True


def some_successful(at_least: float | None = None, at_most: float | None = None) -> Trigger:
    """A trigger that runs when the number of successful upstream tasks is within the bounds;
    a bound between 0 and 1 is a fraction of the upstream tasks.

    >>> from flowrelay import task
    >>> @task(trigger=some_successful(at_least=0.5))    # half of the sources are enough
    ... def combine(results): ...
    """
    return _some("some_successful", lambda state: state.is_successful(), at_least, at_most)


def some_failed(at_least: float | None = None, at_most: float | None = None) -> Trigger:
    """A trigger that runs when the number of failed upstream tasks is within the bounds; a
    bound between 0 and 1 is a fraction of the upstream tasks."""
    return _some("some_failed", lambda state: state.is_failed(), at_least, at_most)


def _some(
    name: str, counts: Callable[[State], bool], at_least: float | None, at_most: float | None
) -> Trigger:
    for label, bound in (("at_least", at_least), ("at_most", at_most)):
        if bound is not None and (isinstance(bound, bool) or bound < 0):
            raise ValueError(f"{name}: {label} must be a number >= 0, got {bound!r}")

    def trigger(upstream_states: Mapping[Edge, State]) -> bool:
        found = _states(upstream_states)
        matched = sum(1 for state in found if counts(state))
        low = _absolute(at_least, len(found), 0)
        high = _absolute(at_most, len(found), len(found))
        if not low <= matched <= high:
            raise signals.TRIGGERFAIL(
                f'Trigger was "{name}" with at_least={at_least!r}, at_most={at_most!r}: '
                f"{matched} of {len(found)} upstream states matched."
            )
        return True

    trigger.__name__ = name
    return trigger


def _absolute(bound: float | None, total: int, default: int) -> float:
    if bound is None:
        return default
    if 0 < bound < 1:
        return bound * total
    return bound
