"""Extract, transform in parallel (a mapped task), load: the shape of most data flows."""

from datetime import timedelta

from flowrelay import Flow, Parameter, task, unmapped
from flowrelay.executors import LocalDaskExecutor
from flowrelay.run_configs import UniversalRun


@task
def extract(rows: int) -> list[int]:
    return list(range(1, rows + 1))


@task(max_retries=2, retry_delay=timedelta(seconds=0.1))
def transform(value: int, factor: int) -> int:
    return value * factor


@task(name="load")
def load_rows(values: list[int]) -> dict[str, int]:
    return {"rows": len(values), "total": sum(values)}


with Flow("etl", run_config=UniversalRun(), executor=LocalDaskExecutor()) as flow:
    rows = Parameter("rows", default=10)
    factor = Parameter("factor", default=3)
    load_rows(transform.map(extract(rows), unmapped(factor)))
