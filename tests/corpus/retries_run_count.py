"""``task_run_count`` under retries.

Source: Prefect 1.x docs, core/concepts/tasks.md ("Retries": ``max_retries`` and
``retry_delay``) and the context API reference (``task_run_count``: "the run count of the task
run - typically only interesting for retrying tasks"). Stated outcome: a task that fails until
its third run is retried twice and succeeds, seeing run counts 1, 2, 3.
"""

import datetime

import flowrelay
from flowrelay import Flow, task


@task(max_retries=2, retry_delay=datetime.timedelta(milliseconds=100))
def flaky():
    count = flowrelay.context.get("task_run_count")
    if count < 3:
        raise ValueError(f"failing on run {count}")
    return count


with Flow("corpus-retries-run-count") as flow:
    result = flaky()

EXPECTED = {"state": "Success", "tasks": {result: ("Success", 3)}}
