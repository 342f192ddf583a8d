"""Concurrency limits as a run sees them: the limits it holds a slot of or waits for, and
where it is in line (``flowrelay runs show`` and the web UI's run page)."""

from __future__ import annotations

from typing import Any

from flowrelay.control.store import LimitState, Store


def waiting_position(state: LimitState, run_id: str) -> int | None:
    """Where ``run_id`` is in the limit's waiting list (1: next to be handed a slot), or None
    when it does not wait for it."""
    return next(
        (index for index, (waiter, _) in enumerate(state.waiting, start=1) if waiter == run_id),
        None,
    )


def run_limits(store: Store, run_id: str, limit_names: list[str]) -> list[dict[str, Any]]:
    """Each limit of ``limit_names`` (a run's ``limits``) that still exists,
    whether the run holds one of its slots, where it is in its waiting list, and who holds its
    slots (one read per limit)."""
    shown = []
    for name in limit_names:
        state = store.limits.get(name)
        if state is None:
            continue
        shown.append(
            {
                "name": name,
                "kind": state.limit.kind,
                "value": state.limit.value,
                "holding": run_id in state.holders,
                "waiting_position": waiting_position(state, run_id),
                "holders": sorted(state.holders),
                "max_runs": state.limit.max_runs,
            }
        )
    return shown


def limit_json(state: LimitState) -> dict[str, Any]:
    """A limit as ``limits ls --json`` and the UI's API show it: who holds its slots, who
    waits (oldest first, with when each was requested) and how many slots are free."""
    return {
        "name": state.limit.name,
        "kind": state.limit.kind,
        "value": state.limit.value,
        "max_runs": state.limit.max_runs,
        "holders": sorted(state.holders),
        "waiting": [
            {"run_id": run_id, "requested_at": requested_at}
            for run_id, requested_at in state.waiting
        ],
        "free": state.free,
    }
