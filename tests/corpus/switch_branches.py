"""``switch``: the task under the matching key runs, the others are Skipped.

Source: Prefect 1.x API reference, ``prefect.tasks.control_flow.switch`` (its example, as
written: ``condition`` returns "b"). Stated outcome: "returning 'b' will take the b_branch";
``a_branch`` is Skipped.
"""

from flowrelay import Flow, task
from flowrelay.tasks.control_flow import switch


@task
def condition():
    return "b"  # returning 'b' will take the b_branch


@task
def a_branch():
    return "A Branch"


@task
def b_branch():
    return "B Branch"


with Flow("corpus-switch-flow") as flow:
    switch(condition, dict(a=a_branch, b=b_branch))

EXPECTED = {
    "state": "Success",
    "tasks": {
        "condition": ("Success", "b"),
        "a_branch": ("Skipped", None),
        "b_branch": ("Success", "B Branch"),
    },
}
