"""Triggers: run task B if A succeeds, task C (clean-up) if it fails; B is the reference task.

Source: Prefect 1.x docs, core/concepts/execution.md ("Triggers"; also the module docstring of
``prefect.triggers``), with task A's random failure made certain (the failing path). Stated
outcome: A fails; B (``all_successful``) does not run (``TriggerFailed``); C (``all_failed``)
runs; with ``flow.set_reference_tasks([success])`` B alone decides the flow's state: Failed.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.triggers import all_failed, all_successful


@task(name="Task A")
def task_a():
    raise ValueError("Non-deterministic error has occured.")


@task(name="Task B", trigger=all_successful)
def task_b():
    # do something interesting
    pass


@task(name="Task C", trigger=all_failed)
def task_c():
    # do something interesting
    pass


with Flow("corpus-trigger-all-failed") as flow:
    success = task_b(upstream_tasks=[task_a])
    fail = task_c(upstream_tasks=[task_a])

flow.set_reference_tasks([success])

EXPECTED = {
    "state": "Failed",
    "tasks": {
        "Task A": ("Failed", ANY),
        success: ("TriggerFailed", ANY),
        fail: ("Success", None),
    },
}
