"""``merge`` joins the branches of ``case`` blocks.

Source: Prefect 1.x docs, core/idioms/conditional.md ("Merging branches in a flow", functional
API), with ``check_condition``'s ``random() < .5`` fixed to True. Stated outcome: ``merge``
"returns the output of the first task that isn't Skipped": ``another_action`` receives
"I am true!"; the false branch is Skipped.
"""

from flowrelay import Flow, case, task
from flowrelay.tasks.control_flow import merge


@task
def check_condition():
    return True


@task
def action_if_true():
    return "I am true!"


@task
def action_if_false():
    return "I am false!"


@task
def another_action(val):
    print(val)
    return val


with Flow("corpus-conditional-merge") as flow:
    cond = check_condition()

    with case(cond, True):
        val1 = action_if_true()

    with case(cond, False):
        val2 = action_if_false()

    val = merge(val1, val2)

    result = another_action(val)

EXPECTED = {
    "state": "Success",
    "tasks": {
        val1: ("Success", "I am true!"),
        val2: ("Skipped", None),
        val: ("Success", "I am true!"),
        result: ("Success", "I am true!"),
    },
    "output": ["I am true!"],
}
