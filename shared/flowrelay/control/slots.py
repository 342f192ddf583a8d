"""Concurrency-limit slots: which limits a run needs, giving its slots back when it ends, handing
freed slots to the oldest waiting runs, and repairing what a crash left behind.

A slot is *taken* only by dispatch, in the same write as its launch claim
(``RunStore.claim_launch``): a run that cannot take every slot it needs is not launched, waits
in Queued, and is noted in the waiting list of the limit that refused it (``LimitStore.wait``).

A slot is *given back* when its run ends, wherever that is decided (``give_back``: the
recorder, dispatch failing a run, the monitor, a cancel). A freed slot is not left for whoever
asks next: it is *handed* to the limit's oldest waiting run (by request time), which then holds
it, and that run is woken (a request on the bus, ``wake``), so a burst is served first come,
first served and a newcomer cannot overtake a run that waits. Everything here is idempotent, so
a process killed half-way is finished by the redelivery of what it was doing, or by the
monitor's ``repair``.

>>> slots = Slots(store, wake=waking_by(publisher))  # doctest: +SKIP
>>> slots.give_back(run)  # the runs woken with the slots it held            # doctest: +SKIP
['0d5c...']
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from flowrelay.control.store import LimitState, Store
from flowrelay.core.concurrency import ConcurrencyLimit, applicable
from flowrelay.core.lifecycle import WAITING_STATES, RunState
from flowrelay.core.routing import choose_target
from flowrelay.core.runs import FlowRun

log = logging.getLogger("flowrelay.control.slots")

Wake = Callable[[FlowRun], None]


@dataclass(frozen=True)
class Repair:
    """One thing ``Slots.repair`` fixed: a slot given back, a waiter dropped, a run woken."""

    run_id: str
    action: str  # "released", "dropped", "woken"
    message: str


class Slots:
    """Concurrency-limit slots over ``store``; ``wake`` asks dispatch to look at a run again
    (None: nobody is woken, and the monitor's next pass offers the run)."""

    def __init__(self, store: Store, wake: Wake | None = None) -> None:
        self.store = store
        self.wake = wake

    def needed(self, run: FlowRun, target: str | None) -> list[ConcurrencyLimit]:
        """The limits ``run`` is subject to on ``target``, by name (one ``Query``)."""
        return self.needed_for(run.labels, run.flow_name, target)

    def needed_for(
        self, labels: list[str], flow: str, target: str | None
    ) -> list[ConcurrencyLimit]:
        """The limits a run of ``flow`` with ``labels`` is subject to on ``target`` (one
        ``Query``)."""
        limits = [state.limit for state in self.store.limits.list(slots=False)]
        return applicable(limits, labels, flow, target)

    def give_back(self, run: FlowRun | None) -> list[str]:
        """If ``run`` has ended, give back every slot it holds and stop it waiting, and hand
        the freed slots on (``hand_over``); the ids of the runs woken. Safe to repeat (a
        duplicate event, a redelivery after a crash half-way)."""
        if run is None or not run.state.is_final or not run.limits:
            return []
        return self.release(run.run_id, run.limits)

    def release(
        self, run_id: str, names: Collection[str], only_if_waiting: bool = False
    ) -> list[str]:
        """Give back ``run_id``'s slots of the limits ``names`` (and its places in their
        waiting lists), handing each freed slot on; the ids of the runs woken.
        ``only_if_waiting``: only while the run waits to be launched and no launch of it is
        under way (``LimitStore.release_if_waiting``)."""
        woken: list[str] = []
        for name in sorted(names):
            after = (
                self.store.limits.release_if_waiting(run_id, name)
                if only_if_waiting
                else self.store.limits.release(run_id, name)
            )
            if after is None:
                continue
            handed_now = self.hand_over(after)
            woken.extend(handed_now)
            # Handed a slot by an earlier delivery that died before waking it: woken now, so a
            # redelivery finishes what the first delivery began (a second wake is harmless).
            for holder in sorted(after.handed - set(handed_now) - {run_id}):
                if self._wake_if_waiting(holder):
                    woken.append(holder)
        return woken

    def _wake_if_waiting(self, run_id: str) -> bool:
        run = self.store.runs.get(run_id)
        if run is None or run.state not in WAITING_STATES:
            return False
        if self.wake is not None:
            self.wake(run)
        return True

    def hand_over(self, state: LimitState, quiet: str | None = None) -> list[str]:
        """Give the free slots of a limit to its oldest waiting runs (a waiter that ended or
        was launched meanwhile is dropped from the list) and wake them (all but ``quiet``, the
        run whose dispatch asks); their ids."""
        name = state.limit.name
        woken: list[FlowRun] = []
        # Each turn gives a slot or drops a waiter, or re-reads after losing a race.
        turns = len(state.waiting) * 2 + 3
        current: LimitState | None = state
        while current is not None and current.free > 0 and current.waiting and turns > 0:
            turns -= 1
            waiter_id = current.waiting[0][0]
            waiter = self.store.runs.get(waiter_id)
            if waiter is None or waiter.state not in WAITING_STATES:
                current = self.store.limits.drop_waiter(name, waiter_id)
                continue
            given = self.store.limits.give(name, waiter_id)
            if given is None:  # lost a race: another hand-over, a take, a removal
                current = self.store.limits.get(name)
                continue
            current = given
            woken.append(waiter)
        for run in woken:
            log.info("slot of limit %s handed to run %s", name, run.run_id)
            if self.wake is not None and run.run_id != quiet:
                self.wake(run)
        return [run.run_id for run in woken]

    def put(self, limit: ConcurrencyLimit) -> list[str]:
        """Create or change a limit; slots it frees (a higher ``max_runs``) are handed to the
        oldest waiting runs at once; their ids."""
        before = self.store.limits.get(limit.name)
        self.store.limits.put(limit)
        state = self.store.limits.get(limit.name)
        if state is None:
            return []
        woken = self.hand_over(state)
        if before is not None and (before.limit.kind, before.limit.value) != (
            limit.kind,
            limit.value,
        ):
            # It covers something else now: every run in its line is looked at again (those
            # it no longer covers are launched; the others wait again, in their place).
            for run_id, _ in state.waiting:
                if run_id not in woken and self._wake_if_waiting(run_id):
                    woken.append(run_id)
        return woken

    def remove(self, name: str) -> LimitState | None:
        """Remove a limit (None when there was none); the runs that waited for it are woken,
        as nothing holds them back any more (a removed limit is no longer applied)."""
        removed = self.store.limits.remove(name)
        if removed is None:
            return None
        for run_id, _ in removed.waiting:
            self._wake_if_waiting(run_id)
        return removed

    def repair(
        self, active: Mapping[str, FlowRun], now: datetime, woken: Collection[str] = ()
    ) -> list[Repair]:
        """What the monitor does for slots, in one pass: give back every slot held by a run
        that ended or does not exist, drop every waiter that is no longer waiting, hand free
        slots to the oldest waiters, and wake every Queued run that could take its slots now
        (it waits in no full limit: its wait was lost, or it was handed its slots and its wake
        was lost). ``active``: the active runs, by id, read before the limits (a run found in
        neither is read again, consistently, before anything is taken from it); ``woken``:
        runs woken already in this pass (not woken twice)."""
        repairs: list[Repair] = []
        states = {state.limit.name: state for state in self.store.limits.list()}
        for name in sorted(states):
            repairs.extend(self._repair_limit(states[name], active))
            fresh = self.store.limits.get(name)
            if fresh is None:
                del states[name]
            else:
                states[name] = fresh
        handed = {repair.run_id for repair in repairs if repair.action == "woken"} | set(woken)
        queued = [run for run in active.values() if run.state is RunState.QUEUED]
        targets = self.store.targets.list() if queued else []
        limits = [state.limit for state in states.values()]
        for run in queued:
            if run.run_id in handed:
                continue
            if run.launch_claimed(now) or (run.retry_at is not None and run.retry_at > now):
                continue
            # Only a limit that applies to the run now holds it back (a limit may have come
            # to cover something else, its target may be gone).
            target = choose_target(targets, run.labels, run.run_config).target
            applies = {
                limit.name
                for limit in applicable(
                    limits, run.labels, run.flow_name, target.name if target else None
                )
            }
            blocked = [
                name
                for name, state in states.items()
                if name in applies
                and run.run_id not in state.holders
                and state.free == 0
                and any(waiter == run.run_id for waiter, _ in state.waiting)
            ]
            if blocked:
                continue
            now_run = self.store.runs.get(run.run_id)  # the index read may predate a launch
            if now_run is None or now_run.state is not RunState.QUEUED:
                continue
            if self.wake is not None:
                self.wake(now_run)
            repairs.append(
                Repair(run.run_id, "woken", "Queued, and no full limit holds it back: offered")
            )
        return repairs

    def _repair_limit(self, state: LimitState, active: Mapping[str, FlowRun]) -> list[Repair]:
        """``repair`` for one limit: its slots held by runs that ended or do not exist given
        back, its waiters that no longer wait dropped, its free slots handed on."""
        name = state.limit.name
        repairs: list[Repair] = []
        current = state
        for holder in sorted(state.holders):
            ended = self._ended(holder, active)
            if ended is not None:
                after = self.store.limits.release(holder, name)
                repairs.append(
                    Repair(holder, "released", f"slot of limit {name!r} given back: {ended}")
                )
                current = after or current
        for waiter, _ in state.waiting:
            run = active.get(waiter) or self.store.runs.get(waiter)
            if run is None or run.state not in WAITING_STATES:
                after = self.store.limits.drop_waiter(name, waiter)
                why = "it does not exist" if run is None else f"it is {run.state}"
                repairs.append(
                    Repair(waiter, "dropped", f"no longer waits for limit {name!r}: {why}")
                )
                current = after or current
        repairs.extend(
            Repair(run_id, "woken", f"handed a free slot of limit {name!r}")
            for run_id in self.hand_over(current)
        )
        return repairs

    def _ended(self, run_id: str, active: Mapping[str, FlowRun]) -> str | None:
        """Why a slot holder has no right to its slot (it ended, or does not exist); None
        when it is active."""
        if run_id in active:
            return None
        run = self.store.runs.get(run_id)  # not in the index read: read it, consistently
        if run is None:
            return f"run {run_id} does not exist"
        if run.state.is_final:
            return f"run {run_id} is {run.state}"
        return None
