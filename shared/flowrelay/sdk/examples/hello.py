"""The smallest useful flow: a parameter, two tasks, one edge."""

from flowrelay import Flow, Parameter, task
from flowrelay.run_configs import UniversalRun


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@task
def shout(text: str) -> str:
    return text.upper()


with Flow("hello", run_config=UniversalRun()) as flow:
    shout(greet(Parameter("name", default="flowrelay")))
