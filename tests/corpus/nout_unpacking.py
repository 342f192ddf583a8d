"""Tasks returning several values: ``nout=`` and a ``Tuple[...]`` return annotation.

Source: Prefect 1.x API reference, ``Task(nout=...)`` ("for tasks that return multiple results,
the number of outputs to expect. If not provided, will be inferred from the task return
annotation, if possible"), in the "Using Multi Values" form flows use. Stated outcome:
``inc, dec = inc_and_dec(1)`` gives 2 and 0; ``double, triple = double_and_triple(inc)`` gives 4
and 6.
"""

from typing import Tuple

from flowrelay import Flow, task


@task(nout=2)
def inc_and_dec(x):
    return x + 1, x - 1


@task
def double_and_triple(x: int) -> Tuple[int, int]:
    return x * 2, x * 3


with Flow("corpus-using-multi-values") as flow:
    inc, dec = inc_and_dec(1)
    double, triple = double_and_triple(inc)

EXPECTED = {
    "state": "Success",
    "tasks": {
        inc: ("Success", 2),
        dec: ("Success", 0),
        double: ("Success", 4),
        triple: ("Success", 6),
        "inc_and_dec": ("Success", (2, 0)),
        "double_and_triple": ("Success", (4, 6)),
    },
}
