"""``Task`` subclasses: a ``run()`` method, settings in ``__init__``, ``defaults_from_attrs``.

Source: Prefect 1.x docs, core/concepts/tasks.md (``class HTTPGetTask(Task)``: "All Task
subclasses must have a run() method"; settings stored in ``__init__`` before
``super().__init__(**kwargs)``), core/concepts/flows.md ("Using Task Subclasses with the
Functional API": instantiate, then call) and the API reference of
``prefect.utilities.tasks.defaults_from_attrs`` (``MyTask(a=1, b=2)``: ``run()`` gives
``(1, 2)``, ``run(a=99)`` gives ``(99, 2)``). Stated outcome: ``PlusOneTask()(10)`` is 11; the
template task falls back to its attributes for arguments not given at call time.
"""

from flowrelay import Flow, Task
from flowrelay.utilities.tasks import defaults_from_attrs


class PlusOneTask(Task):
    def run(self, x):
        return x + 1


class MyTask(Task):
    def __init__(self, a=None, b=None, **kwargs):
        self.a = a
        self.b = b
        super().__init__(**kwargs)

    @defaults_from_attrs("a", "b")
    def run(self, a=None, b=None):
        return a, b


with Flow("corpus-plus-one-flow") as flow:
    task = PlusOneTask()  # first create the Task instance
    result = task(10)  # then call it with arguments

    template = MyTask(a=1, b=2)
    defaults = template()
    overridden = template(a=99)

EXPECTED = {
    "state": "Success",
    "tasks": {
        result: ("Success", 11),
        defaults: ("Success", (1, 2)),
        overridden: ("Success", (99, 2)),
    },
}
