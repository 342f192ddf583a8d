"""``apply_map`` over a function that uses ``case`` and ``merge``.

Source: Prefect 1.x API reference, ``prefect.utilities.tasks.apply_map`` ("Map a function that
adds tasks to a flow elementwise ... useful when wanting to create complicated mapped
pipelines (e.g. ones using control flow components like case)", its ``inc_if_even`` example),
with the merge order of Prefect's own test of that example (``merge(x2, x)``: the incremented
value when there is one). Stated outcome: over ``range(4)`` the result is ``[1, 1, 3, 3]``.
"""

from flowrelay import Flow, apply_map, case, task
from flowrelay.tasks.control_flow import merge


@task
def inc(x):
    return x + 1


@task
def is_even(x):
    return x % 2 == 0


def inc_if_even(x):
    with case(is_even(x), True):
        x2 = inc(x)
    return merge(x2, x)


with Flow("corpus-apply-map") as flow:
    res = apply_map(inc_if_even, range(4))

EXPECTED = {"state": "Success", "tasks": {res: ("Mapped", [1, 1, 3, 3])}}
