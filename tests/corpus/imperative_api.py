"""The imperative API: ``set_dependencies``, ``set_upstream(key=, mapped=)``, ``bind``,
``add_edge`` and the default reference tasks.

Source: Prefect 1.x docs, core/concepts/flows.md ("Imperative API": ``RunMeFirst`` and
``PlusOneTask`` wired with ``flow.set_dependencies(task=plus_one, upstream_tasks=[RunMeFirst()],
keyword_tasks=dict(x=10))``; "Reference tasks": three ``Task()`` chained with ``add_edge``,
whose reference task is the last), and core/idioms/mapping.md (imperative tab:
``set_upstream(numbers, key="n", mapped=True, flow=flow)``; ``bind(..., flow=flow)`` as in its
conditional idiom), with ``sample(range(100), total)``
replaced by ``list(range(total))``. Stated outcome: ``plus_one`` gives 11 after ``RunMeFirst``
ran; the mapped output has one child per number; ``flow.reference_tasks() == {c}``.
"""

from flowrelay import Flow, Parameter, Task


class RunMeFirst(Task):
    def run(self):
        print("I'm running first!")


class PlusOneTask(Task):
    def run(self, x):
        return x + 1


class GetNumbers(Task):
    def run(self, total):
        return list(range(total))


class OutputValue(Task):
    def run(self, n, multiple):
        print(n * multiple)
        return n * multiple


flow = Flow("corpus-my-imperative-flow")
plus_one = PlusOneTask()
run_me_first = RunMeFirst()
flow.set_dependencies(task=plus_one, upstream_tasks=[run_me_first], keyword_tasks=dict(x=10))

total = Parameter("total", default=3)
multiple = Parameter("multiple", default=10)

numbers = GetNumbers()
numbers.set_upstream(total, key="total", flow=flow)

output_value = OutputValue()
output_value.set_upstream(numbers, key="n", mapped=True, flow=flow)
output_value.set_upstream(multiple, key="multiple", mapped=False, flow=flow)

plus_two = PlusOneTask(name="plus one again").bind(x=plus_one, flow=flow)

a, b, c = Task(), Task(), Task()
flow.add_edge(a, b)
flow.add_edge(b, c)
flow.add_edge(plus_one, a)

assert c in flow.reference_tasks()

EXPECTED = {
    "state": "Success",
    "tasks": {
        run_me_first: ("Success", None),
        plus_one: ("Success", 11),
        plus_two: ("Success", 12),
        numbers: ("Success", [0, 1, 2]),
        output_value: ("Mapped", [0, 10, 20]),
        c: ("Success", None),
    },
}
