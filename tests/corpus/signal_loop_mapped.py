"""Task looping combined with mapping.

Source: Prefect 1.x docs, core/advanced_tutorials/task-looping.md ("Taking it one step
further": ``compute_large_fibonacci.map(ms)``), the Fibonacci web API replaced by a local
function as in ``signal_loop_fibonacci``. Stated outcome:
``mapped_flow.run(ms=[10, 100, 1000, 1500])`` gives ``[8, 89, 987, 987]``.
"""

from datetime import timedelta

import flowrelay
from flowrelay import Flow, Parameter, task
from flowrelay.engine.signals import LOOP


def nth_fibonacci(nth):
    a, b = 1, 1
    for _ in range(nth - 1):
        a, b = b, a + b
    return a


@task(max_retries=5, retry_delay=timedelta(seconds=2))
def compute_large_fibonacci(M):
    # we extract the accumulated task loop result from context
    loop_payload = flowrelay.context.get("task_loop_result", {})

    n = loop_payload.get("n", 1)
    fib = loop_payload.get("fib", 1)

    next_fib = nth_fibonacci(n)

    if next_fib > M:
        return fib  # return statements end the loop

    raise LOOP(message=f"Fib {n}={next_fib}", result=dict(n=n + 1, fib=next_fib))


with Flow("corpus-mapped-fibonacci") as mapped_flow:
    ms = Parameter("ms")
    fib_nums = compute_large_fibonacci.map(ms)

flow = mapped_flow

EXPECTED = {
    "state": "Success",
    "parameters": {"ms": [10, 100, 1000, 1500]},
    "tasks": {fib_nums: ("Mapped", [8, 89, 987, 987])},
}
