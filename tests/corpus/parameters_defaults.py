"""Parameters with defaults.

Source: Prefect 1.x docs, core/concepts/parameters.md (the ``Parameterized Flow`` example:
``x = Parameter('x', default=2)``; ``print_plus_one`` prints ``x + 1``), returning the value as
well as printing it. Stated outcome: ``flow.run(parameters=dict(x=1))`` prints 2,
``flow.run(parameters=dict(x=100))`` prints 101, ``flow.run()`` prints 3.
"""

from flowrelay import Flow, Parameter, task


@task
def print_plus_one(x):
    print(x + 1)
    return x + 1


with Flow("corpus-parameterized-flow") as flow:
    x = Parameter("x", default=2)
    plus_one = print_plus_one(x=x)

EXPECTED = {
    "state": "Success",
    "tasks": {x: ("Success", 2), plus_one: ("Success", 3)},
    "variants": [
        {"parameters": {"x": 1}, "state": "Success", "tasks": {plus_one: ("Success", 2)}},
        {"parameters": {"x": 100}, "state": "Success", "tasks": {plus_one: ("Success", 101)}},
    ],
}
