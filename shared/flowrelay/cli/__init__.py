"""The ``flowrelay`` command.

Exit codes, everywhere: 0 success, 1 the flow run (or the thing asked for) failed, 2 a usage or
loading error (the message says what to fix), 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import sys

import click

from flowrelay import __version__

# The commands' modules, imported as modules: each defines its command under its own name, and
# the package's attributes stay the modules (``flowrelay.cli.runs`` is the module, not the group).
from flowrelay.cli import (
    demo,
    dev,
    dlq,
    invoke,
    local,
    monitor,
    register,
    run,
    runs,
    targets,
)
from flowrelay.cli.stack import STACK_META_KEY


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    targets.targets,
    dlq.dlq,
    monitor.monitor,
    invoke.invoke,
    local.run_local,
    local.schema,
    demo.demo,
    dev.dev,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(standalone_mode=True))
