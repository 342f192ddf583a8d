"""The benchmark workloads: task functions, flow builders and their plain-Python, raw-dask and
raw-distributed equivalents.

Functions live at module level so that ``distributed`` pickles them by reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flowrelay import Flow, Task, task
from flowrelay.sdk.executors import Executor
from flowrelay.sdk.states import State
from flowrelay.triggers import any_successful

SLEEP_SECONDS = 0.05


class BenchmarkError(RuntimeError):
    """A workload did not finish successfully or returned the wrong result."""


def inc(x: int) -> int:
    return x + 1


def total(xs: Sequence[int]) -> int:
    return sum(xs)


def nap(i: int) -> int:
    time.sleep(SLEEP_SECONDS)
    return i


def observe(task: Task, old: State, new: State) -> None:
    """A state handler that looks at every change and keeps the state (what notifiers do)."""
    if new.is_failed():
        raise BenchmarkError(f"{task.name} failed: {new.message}")


inc_task = task(inc)
total_task = task(total)
nap_task = task(nap)
# The seeds' engine's options in place on every task: a trigger other than the default (asked
# with the upstream states) and a state handler (called on each change of state).
watched_inc_task = task(inc, trigger=any_successful, state_handlers=[observe])


def chain_expected(n: int) -> int:
    return n


def map_reduce_expected(n: int) -> int:
    return n * (n + 1) // 2


def expect(expected: Any) -> Callable[[Any], None]:
    """A check that a baseline returned ``expected``."""

    def check(value: Any) -> None:
        if value != expected:
            raise BenchmarkError(f"baseline returned {value!r}, expected {expected!r}")

    return check


@dataclass(frozen=True)
class BuiltFlow:
    """A flow ready to run, the task whose result is checked, and how many task runs it has."""

    flow: Flow
    result_task: Task
    expected: Any
    task_runs: int

    def run(self, executor: Executor) -> State:
        """``flow.run`` on ``executor``: all that is timed."""
        return self.flow.run(executor=executor)

    def check(self, state: State) -> None:
        """Raise ``BenchmarkError`` unless ``state`` succeeded with the expected result."""
        if not state.is_successful():
            raise BenchmarkError(f"flow {self.flow.name!r} failed: {state.message}")
        value = state.result[self.result_task].result
        if value != self.expected:
            raise BenchmarkError(
                f"flow {self.flow.name!r} returned {value!r}, expected {self.expected!r}"
            )


def chain_flow(n: int, step: Task = inc_task, name: str = "chain") -> BuiltFlow:
    """``n`` tasks ``inc(x) -> x + 1`` (``step``), each fed by the previous one."""
    with Flow(f"{name}-{n}") as flow:
        last = step(0)
        for _ in range(n - 1):
            last = step(last)
    return BuiltFlow(flow, last, chain_expected(n), n)


def watched_chain_flow(n: int) -> BuiltFlow:
    """The chain with a trigger and a state handler on every task."""
    return chain_flow(n, watched_inc_task, "watched-chain")


def map_reduce_flow(n: int) -> BuiltFlow:
    """``inc.map(range(n))`` then one ``total`` task: ``n + 1`` task runs."""
    with Flow(f"map-reduce-{n}") as flow:
        mapped = inc_task.map(range(n))
        result = total_task(mapped)
    return BuiltFlow(flow, result, map_reduce_expected(n), n + 1)


def sleep_map_flow(n: int) -> BuiltFlow:
    """``nap.map(range(n))``: ``n`` children that each sleep ``SLEEP_SECONDS``."""
    with Flow(f"sleep-map-{n}") as flow:
        result = nap_task.map(range(n))
    return BuiltFlow(flow, result, list(range(n)), n)


# --- plain Python ------------------------------------------------------------------------------


def plain_chain(n: int) -> int:
    x = 0
    for _ in range(n):
        x = inc(x)
    return x


def plain_map_reduce(n: int) -> int:
    return total([inc(i) for i in range(n)])


# --- raw dask (local schedulers) --------------------------------------------------------------
# Timed from building the delayed graph to the computed value: flow.run builds its dask graph
# while it runs, so this is the same work done directly.


def dask_chain(n: int, scheduler: str) -> int:
    from dask.base import compute
    from dask.delayed import delayed

    lazy_inc = delayed(inc, pure=False)
    last = lazy_inc(0)
    for _ in range(n - 1):
        last = lazy_inc(last)
    (value,) = compute(last, scheduler=scheduler)
    return int(value)


def dask_map_reduce(n: int, scheduler: str) -> int:
    from dask.base import compute
    from dask.delayed import delayed

    lazy_inc = delayed(inc, pure=False)
    result = delayed(total, pure=False)([lazy_inc(i) for i in range(n)])
    (value,) = compute(result, scheduler=scheduler)
    return int(value)


def _graph_get(scheduler: str) -> Callable[..., Any]:
    if scheduler == "threads":
        from dask.threaded import get as threaded_get

        return threaded_get
    from dask.local import get_sync

    return get_sync


def dask_graph_chain(n: int, scheduler: str) -> int:
    """The chain as a low-level task graph run by dask's scheduler: dask's floor, with none of
    the delayed API's graph building."""
    graph: dict[str, Any] = {"inc-0": (inc, 0)}
    for i in range(1, n):
        graph[f"inc-{i}"] = (inc, f"inc-{i - 1}")
    return int(_graph_get(scheduler)(graph, f"inc-{n - 1}"))


def dask_graph_map_reduce(n: int, scheduler: str) -> int:
    graph: dict[str, Any] = {f"inc-{i}": (inc, i) for i in range(n)}
    graph["total"] = (lambda *values: total(values), *(f"inc-{i}" for i in range(n)))
    return int(_graph_get(scheduler)(graph, "total"))


# --- raw distributed ---------------------------------------------------------------------------
# A new Client per run, like DaskExecutor(address=...) does, so both pay for connecting.


def distributed_chain(address: str, n: int) -> int:
    from distributed import Client

    with Client(address) as client:
        last = client.submit(inc, 0, pure=False)
        for _ in range(n - 1):
            last = client.submit(inc, last, pure=False)
        return int(last.result())


def distributed_map_reduce(address: str, n: int) -> int:
    from distributed import Client

    with Client(address) as client:
        mapped = client.map(inc, range(n), pure=False)
        return int(client.submit(total, mapped, pure=False).result())
