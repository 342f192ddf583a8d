"""A flow on an ephemeral Dask cluster on Fargate, written for the deprecated
``DaskCloudProviderEnvironment`` exactly as its users wrote it: a scheduler task and, adaptively,
one to three worker tasks on the run's ECS cluster, created when the run starts and gone when it
ends. flowrelay supplies the cluster, network and roles from the run's target
(docs/dask-clusters.md); the flow names only the sizes.

Run it through a stack (``flowrelay run dask-fargate``) on an ECS target.
"""

import time

from flowrelay import Flow, Parameter, task, unmapped
from flowrelay.environments import DaskCloudProviderEnvironment


@task
def chunks(count: int) -> list[int]:
    return list(range(count))


@task
def work(chunk: int, seconds: float) -> int:
    time.sleep(seconds)  # long enough for the adaptive cluster to ask for more workers
    return chunk * chunk


@task
def total(values: list[int]) -> int:
    print(f"sum of squares: {sum(values)}", flush=True)
    return sum(values)


@task
def linger(result: int, seconds: float) -> int:
    """One task after the map: the idle workers are retired meanwhile (adaptive scale-down)."""
    time.sleep(seconds)
    return result


with Flow(
    "dask-fargate",
    environment=DaskCloudProviderEnvironment(
        provider_class="dask_cloudprovider.aws.FargateCluster",
        adaptive_min_workers=1,
        adaptive_max_workers=3,
        n_workers=1,
        scheduler_cpu=256,
        scheduler_mem=1024,
        worker_cpu=256,
        worker_mem=1024,
    ),
) as flow:
    count = Parameter("count", default=24)
    seconds = Parameter("seconds", default=0.5)
    linger(total(work.map(chunks(count), unmapped(seconds))), Parameter("linger", default=0.0))
