"""A flow on an ephemeral Fargate Dask cluster that takes its time: one long task on one worker.
The demo kills its runner with SIGKILL while the task runs, so the runner never closes its
cluster: the run ends Crashed and the monitor sweeps the cluster (docs/dask-clusters.md).
"""

import time

from flowrelay import Flow, Parameter, task
from flowrelay.executors import DaskExecutor
from flowrelay.run_configs import ECSRun


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


with Flow(
    "dask-sleeper",
    run_config=ECSRun(),
    executor=DaskExecutor(
        cluster_class="dask_cloudprovider.aws.FargateCluster",
        cluster_kwargs={"n_workers": 1, "worker_cpu": 256, "worker_mem": 1024},
    ),
) as flow:
    nap(Parameter("seconds", default=120))
