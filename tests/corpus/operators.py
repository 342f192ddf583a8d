"""Operators on tasks build tasks: ``+``, ``-``, ``<``, ``.is_equal``.

Source: Prefect 1.x docs, core/concepts/tasks.md ("Operators": the ``Using Operators`` example,
``a + b``, ``a - b``, ``a < b``), with ``a_number``'s ``random.randint`` replaced by two fixed
numbers so the results can be stated; ``is_equal`` from the Task API reference ("equivalent to
running ``self == other``, since ``==`` compares the tasks themselves"). Stated outcome: the
operators "automatically add new tasks to the active flow context" computing 7 + 3, 7 - 3,
7 < 3 and 7 == 3.
"""

from flowrelay import Flow, task


@task
def a_number(n):
    return n


with Flow("corpus-using-operators") as flow:
    a = a_number(7)
    b = a_number(3)

    add = a + b
    sub = a - b
    lt = a < b
    eq = a.is_equal(b)
    # etc

EXPECTED = {
    "state": "Success",
    "tasks": {
        add: ("Success", 10),
        sub: ("Success", 4),
        lt: ("Success", False),
        eq: ("Success", False),
    },
}
