"""``flowrelay ui``: the web UI (``flowrelay.ui``) over the stack the CLI talks to, served on
this machine. Its pages and its JSON API call the same ``flowrelay.operations`` the commands
do, with the user's own AWS credentials: nothing runs in AWS for it."""

from __future__ import annotations

import contextlib
import threading
import webbrowser
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.options import requested_by
from flowrelay.cli.stack import (
    ConfigError,
    StackNames,
    aws_client,
    current,
    current_outputs,
    reports_errors,
)

if TYPE_CHECKING:
    from flowrelay.ui.app import StackAccess

#: What to install when the UI's libraries are missing.
INSTALL_UI = "the web UI needs its extra: pip install 'flowrelay[ui]'"


def ui_available() -> str | None:
    """None when the UI's libraries are installed, else what to install."""
    import importlib.util

    for module in ("starlette", "uvicorn", "jinja2", "multipart"):
        if importlib.util.find_spec(module) is None:
            return INSTALL_UI
    return None


def stack_access(names: StackNames, outputs: Mapping[str, str] | ConfigError) -> StackAccess:
    """What the UI reads and acts on: the stack ``names`` name, as this command resolved it,
    with its outputs (or why this command could not read them, which the pages that need them
    say)."""
    from flowrelay.ui.app import StackAccess, UnavailableError

    lock = threading.Lock()
    made: dict[str, Any] = {}

    def kubernetes() -> Any:
        with lock:
            if "launcher" not in made:
                from flowrelay.launchers.kinds import build_launchers

                made["launcher"] = build_launchers(
                    aws_client,
                    table_name=names.table_name,
                    bus_name=names.bus_name,
                    kinds=("kubernetes",),
                )["kubernetes"]
            return made["launcher"]

    def stack_outputs() -> Mapping[str, str]:
        if isinstance(outputs, ConfigError):
            raise UnavailableError(str(outputs))
        return outputs

    return StackAccess(
        table_name=names.table_name,
        bus_name=names.bus_name,
        client=aws_client,
        outputs=stack_outputs,
        kubernetes=kubernetes,
        requested_by=requested_by().replace("flowrelay-cli", "flowrelay-ui", 1),
    )


def host_names(host: str, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The names a request may give as its Host besides loopback's: the address served on,
    and beyond loopback this machine's name and the ``--allow-host`` names. Never any name:
    a page of another site that points its own name at this machine (DNS rebinding) must not
    reach the UI."""
    import socket

    from flowrelay.ui.server import listens_beyond_loopback

    names = [host.strip("[]")]
    if listens_beyond_loopback(host):
        names += [socket.gethostname(), *allowed]
    return tuple(dict.fromkeys(name for name in names if name and name not in ("0.0.0.0", "::")))


def announce(url: str, host: str, hosts: tuple[str, ...] = ()) -> None:
    """Say where the UI is (and, served beyond loopback, that it has no authentication and
    which names it answers to)."""
    from flowrelay.ui.server import NO_AUTHENTICATION, listens_beyond_loopback

    render.stderr.print(f"[bold]flowrelay UI[/]: {escape(url)}  (Ctrl-C stops it)", highlight=False)
    if listens_beyond_loopback(host):
        port = url.rsplit(":", 1)[-1]
        warning = NO_AUTHENTICATION.format(host=host, port=port)
        render.stderr.print(f"[bold red]{escape(warning)}[/]", highlight=False)
        render.stderr.print(
            f"it answers requests to {escape(', '.join(hosts))} and loopback only; "
            "--allow-host NAME for another name this machine is reached by",
            highlight=False,
        )


@click.command("ui")
@click.option(
    "--port",
    type=click.IntRange(min=0, max=65535),
    default=8765,
    show_default=True,
    help="The port to serve on (0: any free port).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to serve on. Anything but loopback exposes the UI, which has no "
    "authentication, to your network: it says so loudly.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="With --host beyond loopback: another name or address the UI may be reached by (its "
    "Host header), besides the address served on and this machine's name. Repeatable.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the UI in a web browser.")
@reports_errors
def ui(port: int, host: str, allow_hosts: tuple[str, ...], open_browser: bool) -> None:
    """Serve the web UI on this machine: runs and their timelines, logs, flows and their
    schedules, targets, concurrency limits and dead letters, live; cancel, retry and redrive
    with a confirmation. It reads the stack the other commands read (the dev stack's export
    line, --stack or FLOWRELAY_STACK) with your AWS credentials, and needs no server in AWS.

    \b
    Examples:
      flowrelay ui --open
      flowrelay --stack prod ui --port 9000
    """
    missing = ui_available()
    if missing is not None:
        render.fail(missing, 2)
    from flowrelay.ui.app import create_app
    from flowrelay.ui.server import address_of, bind, serve

    names = current()
    context = click.get_current_context()
    try:
        outputs: Mapping[str, str] | ConfigError = current_outputs(context)
    except ConfigError as exc:
        outputs = exc

    sock = bind(host, port)
    hosts = host_names(host, allow_hosts)
    app = create_app(stack_access(names, outputs), allowed_hosts=hosts)
    url = address_of(sock)
    # uvicorn ends on Ctrl-C (SIGINT) or SIGTERM itself, after the requests in flight, then
    # raises the signal again for whoever else handles it; one before it serves ends here too.
    with contextlib.suppress(KeyboardInterrupt):
        announce(url, host, hosts)
        if open_browser:
            webbrowser.open(url)
        serve(app, sock)
    render.stderr.print("[dim]flowrelay UI stopped[/]")
