"""``not_all_skipped``: run unless every upstream task was skipped.

Source: Prefect 1.x API reference, ``prefect.triggers.not_all_skipped`` ("Runs if all upstream
tasks were successful and were not all skipped") and core/concepts/tasks.md ("Skips are
treated as successes ... a task that follows a skipped task will also skip, unless it receives
``skip_on_upstream_skip=False``"). Stated outcome: the load whose sources were all skipped is
itself Skipped; the load with one source that had data runs; skips count as success, so the
flow succeeds.
"""

from flowrelay import Flow, task
from flowrelay.engine import signals
from flowrelay.triggers import not_all_skipped


@task
def check_a():
    raise signals.SKIP("nothing new in A")


@task
def check_b():
    raise signals.SKIP("nothing new in B")


@task
def check_c():
    return "new rows in C"


@task(trigger=not_all_skipped, skip_on_upstream_skip=False)
def load_ab(a, b):
    return [a, b]


@task(trigger=not_all_skipped, skip_on_upstream_skip=False)
def load_abc(a, b, c):
    return [source for source in (a, b, c) if source is not None]


with Flow("corpus-trigger-not-all-skipped") as flow:
    a = check_a()
    b = check_b()
    c = check_c()
    nothing = load_ab(a, b)
    something = load_abc(a, b, c)

EXPECTED = {
    "state": "Success",
    "tasks": {
        a: ("Skipped", None),
        b: ("Skipped", None),
        c: ("Success", "new rows in C"),
        nothing: ("Skipped", None),
        something: ("Success", ["new rows in C"]),
    },
}
