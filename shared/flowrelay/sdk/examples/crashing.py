"""A flow whose process dies hard: a task sends SIGKILL to its own process, so the runner never
reports how the run ended. The control plane learns it from ECS (the container exited with code
137) and the run ends Crashed with that reason and the last lines of its log.

Run it through a stack (``flowrelay run crashing``), never with ``run-local``: in-process, the
process it kills is yours.
"""

import os
import signal

from flowrelay import Flow, task
from flowrelay.run_configs import UniversalRun


@task
def announce() -> str:
    # flush: the line must reach the log before the process is gone.
    print("about to be killed with SIGKILL: the runner will not get to report", flush=True)
    return "announced"


@task
def die_hard(note: str) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


with Flow("crashing", run_config=UniversalRun()) as flow:
    die_hard(announce())
