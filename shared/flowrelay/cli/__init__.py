"""The ``flowrelay`` command.

Exit codes, everywhere: 0 success, 1 the flow run (or the thing asked for) failed, 2 a usage or
loading error (the message says what to fix), 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import sys

import click

from flowrelay import __version__
from flowrelay.cli.local import demo, run_local, schema


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="flowrelay")
def cli() -> None:
    """flowrelay: Python workflow runs on AWS with no always-on agent."""


cli.add_command(run_local)
cli.add_command(demo)
cli.add_command(schema)


def main() -> None:
    """Console-script entry point."""
    sys.exit(cli.main(standalone_mode=True))
