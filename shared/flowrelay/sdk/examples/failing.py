"""A flow that fails on purpose: the run's message names the failing task and its error, and
the tasks downstream of it say why they did not run."""

from flowrelay import Flow, Parameter, task
from flowrelay.run_configs import UniversalRun


@task
def numerator() -> int:
    return 10


@task
def divide(x: int, by: int) -> float:
    return x / by


@task
def report(value: float) -> str:
    return f"result: {value}"


with Flow("failing", run_config=UniversalRun()) as flow:
    report(divide(numerator(), Parameter("by", default=0)))
