"""``ifelse`` and ``merge`` with Task classes.

Source: Prefect 1.x API reference, ``prefect.tasks.control_flow.merge`` (its example:
``ifelse(CheckCondition(), true_branch, false_branch)`` then ``merge(true_branch,
false_branch)``) and ``ifelse`` ("If the condition evaluates True(ish), the true_task will run.
If it evaluates False(ish), the false_task will run. The task that doesn't run is Skipped").
The condition returns a non-empty list, which is True(ish). Stated outcome: the true branch
runs, the false branch is Skipped, the merge gives the true branch's result.
"""

from flowrelay import Flow, Task
from flowrelay.tasks.control_flow import ifelse, merge


class CheckCondition(Task):
    def run(self):
        return ["a truthy result"]


class ActionIfTrue(Task):
    def run(self):
        return "I am true!"


class ActionIfFalse(Task):
    def run(self):
        return "I am false!"


with Flow("corpus-ifelse") as flow:
    true_branch = ActionIfTrue()
    false_branch = ActionIfFalse()
    ifelse(CheckCondition(), true_branch, false_branch)

    merged_result = merge(true_branch, false_branch)

EXPECTED = {
    "state": "Success",
    "tasks": {
        true_branch: ("Success", "I am true!"),
        false_branch: ("Skipped", None),
        merged_result: ("Success", "I am true!"),
    },
}
