"""``RETRY``: a task asks to be run again.

Source: Prefect 1.x docs, core/concepts/execution.md ("State signals": "you may want ... to
force a task to retry. In that case, raise the appropriate Prefect signal", the
``retry_if_negative`` example) and the context API reference (``task_run_count``). Stated
outcome: the task raises ``RETRY`` on its first run, is run again, and succeeds on its second.
"""

import flowrelay
from flowrelay import Flow, task
from flowrelay.engine import signals


@task
def wait_for_data():
    if flowrelay.context.get("task_run_count") < 2:
        raise signals.RETRY("the data is not there yet")
    return flowrelay.context.get("task_run_count")


with Flow("corpus-signal-retry") as flow:
    arrived = wait_for_data()

EXPECTED = {"state": "Success", "tasks": {arrived: ("Success", 2)}}
