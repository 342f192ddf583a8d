"""A flow that takes its time: one task sleeping ``seconds`` (60 by default). The demo and the
tests cancel it while it runs: its ECS task is stopped (SIGTERM) and the run ends Cancelled."""

import time

from flowrelay import Flow, Parameter, task
from flowrelay.run_configs import UniversalRun


@task
def nap(seconds: float) -> float:
    print(f"sleeping {seconds} s", flush=True)
    time.sleep(seconds)
    return seconds


with Flow("sleeper", run_config=UniversalRun()) as flow:
    nap(Parameter("seconds", default=60))
