"""Mapping, iterated mapping, ``unmapped`` and the automatic reduce.

Source: Prefect 1.x docs, core/concepts/mapping.md ("Reduce": ``add_ten.map`` twice then
``sum_numbers``; "Unmapped inputs": ``add.map(x=[1, 2, 3], y=unmapped(10))``). Stated outcome:
the second map gives ``[21, 22, 23]``, the reduce "appropriately computes the sum: 66", the
unmapped map gives ``[11, 12, 13]``.
"""

from flowrelay import Flow, task, unmapped


@task
def add_ten(x):
    return x + 10


@task
def sum_numbers(y):
    return sum(y)


@task
def add(x, y):
    return x + y


with Flow("corpus-reduce") as flow:
    mapped_result = add_ten.map([1, 2, 3])
    mapped_result_2 = add_ten.map(mapped_result)
    reduced_result = sum_numbers(mapped_result_2)
    result = add.map(x=[1, 2, 3], y=unmapped(10))

EXPECTED = {
    "state": "Success",
    "tasks": {
        mapped_result: ("Mapped", [11, 12, 13]),
        mapped_result_2: ("Mapped", [21, 22, 23]),
        reduced_result: ("Success", 66),
        result: ("Mapped", [11, 12, 13]),
    },
}
