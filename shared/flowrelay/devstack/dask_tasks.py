"""Dask's scheduler and worker as the dev stack runs them when an ECS task asks for them.

dask-cloudprovider's ``FargateCluster`` and ``ECSCluster`` start each scheduler and worker as an
ECS task whose container command is ``dask-scheduler ...`` or ``dask-worker <scheduler> ...``.
Two things stop those commands from running here as they are:

- distributed 2026.6.0 removed the ``dask-scheduler`` and ``dask-worker`` console scripts (the
  ``dask scheduler`` and ``dask worker`` subcommands replace them; dask-cloudprovider issue 485),
  so this venv has no such programs. They are run as ``<this python> -m dask scheduler`` and
  ``-m dask worker``, with the arguments the task gave.
- In a container every server binds the task's own network interface. Here every task shares
  the machine: the dev stack gives each awsvpc task a loopback address of its own
  (``moto_fixes``: 127.77.x.y, which Linux routes to ``lo``), and the command is told to bind
  it (``--host``) with its HTTP server on it too (``--dashboard-address``; distributed's default
  ``:8787`` binds every interface, and two schedulers would clash on the port).

Nothing else is changed: a command whose program is not one of these runs as it is.
``dask-cuda-worker`` is refused with the reason (no GPU in the dev stack), and so is a worker
told to reach a scheduler anywhere but loopback: nothing in the dev stack connects outside it.
"""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

#: dask-cloudprovider's programs, and the subcommand of ``python -m dask`` that replaces each.
SUBCOMMANDS = {"dask-scheduler": "scheduler", "dask-worker": "worker"}
GPU_WORKER = "dask-cuda-worker"
#: The scheduler's HTTP port in distributed's default (``:8787``), kept on the task's address.
SCHEDULER_DASHBOARD_PORT = 8787


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


def is_dask_command(command: list[str]) -> bool:
    """Whether ``command`` runs one of dask-cloudprovider's Dask programs (any directory).

    >>> is_dask_command(["/usr/local/bin/dask-worker", "tcp://127.0.0.1:8786"])
    True
    >>> is_dask_command(["flowrelay-runner"])
    False
    """
    return bool(command) and _program(command) in (*SUBCOMMANDS, GPU_WORKER)


def local_dask_command(command: list[str], host: str | None) -> list[str]:
    """``command`` (a Dask program, ``is_dask_command``) as this machine runs it: the ``dask``
    CLI of this Python, bound to ``host``, the task's loopback address. ``ValueError`` saying
    why when it cannot run here.

    >>> local_dask_command(["dask-scheduler", "--idle-timeout", "5 minutes"], "127.77.0.1")[2:]
    ['dask', 'scheduler', '--idle-timeout', '5 minutes', '--host', '127.77.0.1', \
'--dashboard-address', '127.77.0.1:8787']
    """
    program = _program(command)
    if program == GPU_WORKER:
        raise ValueError(
            f"{GPU_WORKER} needs a GPU and dask-cuda, which the dev stack does not have: "
            f"run the cluster without worker_gpu"
        )
    if host is None or not _is_loopback(host):
        raise ValueError(
            f"{program} needs the task's own loopback address to bind, and the task has "
            f"{host or 'no address'} (the dev stack gives one to awsvpc tasks only)"
        )
    arguments = command[1:]
    if program == "dask-worker":
        scheduler = next((arg for arg in arguments if not arg.startswith("-")), None)
        if scheduler is not None and not _is_loopback(_host_of(scheduler)):
            raise ValueError(
                f"{program} would connect to the scheduler at {scheduler}: nothing in the dev "
                f"stack connects outside loopback"
            )
    # The worker's HTTP server takes any free port, as distributed's default (":0") does.
    port = SCHEDULER_DASHBOARD_PORT if program == "dask-scheduler" else 0
    # Last, so they win over the same options given earlier (click keeps an option's last
    # value); before a "--", after which the scheduler reads its preload's arguments.
    binding = ["--host", host, "--dashboard-address", f"{host}:{port}"]
    if "--" in arguments:
        end = arguments.index("--")
        arguments = [*arguments[:end], *binding, *arguments[end:]]
    else:
        arguments = [*arguments, *binding]
    return [sys.executable, "-m", "dask", SUBCOMMANDS[program], *arguments]


def _program(command: list[str]) -> str:
    return PurePosixPath(command[0]).name


def _host_of(address: str) -> str:
    """The host of a Dask address: ``tcp://host:port``, ``host:port`` or ``[v6]:port``."""
    rest = address.split("://", 1)[-1]
    if rest.startswith("["):
        return rest[1:].split("]", 1)[0]
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
