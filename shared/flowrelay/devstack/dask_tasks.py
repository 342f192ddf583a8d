"""Dask's scheduler and worker as the dev stack runs them, for an ECS task or a Kubernetes pod.

Both of the dev stack's Dask clusters start their servers from a container's command:
dask-cloudprovider's ``FargateCluster`` and ``ECSCluster`` as ECS tasks whose command is
``dask-scheduler ...`` or ``dask-worker <scheduler> ...``; dask-kubernetes's operator (emulated,
``kubernetes/dask_operator.py``) as pods whose ``args`` the Dask image's entrypoint runs
(``dask-scheduler --host 0.0.0.0``, ``dask-worker --name ... --dashboard-address 8788``, or the
cluster's ``worker_command``, which may be ``dask worker``). Two things stop those commands from
running here as they are:

- distributed 2026.6.0 removed the ``dask-scheduler`` and ``dask-worker`` console scripts (the
  ``dask scheduler`` and ``dask worker`` subcommands replace them; dask-cloudprovider issue 485),
  so this venv has no such programs. Either spelling runs as ``<this python> -m dask scheduler``
  or ``-m dask worker``, with the arguments the command gave.
- In a container every server binds the container's own network interface. Here every task and
  pod shares the machine: the dev stack gives each awsvpc task (``moto_fixes``) and each pod
  (``kubernetes/jobs.py``) a loopback address of its own (127.77.x.y, 127.88.x.y, which Linux
  routes to ``lo``), and the command is made to bind it, whatever interface it named (every
  one, as distributed's defaults and the operator's ``0.0.0.0`` do, or a specific one, which
  here could only be another's): ``--host`` (a worker's ``--listen-address`` instead, when it
  has one: distributed refuses both), and the HTTP server's ``--dashboard-address`` (unless
  ``--no-dashboard``), keeping the ports the command named (a pod's probes and Service name
  them). Two schedulers on every interface would clash on 8787.

Nothing else is changed: a command whose program is not one of these runs as it is.
``dask-cuda-worker`` (and ``dask cuda worker``) is refused with the reason (no GPU in the dev
stack), and so is a worker told to reach a scheduler anywhere but loopback (nothing in the dev
stack connects outside it) and a server without a loopback address of its own to bind.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from flowrelay.core.network import is_loopback_host

#: The console scripts distributed no longer has, and the ``dask`` subcommand of each.
SUBCOMMANDS = {"dask-scheduler": "scheduler", "dask-worker": "worker"}
GPU_WORKER = "dask-cuda-worker"
#: The port of each server's HTTP server when the command names none: distributed's defaults
#: (the scheduler's ``:8787``; a worker's ``:0``, any free one).
DASHBOARD_PORTS = {"scheduler": "8787", "worker": "0"}


def task_address(task: Mapping[str, Any]) -> str | None:
    """The private IPv4 address of the task's network interface (awsvpc), as ECS describes it in
    the task's ``ElasticNetworkInterface`` attachment; None without one."""
    for attachment in task.get("attachments") or []:
        if attachment.get("type") != "ElasticNetworkInterface":
            continue
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    return None


def local_dask_command(command: list[str], host: str | None) -> list[str]:
    """``command`` as this machine runs it: a Dask scheduler or worker (``dask-scheduler``,
    ``dask-worker``, ``dask scheduler``, ``dask worker``, in any directory) as the ``dask`` CLI of
    this Python, bound to ``host``, the task's or pod's loopback address; any other command as
    it is. ``ValueError`` saying why when a Dask one cannot run here.

    >>> local_dask_command(["dask-scheduler", "--idle-timeout", "5 minutes"], "127.77.0.1")[2:]
    ['dask', 'scheduler', '--idle-timeout', '5 minutes', '--host', '127.77.0.1', \
'--dashboard-address', '127.77.0.1:8787']
    >>> local_dask_command(["dask-scheduler", "--host", "0.0.0.0"], "127.88.0.2")[2:]
    ['dask', 'scheduler', '--host', '127.88.0.2', '--dashboard-address', '127.88.0.2:8787']
    >>> local_dask_command(["/usr/bin/dask", "worker", "tcp://127.88.0.2:8786"], "127.88.0.3")[2:]
    ['dask', 'worker', 'tcp://127.88.0.2:8786', '--host', '127.88.0.3', '--dashboard-address', \
'127.88.0.3:0']
    >>> local_dask_command(["flowrelay-runner", "--host", "0.0.0.0"], None)
    ['flowrelay-runner', '--host', '0.0.0.0']
    """
    found = _role(command)
    if found is None:
        return list(command)
    role, arguments = found
    # The program as the command names it, without its directory: "dask-worker", "dask worker".
    program = " ".join(
        [PurePosixPath(command[0]).name, *command[1 : len(command) - len(arguments)]]
    )
    if role == "cuda-worker":
        raise ValueError(
            f"{program} needs a GPU and dask-cuda, which the dev stack does not have: "
            f"run the cluster without worker_gpu"
        )
    if host is None or not is_loopback_host(host):
        raise ValueError(
            f"{program} needs the task's own loopback address to bind, and the task has "
            f"{host or 'no address'} (the dev stack gives one to awsvpc tasks and pods only)"
        )
    options = _Options.parse(role, arguments)
    if role == "worker" and options.positional:
        scheduler = options.positional[0]
        if not is_loopback_host(_host_of(scheduler)):
            raise ValueError(
                f"{program} would connect to the scheduler at {scheduler}: nothing in the dev "
                f"stack connects outside loopback"
            )
    arguments = list(arguments)
    added: list[str] = []
    if role == "worker" and "--listen-address" in options.values:
        options.rewrite(arguments, "--listen-address", lambda value: _on_host(value, host, ""))
    elif "--host" in options.values:
        options.rewrite(arguments, "--host", lambda value: host)
    else:
        added += ["--host", host]
    if options.last_of("--dashboard", "--no-dashboard") != "--no-dashboard":
        port = DASHBOARD_PORTS[role]
        if "--dashboard-address" in options.values:
            options.rewrite(arguments, "--dashboard-address", lambda v: _on_host(v, host, port))
        else:
            added += ["--dashboard-address", f"{host}:{port}"]
    # Before a "--", after which the scheduler and worker read their preloads' arguments.
    arguments[options.end : options.end] = added
    return [sys.executable, "-m", "dask", role, *arguments]


def _role(command: list[str]) -> tuple[str, list[str]] | None:
    """What ``command`` starts (``scheduler``, ``worker`` or ``cuda-worker``) and the arguments
    after its program's name; None when it is no Dask server."""
    if not command:
        return None
    program = PurePosixPath(command[0]).name
    if program in SUBCOMMANDS:
        return SUBCOMMANDS[program], command[1:]
    if program == GPU_WORKER:
        return "cuda-worker", command[1:]
    if program == "dask" and command[1:2] in (["scheduler"], ["worker"]):
        return command[1], command[2:]
    if program == "dask" and command[1:3] == ["cuda", "worker"]:
        return "cuda-worker", command[3:]
    return None


@dataclass
class _Options:
    """The options of a ``dask scheduler`` or ``dask worker`` command line, read as its click
    command reads them, up to a ``--`` (``end``: its index, or the end of the arguments)."""

    #: Each option given a value: where its values are, as (index, inline): ``--name value``
    #: (the value's own token) or ``--name=value`` (in the option's token).
    values: dict[str, list[tuple[int, bool]]] = field(default_factory=dict)
    #: The options that take no value (``--dashboard``, ``--no-dashboard``...), in order.
    flags: list[str] = field(default_factory=list)
    positional: list[str] = field(default_factory=list)
    end: int = 0

    @classmethod
    def parse(cls, role: str, arguments: list[str]) -> _Options:
        flags = _flags(role)
        parsed = cls(end=len(arguments))
        pending: str | None = None  # an option whose value is the next token
        for index, token in enumerate(arguments):
            if pending is not None:
                parsed.values.setdefault(pending, []).append((index, False))
                pending = None
            elif token == "--":
                parsed.end = index
                break
            elif token.startswith("--") and "=" in token:
                name = token.split("=", 1)[0]
                parsed.values.setdefault(name, []).append((index, True))
            elif token in flags:
                parsed.flags.append(token)
            elif token.startswith("-"):
                # Any other option takes a value (an unknown one too: dask refuses it at start,
                # naming it, so guessing wrong changes nothing that runs).
                pending = token
            else:
                parsed.positional.append(token)
        return parsed

    def last_of(self, *flags: str) -> str | None:
        """The last given of ``flags`` (click keeps a flag's last value), None for none."""
        return next((flag for flag in reversed(self.flags) if flag in flags), None)

    def rewrite(self, arguments: list[str], name: str, change: Callable[[str], str]) -> None:
        """Every value of the option ``name`` in ``arguments`` replaced by ``change(value)``."""
        for index, inline in self.values.get(name, []):
            if inline:
                arguments[index] = f"{name}={change(arguments[index].split('=', 1)[1])}"
            else:
                arguments[index] = change(arguments[index])


@functools.cache
def _flags(role: str) -> frozenset[str]:
    """The options of ``dask <role>`` that take no value, as this venv's distributed declares
    them (every other option of both takes one value an occurrence): read from its click
    commands rather than listed here, so a distributed that adds a flag is read right."""
    import click
    from distributed.cli import dask_scheduler, dask_worker

    command: click.Command = {"scheduler": dask_scheduler.main, "worker": dask_worker.main}[role]
    return frozenset(
        name
        for param in command.get_params(click.Context(command))
        if isinstance(param, click.Option) and (param.is_flag or param.count)
        for name in (*param.opts, *param.secondary_opts)
    )


def _on_host(address: str, host: str, default_port: str) -> str:
    """``address`` as Dask's options take one (``[scheme://][host][:port]``, or a port alone:
    ``8788``) on ``host``, with its scheme and port (``default_port`` when it names none).

    >>> _on_host("8788", "127.88.0.2", "0"), _on_host("tcp://[::]:9000", "127.88.0.2", "")
    ('127.88.0.2:8788', 'tcp://127.88.0.2:9000')
    """
    scheme, separator, rest = address.rpartition("://")
    if rest.isdigit():
        port = rest
    elif rest.startswith("["):
        port = rest.partition("]")[2].removeprefix(":")
    else:
        port = rest.rpartition(":")[2] if ":" in rest else ""
    port = port or default_port
    return f"{scheme}{separator}{host}{':' + port if port else ''}"


def _host_of(address: str) -> str:
    """The host of a Dask address: ``tcp://host:port``, ``host:port`` or ``[v6]:port``."""
    rest = address.split("://", 1)[-1]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest
