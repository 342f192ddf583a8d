"""``case`` and ``merge`` with the imperative API: ``flow.add_task``, ``Task.bind(flow=...)``.

Source: Prefect 1.x docs, core/idioms/conditional.md ("Merging branches in a flow", imperative
API), with ``CheckCondition``'s ``random() < 0.5`` fixed to False. Stated outcome: the false
branch runs, the true branch is Skipped, and ``AnotherAction`` receives "I am false!".
"""

from flowrelay import Flow, Task, case
from flowrelay.tasks.control_flow import merge


class CheckCondition(Task):
    def run(self):
        return False


class ActionIfTrue(Task):
    def run(self):
        return "I am true!"


class ActionIfFalse(Task):
    def run(self):
        return "I am false!"


class AnotherAction(Task):
    def run(self, val):
        print(val)
        return val


flow = Flow("corpus-conditional-imperative")

check_condition = CheckCondition()
flow.add_task(check_condition)

with case(check_condition, True):
    val1 = ActionIfTrue()
    flow.add_task(val1)

with case(check_condition, False):
    val2 = ActionIfFalse()
    flow.add_task(val2)

val = merge(val1, val2, flow=flow)
another = AnotherAction().bind(val=val, flow=flow)

EXPECTED = {
    "state": "Success",
    "tasks": {
        check_condition: ("Success", False),
        val1: ("Skipped", None),
        val2: ("Success", "I am false!"),
        val: ("Success", "I am false!"),
        another: ("Success", "I am false!"),
    },
}
