"""Indexing task results: ``x['a']`` and ``x[0]`` add ``GetItem`` tasks.

Source: Prefect 1.x docs, core/concepts/tasks.md ("Indexing": the ``Indexing Flow`` example,
extended with a list index). Stated outcome: "This will automatically add a GetItem task to the
flow that receives x as its input and attempts to perform x['a']. The result of that task (1)
is stored as y."
"""

from flowrelay import Flow, task


@task
def fn():
    return {"a": 1, "b": 2}


@task
def numbers():
    return [10, 20, 30]


with Flow("corpus-indexing-flow") as flow:
    x = fn()
    y = x["a"]
    first = numbers()[0]

EXPECTED = {
    "state": "Success",
    "tasks": {x: ("Success", {"a": 1, "b": 2}), y: ("Success", 1), first: ("Success", 10)},
}
