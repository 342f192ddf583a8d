"""The context logger, functional and imperative.

Source: Prefect 1.x docs, core/idioms/logging.md ("Logging from within tasks"): in a ``@task``
the logger is ``prefect.context.get("logger")``; in a ``Task`` subclass it is ``self.logger``.
Stated outcome: the messages are logged through the run's logger; the run succeeds.
"""

import flowrelay
from flowrelay import Flow, task


@task
def my_task():
    logger = flowrelay.context.get("logger")

    logger.info("An info message.")
    logger.warning("A warning message.")


class MyTask(flowrelay.Task):
    def run(self):
        self.logger.info("An info message from a Task class.")
        self.logger.warning("A warning message from a Task class.")


with Flow("corpus-context-logger") as flow:
    functional = my_task()
    imperative = MyTask()()

EXPECTED = {
    "state": "Success",
    "tasks": {functional: ("Success", None), imperative: ("Success", None)},
    "logged": [
        "An info message.",
        "A warning message.",
        "An info message from a Task class.",
        "A warning message from a Task class.",
    ],
}
