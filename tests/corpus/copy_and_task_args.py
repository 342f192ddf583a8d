"""``task.copy()`` and ``task_args=`` at call time.

Source: Prefect 1.x API reference, ``Task.copy(**task_args)`` ("Creates and returns a copy of
the current Task ... keyword arguments to set as attributes on the copy") and ``Task.__call__
(task_args=...)`` ("a dictionary of kwargs that will be passed to ``task.copy()``"; used as
``task_args=dict(name=...)`` to give each call its own name). Stated outcome: the copy and the
calls carry the names given; the values are those of the original function.
"""

from flowrelay import Flow, task


@task
def add(x, y):
    return x + y


add_ten = add.copy(name="add_ten")

with Flow("corpus-copy-and-task-args") as flow:
    first = add(1, 2, task_args=dict(name="Add One and Two"))
    second = add_ten(first, 10)
    third = add(second, 100, task_args=dict(name="Add a Hundred", tags=["big"]))

EXPECTED = {
    "state": "Success",
    "tasks": {
        "Add One and Two": ("Success", 3),
        "add_ten": ("Success", 13),
        "Add a Hundred": ("Success", 113),
    },
}
