"""The guard of one local process group (a dev stack task, a local target's run): the first
process of the group, which ends the whole group when the process that started it (the dev
stack) is gone, however it went (even SIGKILL).

The dev stack starts ``python -I -S guard.py <fd> <grace seconds> <command...>`` in a new session
(the guard leads the task's process group) and passes it the read end ``fd`` of a pipe whose
write end only the dev stack process holds. The guard runs the command as its child, in its own
group, so the runner and everything it starts (Dask workers, multiprocessing helpers,
subprocesses) share that group. Nothing is ever written to the pipe: the read returns when the
kernel closes the write end, which happens when the dev stack process ends, however it ends.
Then the guard sends SIGTERM to the group, and SIGKILL once the command has exited or after the
grace period, so no process of the task outlives its stack.

While the stack lives, the guard changes nothing the stack relies on: SIGTERM is sent to the
whole group by the stack (StopTask), so the guard itself ignores it and goes on waiting for the
command; the guard then exits as the command did (its code, or the same signal), and the stack
reads that as the container's exit.

Only the standard library, and no flowrelay import: the guard starts in milliseconds with a few
MiB, outside the task's memory (the stack leaves the guard out of the task's total).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
from types import FrameType


def main(argv: list[str]) -> int:
    """Run ``argv[2:]`` under the guard; ``argv[0]`` is the pipe's fd, ``argv[1]`` the grace
    period in seconds. Returns the command's exit code (a signal is raised again instead)."""
    fd, grace, command = int(argv[0]), float(argv[1]), argv[2:]
    if _closed(fd, timeout=0):
        return 128 + signal.SIGTERM  # the stack died before its task could start
    # A handler, not SIG_IGN: an ignored signal would stay ignored in the command after exec.
    signal.signal(signal.SIGTERM, _ignore)
    child = subprocess.Popen(command)
    orphaned = threading.Event()
    threading.Thread(
        target=_end_group_when_closed, args=(fd, child, grace, orphaned), daemon=True
    ).start()
    code = child.wait()
    if orphaned.is_set():
        os.killpg(0, signal.SIGKILL)  # the stack is gone: take what is left of the group along
    if code < 0:
        _raise_again(-code)
    return code


def _ignore(signum: int, frame: FrameType | None) -> None:
    """SIGTERM reaches the guard with the rest of its group; the command answers it."""


def _closed(fd: int, timeout: float | None) -> bool:
    """True once the pipe's write end is closed (the pipe never carries data)."""
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


def _end_group_when_closed(
    fd: int, child: subprocess.Popen[bytes], grace: float, orphaned: threading.Event
) -> None:
    _closed(fd, timeout=None)
    orphaned.set()
    os.killpg(0, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=grace)
    os.killpg(0, signal.SIGKILL)


def _raise_again(signum: int) -> None:
    """Exit by the signal that ended the command, so the stack sees the same ending."""
    if signum != signal.SIGKILL:
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)  # the signal does not end a process (SIGCHLD, a stop signal)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
