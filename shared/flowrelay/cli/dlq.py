"""``flowrelay dlq ls|redrive``: the stack's dead-letter queues (docs/dead-letters.md).

The queue URLs come from the stack's outputs (``--stack`` or ``FLOWRELAY_STACK``); the runs the
messages belong to are read from the table, as ``runs ls`` reads them.
"""

from __future__ import annotations

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.stack import (
    ConfigError,
    aws_client,
    current,
    current_outputs,
    open_store,
    reports_errors,
)
from flowrelay.control.dead_letters import (
    QUEUE_NAMES,
    DeadLetterQueues,
    RedriveResult,
    list_dead_letters,
)
from flowrelay.launchers.kinds import event_readers
from flowrelay.operations.dead_letters import redrive_letters

_QUEUE_OPTION = click.option(
    "--queue",
    type=click.Choice(QUEUE_NAMES),
    help="Only this dead-letter queue (default: all four).",
)


def _queues() -> DeadLetterQueues:
    try:
        return DeadLetterQueues.from_outputs(current_outputs(), event_readers())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@click.group()
def dlq() -> None:
    """Dead-letter queues: what failed, for which run and why; and sending it back."""


@dlq.command("ls")
@_QUEUE_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@reports_errors
def dlq_ls(queue: str | None, as_json: bool) -> None:
    """List the messages in the dead-letter queues, without taking them out.

    \b
    Each message is shown with the run it belongs to (when its body names one), and that
    run's state and message now: the functions record on the run why its message failed. For
    the delivery DLQ, "why" is EventBridge's delivery error instead, when it gave one.

    \b
    Examples:
      flowrelay dlq ls
      flowrelay dlq ls --queue dispatch --json
    """
    queues = _queues()
    letters = list_dead_letters(aws_client("sqs"), queues, only=queue, store=open_store(current()))
    if as_json:
        render.echo_json([letter.model_dump(mode="json") for letter in letters])
        return
    if not letters:
        where = f"the {queue} dead-letter queue" if queue else "the dead-letter queues"
        render.stderr.print(f"[dim]nothing in {where}[/]")
        return
    render.print_table(
        (
            "queue",
            "message id",
            "run id",
            "flow",
            "detail-type",
            "receives",
            "sent",
            "run state",
            "why",
        ),
        [
            (
                letter.queue,
                letter.message_id,
                letter.run_id or "",
                letter.flow or "",
                letter.detail_type or "(not an event)",
                str(letter.receive_count or ""),
                render.local_time(letter.sent_at),
                str(letter.run_state or ""),
                render.truncate(letter.why, 50),
            )
            for letter in letters
        ],
    )


@dlq.command("redrive")
@click.argument("message_ids", nargs=-1, metavar="[MESSAGE_ID]...")
@_QUEUE_OPTION
@click.option("--all", "redrive_all", is_flag=True, help="Every message (in --queue, if given).")
@click.option("--json", "as_json", is_flag=True, help="Print what happened to each message.")
@reports_errors
def dlq_redrive(
    message_ids: tuple[str, ...], queue: str | None, redrive_all: bool, as_json: bool
) -> None:
    """Send dead letters back to the queue they came from: the MESSAGE_IDs (from `dlq ls`), or
    --all.

    \b
    Each message is sent unchanged, then deleted from its DLQ. Safe to repeat: a request makes
    one run and launches it once however often it arrives. A message from the delivery DLQ goes
    to the queue its detail-type belongs to. Exit 1 when an id is not found or a message could
    not be placed.

    \b
    Examples:
      flowrelay dlq redrive 6a0c9f1e-...  7d2b...
      flowrelay dlq redrive --queue dispatch --all
    """
    results = redrive_letters(
        aws_client("sqs"),
        _queues(),
        message_ids=message_ids,
        everything=redrive_all,
        only=queue,
        field_names={"message_ids": "MESSAGE_IDs", "all": "--all"},
    )
    problems = [result for result in results if result.status != "moved"]
    if as_json:
        render.echo_json([result.model_dump(mode="json") for result in results])
    else:
        _print_results(results, redrive_all, queue)
    if problems:
        raise SystemExit(1)


def _print_results(results: list[RedriveResult], redrive_all: bool, queue: str | None) -> None:
    moved = [result for result in results if result.status == "moved"]
    for result in moved:
        run = f" (run {result.run_id})" if result.run_id else ""
        render.stdout.print(
            f"moved {escape(result.message_id)}: {result.queue} DLQ -> {result.to_queue} "
            f"queue{escape(run)}",
            highlight=False,
        )
    for result in results:
        if result.status == "skipped":
            render.stderr.print(
                f"[yellow]left in the {result.queue} DLQ[/]: {escape(result.message_id)}: "
                f"{escape(result.reason or '')}"
            )
        elif result.status == "not_found":
            render.stderr.print(
                f"[red]error:[/] not found: {escape(result.message_id)} (not in the DLQs, or "
                f"being read by someone else right now)"
            )
    if redrive_all and not results:
        where = f"the {queue} dead-letter queue is" if queue else "the dead-letter queues are"
        render.stderr.print(f"[dim]nothing to redrive: {where} empty[/]")
    elif moved:
        render.stdout.print(f"{len(moved)} message{'s' if len(moved) != 1 else ''} moved")
