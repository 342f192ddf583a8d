"""Task looping with ``LOOP`` and ``task_loop_result``: the largest Fibonacci number below M.

Source: Prefect 1.x docs, core/advanced_tutorials/task-looping.md ("Introducing: Task Looping"),
with the tutorial's web API for the n-th Fibonacci number replaced by a local function (the
tutorial calls it a black box; tests here have no network). Stated outcome:
``flow.run(M=100)`` gives 89, ``flow.run(M=1000)`` gives 987.
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


with Flow("corpus-fibonacci") as flow:
    M = Parameter("M")
    fib_num = compute_large_fibonacci(M)

EXPECTED = {
    "state": "Success",
    "parameters": {"M": 100},
    "tasks": {fib_num: ("Success", 89)},
    "variants": [
        {"parameters": {"M": 1000}, "state": "Success", "tasks": {fib_num: ("Success", 987)}}
    ],
}
