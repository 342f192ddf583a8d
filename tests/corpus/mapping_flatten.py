"""Flat-mapping with ``flatten``.

Source: Prefect 1.x docs, core/concepts/mapping.md ("Flat-mapping", the ``flat map`` example, as
written there). Stated outcome: ``B.map`` gives ``[[0], [0, 1], [0, 1, 2]]`` and
``C.map(y=flatten(b))`` gives ``[100, 100, 101, 100, 101, 102]``.
"""

from flowrelay import Flow, flatten, task


@task
def A():
    return [1, 2, 3]


@task
def B(x):
    return list(range(x))


@task
def C(y):
    return y + 100


with Flow("corpus-flat-map") as f:
    a = A()  # [1, 2, 3]
    b = B.map(x=a)  # [[0], [0, 1], [0, 1, 2]]
    c = C.map(y=flatten(b))  # [100, 100, 101, 100, 101, 102]

flow = f

EXPECTED = {
    "state": "Success",
    "tasks": {
        a: ("Success", [1, 2, 3]),
        b: ("Mapped", [[0], [0, 1], [0, 1, 2]]),
        c: ("Mapped", [100, 100, 101, 100, 101, 102]),
    },
}
