"""Flows the dev stack tests run in real runner processes (importable with the repo root on
PYTHONPATH)."""

import multiprocessing
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

from flowrelay import Flow, Parameter, task
from flowrelay.core.run_configs import ECSRun, KubernetesRun, LocalRun, UniversalRun
from flowrelay.environments import DaskKubernetesEnvironment, KubernetesJobEnvironment
from flowrelay.executors import DaskExecutor

MIB = 1024 * 1024


@task
def nap() -> str:
    time.sleep(60)
    return "rested"


with Flow("sleepy", run_config=UniversalRun()) as flow:
    nap()


@task
def hold(mib: int) -> int:
    """Hold ``mib`` MiB, every page written so it is resident, for a second: a computation
    holding its data. (A spike shorter than the dev stack's sampling could slip through.)"""
    data = bytearray(mib * MIB)
    data[::4096] = b"\x01" * len(range(0, len(data), 4096))
    time.sleep(1)
    return len(data)


with Flow("hog", run_config=UniversalRun()) as hog:
    hold(Parameter("mib", default=100))


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


@task
def note_where_and_what() -> str:
    """Writes where it runs and what GREETING says, into where it runs."""
    import os
    from pathlib import Path

    Path("where.txt").write_text(f"{os.getcwd()}\n{os.environ.get('GREETING', '')}")
    print("noted", flush=True)
    return "noted"


with Flow("local-writer", run_config=LocalRun()) as local_writer:
    note_where_and_what()


with Flow("local-sleepy", run_config=LocalRun()) as local_sleepy:
    nap()


@task
def tick(times: int) -> int:
    for number in range(times):
        print(f"tick {number}", flush=True)
        time.sleep(0.5)
    return times


with Flow("ticker", run_config=UniversalRun()) as ticker:
    tick(Parameter("times", default=8))


@task
def job_spec_says() -> str:
    """What the job spec's environment put in the pod (it must reach the runner's flow)."""
    import os

    value = os.environ.get("FROM_THE_JOB_SPEC", "")
    if value != "yes":
        raise ValueError(f"FROM_THE_JOB_SPEC is {value!r}, not 'yes'")
    return value


with Flow("k8s-hello", run_config=KubernetesRun(memory_limit="512Mi", cpu_request="250m")) as k8s:
    tick(Parameter("times", default=2))


with Flow("k8s-sleepy", run_config=KubernetesRun()) as k8s_sleepy:
    nap()


with warnings.catch_warnings():  # deprecated on purpose: users bring such flows
    warnings.simplefilter("ignore", DeprecationWarning)
    with Flow(
        "k8s-job-spec",
        environment=KubernetesJobEnvironment(
            job_spec_file=str(Path(__file__).with_name("k8s-job.yaml"))
        ),
    ) as k8s_job_spec:
        job_spec_says()


@task
def explode(value: int) -> int:
    raise RuntimeError(f"task explode failed on {value}")


with Flow(
    "dask-failing",
    run_config=ECSRun(),
    executor=DaskExecutor(
        cluster_class="dask_cloudprovider.aws.FargateCluster",
        cluster_kwargs={"n_workers": 1, "worker_cpu": 256, "worker_mem": 1024},
    ),
) as dask_failing:
    explode(1)


@task
def double(value: int) -> int:
    return value * 2


@task
def add_up(values: list[int]) -> int:
    return sum(values)


with warnings.catch_warnings():  # deprecated on purpose: users bring such flows
    warnings.simplefilter("ignore", DeprecationWarning)
    with Flow(
        "k8s-dask",
        environment=DaskKubernetesEnvironment(min_workers=1, max_workers=2),
    ) as k8s_dask:
        add_up(double.map(list(range(10))))


with Flow(
    "k8s-dask-sleeper",
    run_config=KubernetesRun(),
    executor=DaskExecutor(
        cluster_class="dask_kubernetes.operator.KubeCluster", cluster_kwargs={"n_workers": 1}
    ),
) as k8s_dask_sleeper:
    nap()


@task
def where_am_i() -> str:
    """What the worker's pod spec put in its environment (the custom worker spec must be used)."""
    import os

    value = os.environ.get("FROM_THE_SPEC", "")
    if value != "worker":
        raise ValueError(f"FROM_THE_SPEC is {value!r} on this worker, not 'worker'")
    return value


with warnings.catch_warnings():  # deprecated on purpose: users bring such flows
    warnings.simplefilter("ignore", DeprecationWarning)
    _SPECS = Path(__file__).with_name("dask-specs")
    with Flow(
        "k8s-dask-specs",
        environment=DaskKubernetesEnvironment(
            min_workers=1,
            max_workers=1,
            scheduler_spec_file=str(_SPECS / "scheduler.yaml"),
            worker_spec_file=str(_SPECS / "worker.yaml"),
        ),
    ) as k8s_dask_specs:
        where_am_i()
