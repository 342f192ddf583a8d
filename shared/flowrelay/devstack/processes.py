"""The dev stack's processes: its folder and the record in it, its task process groups (how
they are started, their environment, their memory), and what a dead stack left behind.

Each stack works in a temporary folder named ``flowrelay-dev-*`` holding ``stack.json``: the
stack's process id and start time, so a later stack can tell a live stack from a dead one (a
process id alone may have been given to another process since). Every process of its tasks
carries ``FLOWRELAY_DEVSTACK=<that folder>`` in its environment, inherited by whatever the task
starts. A task's processes normally end with their stack (``flowrelay.launchers.local.guard``);
when a stack died in a way that left some (its guard was killed too), the next stack finds them
by that variable, ends them and removes the folder (``end_leftovers``).

ECS tasks (``ecs``) and Kubernetes pods (``kubernetes.jobs``) are started the same way
(``start_group``): the container's command under the guard, in a session of its own, with the
stack's environment and the container's (``child_environment``), watching a ``Lifeline`` that
only the executor holds, at a lower CPU priority than the stack (``yield_cpu``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import IO

import psutil

from flowrelay.aws.clients import REAL_AWS_SETTINGS
from flowrelay.launchers.local.processes import start_guarded

FOLDER_PREFIX = "flowrelay-dev-"
RECORD = "stack.json"
#: In the environment of every task process: the folder of the stack that started it.
MARKER = "FLOWRELAY_DEVSTACK"
#: The nice value of task and pod processes (``yield_cpu``): 0 is the stack's, 19 the lowest.
TASK_NICENESS = 10


def make_folder() -> Path:
    """A new stack folder in the temporary directory, with this process's record in it."""
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    me = psutil.Process()
    (folder / RECORD).write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    return folder


def group_rss(groups: Collection[int], leave_out: Collection[int] = ()) -> dict[int, int]:
    """The resident memory (bytes) of every process of each process group in ``groups``, summed
    per group, leaving out the processes ``leave_out``."""
    totals = dict.fromkeys(groups, 0)
    for process in psutil.process_iter():
        if process.pid in leave_out:
            continue
        try:
            group = os.getpgid(process.pid)
            if group in totals:
                totals[group] += process.memory_info().rss
        except (ProcessLookupError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue  # it ended while we looked, or is not ours to read
    return totals


def child_environment(stack_env: Mapping[str, str], task_env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without settings that could point boto3 elsewhere, then the
    dev stack's settings, then the task's own variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in REAL_AWS_SETTINGS and not name.startswith("AWS_ENDPOINT_URL_")
    }
    env.update(stack_env)
    env.update(task_env)
    return env


class Lifeline:
    """A pipe whose write end only this process holds: the kernel closes it when this process
    ends, however it ends, and every guard watching the read end then ends its group
    (``launchers/local/guard.py``). ``close`` ends the groups still running too."""

    def __init__(self) -> None:
        self.read, self._write = os.pipe()
        self._open = True

    def close(self) -> None:
        """Close both ends, once: a closed fd number may be reused by the next open file."""
        if self._open:
            self._open = False
            os.close(self.read)
            os.close(self._write)


def start_group(
    command: list[str],
    *,
    env: Mapping[str, str],
    log_file: IO[bytes],
    lifeline: Lifeline,
    grace_seconds: float,
    cwd: str | None = None,
) -> subprocess.Popen[bytes]:
    """``command`` (already resolved) run by the guard, which ends its group with ``lifeline``
    (``flowrelay.launchers.local.processes.start_guarded``), at ``TASK_NICENESS``
    (``yield_cpu``)."""
    process = start_guarded(
        command,
        fd=lifeline.read,
        env=env,
        log_file=log_file,
        grace_seconds=grace_seconds,
        cwd=cwd,
    )
    # Never above the stack's own (a stack started with ``nice`` keeps its tasks below it).
    yield_cpu(process.pid, max(TASK_NICENESS, os.getpriority(os.PRIO_PROCESS, 0)))
    return process


def yield_cpu(group: int, niceness: int) -> None:
    """Run the process group ``group``, which leads a session of its own, at ``niceness``: what
    is in it now and all it starts later (children inherit it), so the stack's control plane
    (the functions, moto, the executors) keeps its speed while tasks start and run.

    On AWS a task has CPUs of its own; here tasks share this machine's with the stack, and a
    burst of task processes starting (a Python interpreter each) would take them away from it.
    Linux's scheduler shares CPU time between sessions first (autogroups, when
    ``kernel.sched_autogroup_enabled``), so a session of its own would weigh as much as the whole
    stack whatever its nice value: the session's autogroup is niced too. Lowering a priority
    needs no privilege; where the system cannot (no autogroups, not Linux), it is left as is.
    """
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PGRP, group, niceness)
    with contextlib.suppress(OSError):
        Path(f"/proc/{group}/autogroup").write_text(str(niceness))


def command_pid(guard: int) -> int | None:
    """The process id of the command a guard runs (its child), while it runs."""
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(guard).children():
            return int(child.pid)
    return None


def signal_group(group: int, signum: signal.Signals) -> None:
    """Signal a process group; one that has ended is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def end_leftovers(say: Callable[[str], None], root: Path | None = None) -> list[Path]:
    """End the processes of dev stacks that died and remove their folders; returns the folders
    removed. A folder without a record, or whose stack still runs, or not ours, is left alone."""
    removed = []
    for folder in sorted(Path(root or tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*")):
        record = _record(folder)
        if record is None or _alive(record):
            continue
        ended = _end_marked(str(folder))
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        say(
            f"a dev stack that died (pid {record.get('pid')}) left {len(ended)} process(es): "
            f"ended {' '.join(map(str, ended)) or 'none'}; removed its folder {folder}"
        )
    return removed


def _record(folder: Path) -> Mapping[str, object] | None:
    try:
        if folder.stat().st_uid != os.getuid():
            return None
        record = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(record: Mapping[str, object]) -> bool:
    """Whether the stack of ``record`` still runs: its pid, started at the recorded time."""
    pid, started = record.get("pid"), record.get("started")
    if not isinstance(pid, int) or not isinstance(started, int | float):
        return False
    try:
        process = psutil.Process(pid)
        # create_time is read from /proc in clock ticks: the same process may differ by a tick.
        return bool(abs(process.create_time() - started) < 1 and process.is_running())
    except psutil.Error:
        return False


def _end_marked(folder: str) -> list[int]:
    """SIGKILL every process whose environment names ``folder`` as its stack; their pids."""
    marked = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if process.environ().get(MARKER) == folder:
                marked.append(process)
    for process in marked:
        with contextlib.suppress(psutil.Error):
            process.kill()  # no grace: the stack its processes would report to is gone
    deadline = time.monotonic() + 5
    while any(map(running, marked)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(process.pid for process in marked)


def running(process: psutil.Process) -> bool:
    """Whether ``process`` runs (a zombie has ended: only its exit status is left to collect)."""
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
