"""Starting a run's command as local processes that cannot outlive their host: the program found
next to this Python, and the guard (``guard.py``) that leads the command's process group and
ends it when the process that started it is gone, however it went (even SIGKILL).

Used by the local launcher and by the dev stack's ECS tasks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from flowrelay.launchers.local import guard


def resolve_command(command: list[str]) -> list[str]:
    """``command`` with its program found locally: next to this Python (the venv's bin, where
    ``flowrelay-runner`` is installed), else on PATH. ``FileNotFoundError`` naming it."""
    if not command:
        raise ValueError("the command is empty")
    program = command[0]
    if os.path.isabs(program):
        return list(command)
    beside = Path(sys.executable).parent / program
    if beside.exists():
        return [str(beside), *command[1:]]
    found = shutil.which(program)
    if found is None:
        raise FileNotFoundError(f"{program!r} is neither next to {sys.executable} nor on PATH")
    return [found, *command[1:]]


def guarded(command: list[str], fd: int, grace_seconds: float) -> list[str]:
    """``command`` run by the guard, which ends its process group when the pipe ``fd`` closes
    (start it with ``pass_fds=(fd,)`` and ``start_new_session=True``)."""
    # -I -S: the guard needs only the standard library; no site-packages, no PYTHON* variables.
    return [sys.executable, "-I", "-S", guard.__file__, str(fd), str(grace_seconds), *command]


def start_guarded(
    command: list[str],
    *,
    fd: int,
    env: Mapping[str, str],
    log_file: IO[bytes],
    grace_seconds: float,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """``command`` (already resolved) run by the guard, which leads a new process group (its
    own session: a Ctrl-C meant for the host does not reach it) and ends it when the pipe ``fd``
    closes; output and errors to ``log_file``. The returned process is the guard: its pid is
    the group's, and it exits as the command does."""
    return subprocess.Popen(
        guarded(command, fd, grace_seconds),
        env=dict(env),
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        pass_fds=(fd,),
        start_new_session=True,
    )


_lifeline_lock = threading.Lock()
_lifeline: int | None = None


def lifeline() -> int:
    """The read end of this process's lifeline: a pipe whose write end only this process holds,
    kept open until it exits (when the kernel closes it, however the process ends). Guards of
    the processes started from here watch it."""
    global _lifeline
    with _lifeline_lock:
        if _lifeline is None:
            read, _write = os.pipe()  # the write end stays open, unreferenced, for good
            os.set_inheritable(read, False)
            _lifeline = read
        return _lifeline
