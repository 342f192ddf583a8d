"""How the CLI shows flow runs: live task lines while running, a table (or JSON) at the end."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowrelay.sdk.flow import Flow
from flowrelay.sdk.states import State

STYLES = {
    "Success": "green",
    "Mapped": "green",
    "Failed": "red",
    "TriggerFailed": "yellow",
    "TimedOut": "red",
    "Crashed": "red",
    "Cancelling": "magenta",
    "Cancelled": "magenta",
}
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class _LiveTaskLines(logging.Handler):
    """Prints one line per finished task (and each retry) as it happens."""

    def emit(self, record: logging.LogRecord) -> None:
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        stderr.print(f"  {record.getMessage()}", style=style, markup=False)


@contextmanager
def live_task_lines(enabled: bool = True) -> Iterator[None]:
    """Show task progress on stderr while a flow runs in this process."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("flowrelay.task")
    handler = _LiveTaskLines(logging.INFO)
    saved_level, saved_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
        logger.propagate = saved_propagate


@contextmanager
def task_prints_to_stderr(enabled: bool = True) -> Iterator[None]:
    """Keep stdout for our JSON: what tasks print goes to stderr while ``enabled``."""
    if not enabled:
        yield
        return
    with redirect_stdout(sys.stderr):
        yield


def fail(message: str, code: int = 1) -> NoReturn:
    """Every CLI error ends here: one line on stderr (escaped, so a ``[...]`` in the message is
    shown rather than read as markup) and the exit code (2 usage/config, 1 failed/not found)."""
    stderr.print(f"[red]error:[/] {escape(message)}")
    sys.exit(code)


def short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def task_rows(flow: Flow, state: State) -> list[dict[str, Any]]:
    """One row per task, in run order, as plain data (for tables and --json)."""
    task_states: dict[Any, State] = state.result or {}
    rows = []
    for task in flow.sorted_tasks():
        task_state = task_states.get(task)
        if task_state is None or type(task).__name__ == "Collection":
            continue
        rows.append(
            {
                "task": flow.slug(task),
                "state": task_state.name,
                "attempts": task_state.attempts,
                "message": task_state.message,
                "result": task_state.result if task_state.is_successful() else None,
                "children": len(task_state.map_states)
                if task_state.map_states is not None
                else None,
            }
        )
    return rows


def print_run(flow: Flow, state: State) -> None:
    table = Table(title=f"flow {flow.name!r}: {state.name}", title_justify="left")
    for column in ("task", "state", "result / message"):
        table.add_column(column)
    for row in task_rows(flow, state):
        detail = (
            short(row["result"])
            if row["state"] in ("Success", "Mapped")
            else (row["message"] or "")
        )
        if row["attempts"] > 1:
            detail += f"  ({row['attempts']} attempts)"
        table.add_row(
            row["task"], f"[{STYLES.get(row['state'], 'white')}]{row['state']}[/]", detail
        )
    stdout.print(table)
    stdout.print(f"[{STYLES.get(state.name, 'white')}]{state.name}[/]: {state.message}")


def run_as_json(flow: Flow, state: State) -> str:
    def plain(value: Any) -> Any:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return repr(value)
        return value

    rows = task_rows(flow, state)
    for row in rows:
        row["result"] = plain(row["result"])
    return json.dumps(
        {"flow": flow.name, "state": state.name, "message": state.message, "tasks": rows}, indent=2
    )
