"""``any_successful``: a task runs when at least one upstream task succeeded.

Source: Prefect 1.x API reference, ``prefect.triggers.any_successful`` ("Runs if any tasks were
successful. Note that SKIPPED tasks are considered successes and TRIGGER_FAILED tasks are
considered failures") and core/concepts/tasks.md ("Triggers"). Stated outcome: with one
upstream failed and one succeeded, the downstream task runs; it is the only terminal task, so
the flow succeeds.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.triggers import any_successful


@task
def primary_source():
    raise ConnectionError("primary source is down")


@task
def fallback_source():
    return [1, 2, 3]


@task(trigger=any_successful)
def report():
    return "at least one source answered"


with Flow("corpus-trigger-any-successful") as flow:
    primary = primary_source()
    fallback = fallback_source()
    done = report(upstream_tasks=[primary, fallback])

EXPECTED = {
    "state": "Success",
    "tasks": {
        primary: ("Failed", ANY),
        fallback: ("Success", [1, 2, 3]),
        done: ("Success", "at least one source answered"),
    },
}
