"""``case`` blocks: tasks in a branch not taken are Skipped.

Source: Prefect 1.x docs, core/idioms/conditional.md ("Running a task based on a condition",
functional API), with ``check_condition``'s ``random() < .5`` fixed to False (the false path).
Stated outcome: "Tasks added to a flow inside a case block are only run if the condition
matches the case. Tasks in branches that aren't run will finish with a Skipped state."
"""

from flowrelay import Flow, case, task


@task
def check_condition():
    return False


@task
def action_if_true():
    return "I am true!"


@task
def action_if_false():
    return "I am false!"


@task
def another_action(val):
    print(val)


with Flow("corpus-conditional-branches") as flow:
    cond = check_condition()

    with case(cond, True):
        val = action_if_true()
        true_branch_end = another_action(val)

    with case(cond, False):
        val = action_if_false()
        false_branch_end = another_action(val)

EXPECTED = {
    "state": "Success",
    "tasks": {
        cond: ("Success", False),
        "action_if_true": ("Skipped", None),
        true_branch_end: ("Skipped", None),
        val: ("Success", "I am false!"),
        false_branch_end: ("Success", None),
    },
    "output": ["I am false!"],
}
