"""``apply_map``: map a whole function of tasks (the seeds' engine's ``prefect.apply_map``).

>>> def inc_or_negate(x):                                   # doctest: +SKIP
...     with case(x > 5, True):
...         a = inc(x)
...     with case(x > 5, False):
...         b = negate(x)
...     return merge(a, b)
>>> with Flow("per item") as flow:                          # doctest: +SKIP
...     result = apply_map(inc_or_negate, [1, 7, 3])        # one branch per item
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowrelay.sdk.context import active_flow
from flowrelay.sdk.tasks import Constant, Parameter, Task, as_task, unmapped

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow


class _Argument(Task):
    """Stands in for one argument of the function while its tasks are made."""

    def __init__(self, value: Any, is_mapped: bool) -> None:
        self.value = value
        self.is_mapped = is_mapped
        self._constant: Constant | None = None
        super().__init__(name="apply_map-argument")

    def as_constant(self) -> Constant:
        """One ``Constant`` task for this value, shared by every task that reads it."""
        if self._constant is None:
            self._constant = Constant(self.value)
        return self._constant

    def run(self) -> Any:  # pragma: no cover - never part of a flow that runs
        raise RuntimeError("an apply_map argument placeholder ran")


def apply_map(func: Callable[..., Any], *args: Any, flow: Flow | None = None, **kwargs: Any) -> Any:
    """Call ``func`` once, as if for one item of the arguments, and map every task it makes
    over them (``unmapped(x)`` is passed whole). Returns what ``func`` returns, whose tasks are
    now mapped tasks. ``case`` blocks inside ``func`` branch per item."""
    from flowrelay.sdk.flow import Flow

    target = flow if flow is not None else active_flow()
    if target is None:
        raise ValueError("apply_map needs a flow: use it inside `with Flow(...)` or pass flow=...")
    before = set(target._tasks)

    def stand_in(value: Any) -> _Argument:
        if isinstance(value, unmapped):
            return _Argument(value.value, is_mapped=False)
        return _Argument(value, is_mapped=True)

    arguments = [stand_in(value) for value in args]
    keywords = {key: stand_in(value) for key, value in kwargs.items()}
    with Flow("apply_map") as made:
        returned = func(*arguments, **keywords)
    mapped_tasks: set[Task] = set()
    for task in made.sorted_tasks():
        if isinstance(task, _Argument) or task in before:
            continue
        target.add_task(task)
        for key, value in made.constants.get(task, {}).items():
            target.add_constant(task, key, value, mapped=key in made.mapped_constants.get(task, ()))
        if made.mapped_constants.get(task):
            mapped_tasks.add(task)
        for edge in made.edges_to(task):
            upstream = edge.upstream
            if isinstance(upstream, _Argument):
                # A plain value becomes a task, as in the seeds' engine: a task that reads it
                # (a merge, a trigger) sees it as a succeeded upstream, not a constant.
                source = as_task(upstream.value, target) or upstream.as_constant()
                target.add_edge(source, task, key=edge.key, mapped=upstream.is_mapped)
                if upstream.is_mapped:
                    mapped_tasks.add(task)
            elif upstream in before or isinstance(upstream, Parameter):
                target.add_edge(upstream, task, key=edge.key, mapped=edge.mapped)
                if edge.mapped:
                    mapped_tasks.add(task)
            else:
                per_item = upstream in mapped_tasks
                target.add_edge(upstream, task, key=edge.key, mapped=per_item or edge.mapped)
                if per_item:
                    mapped_tasks.add(task)
    return returned
