"""``SKIP`` and ``SUCCESS`` signals; skips propagate downstream and count as success.

Source: Prefect 1.x docs, core/concepts/execution.md ("State signals": raise ``SKIP`` or
``SUCCESS`` from a task to choose its state) and core/concepts/tasks.md ("Skips are treated as
successes ... by default, skips also propagate: a task that follows a skipped task will also
skip, unless it receives ``skip_on_upstream_skip=False``"). Stated outcome: ``extract`` is
Skipped, ``transform`` after it is Skipped too, ``report`` (``skip_on_upstream_skip=False``)
runs; ``finish`` ends early with ``SUCCESS``; the flow succeeds.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.engine import signals


@task
def extract():
    raise signals.SKIP("no new files today")


@task
def transform(data):
    return [row * 2 for row in data]


@task(skip_on_upstream_skip=False)
def report(data):
    return "nothing to report" if data is None else f"{len(data)} rows"


@task
def finish():
    raise signals.SUCCESS("nothing left to do")


with Flow("corpus-signal-skip-success") as flow:
    data = extract()
    transformed = transform(data)
    summary = report(transformed)
    finished = finish()

EXPECTED = {
    "state": "Success",
    "tasks": {
        data: ("Skipped", None),
        transformed: ("Skipped", None),
        summary: ("Success", "nothing to report"),
        finished: ("Success", ANY),
    },
    "messages": {data: "no new files today", finished: "nothing left to do"},
}
