"""The imperative API: tasks wired with set_upstream and bind instead of calls."""

from flowrelay import Flow, task
from flowrelay.run_configs import UniversalRun


@task
def get_value() -> str:
    return "Example!"


@task
def output_value(value: str) -> str:
    print(value)
    return value


flow = Flow("imperative", run_config=UniversalRun())
output_value.set_upstream(get_value, flow=flow)
output_value.bind(value=get_value, flow=flow)
