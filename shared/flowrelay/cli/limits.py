"""``flowrelay limits put|ls|rm``: the concurrency limits in the stack's table, who holds their
slots and who waits (docs/concurrency.md).

A change goes through ``Slots`` as the functions' do: slots a higher ``--max`` frees are handed
to the oldest waiting runs at once, and removing a limit wakes the runs that waited for it; a
woken run is asked for again on the stack's bus, as the Lambda functions wake it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.stack import StackNames, aws_client, current, open_store, reports_errors
from flowrelay.control.store import LimitState, Store
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.operations.limits import limit_json

if TYPE_CHECKING:
    from flowrelay.control.slots import Slots

#: What a limit's name may be, in words (``ConcurrencyLimit.name``'s pattern).
NAME_RULE = (
    "1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit "
    "(it is the limit's key in the table)"
)
#: The options that say what a limit covers, by kind.
SELECTORS = {"label": "--label", "flow": "--flow", "target": "--target"}
#: Waiting runs shown in one cell of ``limits ls`` (--json lists them all).
SHOWN_WAITERS = 5
#: Holders named in one cell or line (--json lists them all).
SHOWN_HOLDERS = 5


@click.group()
def limits() -> None:
    """Concurrency limits: at most N runs at once that carry a label, are of a flow, or run on
    a target. A run over a limit waits in Queued until a slot is handed to it."""


def _slots(store: Store, names: StackNames, woken: list[str]) -> Slots:
    """``Slots`` over the stack's table whose ``wake`` publishes a request for the run on the
    stack's bus, as the functions' wiring does (``handlers.wiring.slots``); each woken run's id
    is appended to ``woken``."""
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.monitor import waking_by
    from flowrelay.control.slots import Slots
    from flowrelay.core.runs import FlowRun

    publish = waking_by(Publisher(aws_client("events"), names.bus_name))

    def wake(run: FlowRun) -> None:
        publish(run)
        woken.append(run.run_id)

    return Slots(store, wake=wake)


def runs_word(count: int) -> str:
    return "run" if count == 1 else "runs"


def named(run_ids: list[str], most: int) -> str:
    """``a, b, c`` or ``a, b, c and 4 more``."""
    shown = ", ".join(run_ids[:most])
    more = len(run_ids) - most
    return f"{shown} and {more} more" if more > 0 else shown


@limits.command("put")
@click.argument("name")
@click.option("--label", metavar="LABEL", help="Limit the runs that carry this label.")
@click.option("--flow", "flow_name", metavar="FLOW", help="Limit the runs of this flow.")
@click.option("--target", metavar="TARGET", help="Limit the runs launched on this target.")
@click.option(
    "--max",
    "max_runs",
    type=int,
    required=True,
    metavar="N",
    help="At most N runs at once (0 pauses: nothing it covers is launched).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the limit as JSON.")
@reports_errors
def limits_put(
    name: str,
    label: str | None,
    flow_name: str | None,
    target: str | None,
    max_runs: int,
    as_json: bool,
) -> None:
    """Create or change the concurrency limit NAME: at most --max runs at once among the runs
    that carry --label, are of --flow, or run on --target (exactly one of them).

    \b
    A run is subject to every limit that applies to it; one over a limit waits in Queued and is
    launched, oldest first, when a slot is free. Raising --max hands the freed slots to the
    oldest waiting runs at once; lowering it takes effect at the next launch (no run that holds
    a slot loses it). --max 0 pauses what the limit covers.

    \b
    Examples:
      flowrelay limits put warehouse --label warehouse --max 3
      flowrelay limits put nightly --flow etl --max 1
      flowrelay limits put fargate --target fargate --max 20
      flowrelay limits put warehouse --label warehouse --max 0   # pause
    """
    given = {
        kind: value
        for kind, value in (("label", label), ("flow", flow_name), ("target", target))
        if value is not None
    }
    if not given:
        render.fail(
            f"say what limit {name!r} covers: one of --label LABEL, --flow FLOW or --target TARGET",
            2,
        )
    if len(given) > 1:
        both = " and ".join(SELECTORS[kind] for kind in given)
        render.fail(
            f"a limit covers one thing: give one of --label, --flow or --target, not {both} "
            f"(one limit each)",
            2,
        )
    [(kind, value)] = given.items()
    if max_runs < 0:
        render.fail(f"--max {max_runs}: give a number of runs, 0 or more (0 pauses)", 2)
    try:
        limit = ConcurrencyLimit(name=name, kind=kind, value=value, max_runs=max_runs)
    except ValidationError as exc:
        render.fail(f"invalid limit {name!r}: {_problems(exc, SELECTORS[kind])}", 2)
    names = current()
    store = open_store(names)
    before = store.limits.get(name)
    handed = _slots(store, names, []).put(limit)
    after = store.limits.get(name)
    if after is None:  # removed by someone else in between
        render.fail(f"limit {name!r} was removed while it was being saved; put it again", 1)
    if as_json:
        render.echo_json({**limit_json(after), "woken": handed})
        return
    _notes(store, limit, before, after)
    holding, waiting = len(after.holders), len(after.waiting)
    render.stdout.print(
        escape(
            f"limit {limit.name}: {limit.describe()} "
            f"({holding} holding, {waiting} waiting; woke {len(handed)})"
        )
    )


def _problems(error: ValidationError, selector: str) -> str:
    """A limit's validation errors, named as the user gave them (NAME, --label, --max)."""
    parts = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        if field == "name":
            parts.append(f"NAME: {NAME_RULE}")
        elif field == "value":
            parts.append(f"{selector}: {item['msg'].lower()}")
        elif field == "max_runs":
            parts.append(f"--max: {item['msg'].lower()}")
        else:
            parts.append(f"{field or 'limit'}: {item['msg']}")
    return "; ".join(parts)


def _notes(
    store: Store, limit: ConcurrencyLimit, before: LimitState | None, after: LimitState
) -> None:
    """What the user may not expect after ``limits put``, on stderr: a limit whose target or
    flow does not exist (yet), a change of what the limit covers, more holders than the new
    maximum."""
    notes: list[str] = []
    if limit.kind == "target" and store.targets.get(limit.value) is None:
        notes.append(f"no target {limit.value!r} yet: the limit applies once runs launch there")
    if limit.kind == "flow" and store.flows.get(limit.value) is None:
        notes.append(f"no flow {limit.value!r} registered yet: the limit applies to its runs")
    if before is not None and (before.limit.kind, before.limit.value) != (
        limit.kind,
        limit.value,
    ):
        notes.append(
            f"it covered {before.limit.kind} {before.limit.value!r} before: the runs that hold "
            f"its slots keep them until they end"
        )
    if len(after.holders) > limit.max_runs:
        notes.append(
            f"{len(after.holders)} {runs_word(len(after.holders))} hold slots, more than "
            f"{limit.max_runs}: none loses its slot, and the next waits until fewer than "
            f"{limit.max_runs} hold one"
            if limit.max_runs > 0
            else f"{len(after.holders)} {runs_word(len(after.holders))} hold slots: they go on; "
            f"no run it covers is launched until the limit is raised"
        )
    for note in notes:
        render.stderr.print(f"[yellow]note:[/] {escape(note)}", highlight=False)


@limits.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the limits as JSON.")
@reports_errors
def limits_ls(as_json: bool) -> None:
    """List the concurrency limits: what each covers, who holds its slots, who waits (oldest
    first, with when each was requested)."""
    found = open_store(current()).limits.list()
    if as_json:
        render.echo_json([limit_json(state) for state in found])
        return
    if not found:
        render.stderr.print("[dim]no concurrency limits[/]")
        return
    render.print_table(
        ("name", "kind", "value", "max", "holding", "held by", "waiting (oldest first)"),
        [
            (
                state.limit.name,
                state.limit.kind,
                state.limit.value,
                str(state.limit.max_runs),
                f"{len(state.holders)}/{state.limit.max_runs}",
                named(sorted(state.holders), SHOWN_HOLDERS),
                _waiters(state),
            )
            for state in found
        ],
    )


def _waiters(state: LimitState) -> str:
    """``r-2 (12:00:01), r-3 (12:00:02) and 4 more``: the oldest waiting runs and when they
    were requested."""
    shown = [
        f"{run_id} ({render.local_time(datetime.fromisoformat(requested_at))})"
        for run_id, requested_at in state.waiting
    ]
    return named(shown, SHOWN_WAITERS)


@limits.command("rm")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the removed limit as JSON.")
@reports_errors
def limits_rm(name: str, as_json: bool) -> None:
    """Remove the concurrency limit NAME. The runs that waited for it are woken (nothing it
    covered holds them back any more); the runs that held its slots go on."""
    names = current()
    store = open_store(names)
    woken: list[str] = []
    removed = _slots(store, names, woken).remove(name)
    if removed is None:
        render.fail(f"no concurrency limit {name!r} (flowrelay limits ls)", 1)
    if as_json:
        render.echo_json({**limit_json(removed), "removed": True, "woken": woken})
        return
    render.stdout.print(
        escape(
            f"removed limit {name}: {removed.limit.describe()} "
            f"(woke {len(woken)} waiting {runs_word(len(woken))})"
        )
    )


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 21st."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def run_limit_lines(
    limits_of_run: list[dict[str, Any]], waiting: bool = False
) -> list[tuple[str, str]]:
    """``runs show``'s lines for a run's limits (from ``run_limits``): what it waits for, and
    the slots it holds; a limit it neither holds nor waits for is not shown. ``waiting``: the
    run is not launched yet (a slot it holds was handed to it, and its launch is on its way)."""
    lines = []
    for limit in limits_of_run:
        holders: list[str] = limit["holders"]
        what = f"{limit['kind']} {limit['value']!r}"
        if limit["max_runs"] == 0:
            usage = f"{what} paused (max 0)"
        else:
            usage = f"{what} {len(holders)}/{limit['max_runs']}"
        if limit["waiting_position"] is not None:
            held = f", held by {named(holders, SHOWN_HOLDERS)}" if holders else ""
            place = f"{ordinal(limit['waiting_position'])} in line"
            lines.append(("waiting for", f"limit {limit['name']!r} ({usage}{held}; {place})"))
        elif limit["holding"]:
            handed = "; handed to it: its launch is on its way" if waiting else ""
            lines.append(("holds a slot of", f"limit {limit['name']!r} ({usage}{handed})"))
    return lines
