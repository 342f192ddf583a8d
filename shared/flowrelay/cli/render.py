"""How the CLI shows things: tables on a terminal, plain columns in a pipe, JSON for scripts,
one error line; a flow run in this process as live task lines and a table; a run's timeline."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from datetime import datetime
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowrelay.core.lifecycle import RunState
from flowrelay.core.runs import FlowRun, HistoryEntry
from flowrelay.sdk.engine import failure_causes, failure_traceback
from flowrelay.sdk.flow import Flow
from flowrelay.sdk.secrets import RedactSecrets, SecretBase
from flowrelay.sdk.states import State

STYLES = {
    "Success": "green",
    "Mapped": "green",
    "Cached": "green",
    "Skipped": "cyan",
    "Failed": "red",
    "TriggerFailed": "yellow",
    "TimedOut": "red",
    "Crashed": "red",
    "Cancelling": "magenta",
    "Cancelled": "magenta",
}
_RUN_STATES = frozenset(str(state) for state in RunState)
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


class _LiveTaskLines(logging.Handler):
    """Prints, as it happens, one line per finished task (and each retry) when ``progress`` is
    on, and what the tasks' own loggers (``context.get("logger")``, ``log_stdout``) say."""

    def __init__(self, progress: bool) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        style = "yellow" if record.levelno >= logging.WARNING else "dim"
        if record.name == "flowrelay.task":
            if self.progress:
                stderr.print(f"  {record.getMessage()}", style=style, markup=False)
            return
        task = record.name.removeprefix("flowrelay.task.")
        stderr.print(f"  {task}: {record.getMessage()}", style=style, markup=False)


@contextmanager
def live_task_lines(enabled: bool = True, progress: bool = True) -> Iterator[None]:
    """Show task progress (unless ``progress`` is False) and the tasks' own log lines on stderr
    while a flow runs in this process."""
    if not enabled:
        yield
        return
    logger = logging.getLogger("flowrelay.task")
    handler = _LiveTaskLines(progress)
    handler.addFilter(RedactSecrets())  # a secret the flow read is never shown
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
    # One line, whatever the message holds (a library's multi-line text, a pasted page).
    stderr.print(f"[red]error:[/] {escape(' '.join(message.split()))}")
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
                "result": _shown_result(task, task_state),
                "children": len(task_state.map_states)
                if task_state.map_states is not None
                else None,
                "traceback": failure_traceback(task_state) if task_state.is_failed() else None,
            }
        )
    return rows


def _shown_result(task: Any, state: State) -> Any:
    if isinstance(task, SecretBase):
        return "***"  # a secret's value is never shown
    return state.result if state.is_successful() else None


def print_run(flow: Flow, state: State) -> None:
    table = Table(title=f"flow {flow.name!r}: {state.name}", title_justify="left")
    for column in ("task", "state", "result / message"):
        table.add_column(column)
    for row in task_rows(flow, state):
        detail = (
            short(row["result"])
            if row["state"] in ("Success", "Mapped", "Cached")
            else (row["message"] or "")
        )
        if row["attempts"] > 1:
            detail += f"  ({row['attempts']} attempts)"
        table.add_row(
            row["task"], f"[{STYLES.get(row['state'], 'white')}]{row['state']}[/]", detail
        )
    stdout.print(table)
    stdout.print(f"[{STYLES.get(state.name, 'white')}]{state.name}[/]: {state.message}")
    task_states: dict[Any, State] = state.result or {}
    for task in failure_causes(flow, task_states):
        trace = failure_traceback(task_states[task])
        if trace is not None:
            # The error's story, where the failure started (the run's log has every line).
            stderr.print(f"[red]{escape(flow.slug(task))}[/] failed:", highlight=False)
            stderr.print(trace, markup=False, highlight=False)


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


def local_time(moment: datetime | None, with_date: bool = True) -> str:
    if moment is None:
        return ""
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def styled(state: RunState) -> str:
    style = STYLES.get(str(state), "cyan" if state.is_active else "white")
    return f"[{style}]{state}[/]"


def print_table(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], title: str | None = None
) -> None:
    """A table on a terminal; aligned plain columns otherwise, so piped output is whole (a rich
    table squeezed into 80 columns cuts ids) and easy to grep or ``awk``. Cells are plain text;
    a ``state`` column of run states is coloured on a terminal (a schedule's ENABLED is shown
    as it is)."""
    console = stdout
    if not console.is_terminal:
        if title:
            console.print(title, markup=False)
        widths = [max(len(row[index]) for row in [columns, *rows]) for index in range(len(columns))]
        for row in [columns, *rows]:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            console.print(line.rstrip(), markup=False)
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        # The message gives way first; ids, states and times stay whole and on one line.
        table.add_column(column, no_wrap=column != "message", overflow="fold")
    state_at = columns.index("state") if "state" in columns else None
    for row in rows:
        cells = [escape(cell) for cell in row]
        if state_at is not None and row[state_at] in _RUN_STATES:
            cells[state_at] = styled(RunState(row[state_at]))
        table.add_row(*cells)
    console.print(table)


def truncate(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def timeline_line(entry: HistoryEntry) -> str:
    return timeline(entry.at, entry.state, str(entry.source), entry.message)


def timeline(at: datetime, state: RunState, source: str, message: str | None) -> str:
    """One line of ``run --watch``: time, state, who said so, and why."""
    padded = styled(state) + " " * max(0, 10 - len(str(state)))
    return f"{local_time(at, with_date=False)}  {padded}  {source:<14}  {escape(message or '')}"


def run_json(run: FlowRun, history: list[HistoryEntry]) -> dict[str, Any]:
    return {
        "run": run.model_dump(mode="json"),
        "history": [entry.model_dump(mode="json") for entry in history],
    }
