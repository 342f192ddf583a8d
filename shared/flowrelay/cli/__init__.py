"""The ``flowrelay`` command.

Exit codes, everywhere: 0 success, 1 the flow run (or the thing asked for) failed, 2 a usage or
loading error (the message says what to fix), 130/143 interrupted by SIGINT/SIGTERM (``dev up``
and ``monitor --every`` run until stopped: stopping them is exit 0).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from flowrelay import __version__

# The commands' modules, imported as modules: each defines its command under its own name, and
# the package's attributes stay the modules (``flowrelay.cli.runs`` is the module, not the group).
from flowrelay.cli import (
    demo,
    dev,
    dlq,
    flows,
    invoke,
    limits,
    local,
    monitor,
    register,
    render,
    run,
    runs,
    schedules,
    targets,
    ui,
)
from flowrelay.cli.stack import STACK_META_KEY


class FlowrelayGroup(click.Group):
    """The command group, refusing arguments that are not UTF-8 before any command sees them:
    names, values and paths are stored and sent as UTF-8 text, and Python hands such bytes on
    as text that cannot be encoded (a traceback wherever it is first written)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for position, arg in enumerate(args, start=1):
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError as exc:
                raw = arg.encode("utf-8", "surrogateescape")
                raise click.UsageError(
                    f"argument {position} ({raw!r}) is not UTF-8 text (byte {exc.start + 1} "
                    f"is not): flowrelay's names, values and paths are UTF-8",
                    ctx,
                ) from None
        return super().parse_args(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's main, with its usage errors as every other error of the CLI: one line on
        stderr (``error: ...`` and where to read more), exit 2."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            return super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message(), err=True)  # the help, asked for by asking nothing
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            context = exc.ctx
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            render.fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except click.ClickException as exc:
            render.fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            render.fail("aborted", 1)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


@click.group(
    "flowrelay", cls=FlowrelayGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="flowrelay")
@click.option(
    "--stack",
    metavar="NAME",
    help="The deployed stack to use (its TableName/BusName outputs). Default: "
    "FLOWRELAY_TABLE_NAME and FLOWRELAY_BUS_NAME if set, else the stack FLOWRELAY_STACK.",
)
@click.pass_context
def cli(ctx: click.Context, stack: str | None) -> None:
    """flowrelay: Python workflow runs on AWS with no always-on agent."""
    ctx.meta[STACK_META_KEY] = stack


for _command in (
    register.register,
    run.run,
    runs.runs,
    schedules.schedules,
    flows.flows,
    targets.targets,
    limits.limits,
    dlq.dlq,
    monitor.monitor,
    invoke.invoke,
    local.run_local,
    local.schema,
    demo.demo,
    dev.dev,
    ui.ui,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    try:
        sys.exit(cli.main(standalone_mode=True))
    except UnicodeError as exc:
        # Text that is not UTF-8 from elsewhere than the arguments (a file, the environment):
        # one line, as for any other bad input.
        render.fail(f"not UTF-8 text: {exc}", 2)
