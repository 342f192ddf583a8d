"""Flows the dev stack tests run in real runner processes (importable with the repo root on
PYTHONPATH)."""

import time

from flowrelay import Flow, task
from flowrelay.core.run_configs import UniversalRun


@task
def nap() -> str:
    time.sleep(60)
    return "rested"


with Flow("sleepy", run_config=UniversalRun()) as flow:
    nap()
