"""Flows the dev stack tests run in real runner processes (importable with the repo root on
PYTHONPATH)."""

import multiprocessing
import signal
import subprocess
import sys
import time

from flowrelay import Flow, task
from flowrelay.core.run_configs import UniversalRun


@task
def nap() -> str:
    time.sleep(60)
    return "rested"


with Flow("sleepy", run_config=UniversalRun()) as flow:
    nap()


def stubborn() -> None:
    """A helper process that ignores SIGTERM, as a stuck one does: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(600)


@task
def start_helpers_and_hang() -> None:
    # A spawned multiprocessing helper (as Dask starts its workers, with multiprocessing's
    # resource tracker beside it) and a plain subprocess, then the flow hangs.
    multiprocessing.get_context("spawn").Process(target=stubborn).start()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("helpers started", flush=True)
    time.sleep(600)


with Flow("hanging", run_config=UniversalRun()) as hanging:
    start_helpers_and_hang()
