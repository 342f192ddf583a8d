"""Branches in a flow (the seeds' engine's ``prefect.tasks.control_flow``): ``case`` blocks,
``switch``, ``ifelse`` and ``merge``. A branch not taken is Skipped, and so is everything after
it, until a ``merge`` (or a task with ``skip_on_upstream_skip=False``) takes the branch that ran.

>>> with Flow("branches") as flow:                     # doctest: +SKIP
...     cond = check_condition()
...     with case(cond, True):
...         val1 = action_if_true()
...     with case(cond, False):
...         val2 = action_if_false()
...     val = merge(val1, val2)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flowrelay.sdk.context import CaseBlock, active_flow, enter_case, leave_case
from flowrelay.sdk.signals import SKIP
from flowrelay.sdk.tasks import Parameter, Task, as_task, task
from flowrelay.sdk.triggers import all_finished, not_all_skipped

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow


class CompareValue(Task):
    """Succeeds when its input equals ``value``, else raises SKIP (what a branch hangs on)."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        self.value = value
        kwargs.setdefault("name", f'CompareValue: "{value}"')
        super().__init__(**kwargs)

    def run(self, value: Any) -> None:
        if value != self.value:
            raise SKIP(f'Provided value "{value}" did not match "{self.value}"')


class Merge(Task):
    """The result of the first branch (in argument order) that was not skipped."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("skip_on_upstream_skip", False)
        kwargs.setdefault("trigger", not_all_skipped)
        kwargs.setdefault("name", "Merge")
        super().__init__(**kwargs)

    def run(self, **task_results: Any) -> Any:
        ordered = sorted(task_results.items(), key=lambda item: int(item[0].removeprefix("task")))
        return next((value for _, value in ordered if value is not None), None)


def switch(condition: Any, cases: Mapping[Any, Any], mapped: bool = False) -> None:
    """Run only the task of ``cases`` whose key equals what ``condition`` returns; the others
    (and what follows them) are Skipped.

    >>> switch(which_source(), {"api": from_api, "file": from_file})  # doctest: +SKIP
    """
    flow = _flow_for("switch")
    for value, branch in cases.items():
        matches = CompareValue(value).bind(value=condition, mapped=mapped, flow=flow)
        flow.set_dependencies(flow.task_for(branch), upstream_tasks=[matches], mapped=mapped)


@task
def _as_bool(x: Any) -> bool:
    return bool(x)


def ifelse(condition: Any, true_task: Any, false_task: Any, mapped: bool = False) -> None:
    """Run ``true_task`` when ``condition`` is truthy, else ``false_task``; the other is
    Skipped."""
    flow = _flow_for("ifelse")
    as_bool = _as_bool.copy(name="as_bool")
    truth = as_bool.map(condition, flow=flow) if mapped else as_bool(condition, flow=flow)
    switch(condition=truth, cases={True: true_task, False: false_task}, mapped=mapped)


def merge(*tasks: Any, flow: Flow | None = None, mapped: bool = False) -> Task:
    """A task whose result is the first of ``tasks`` that was not skipped (the branch that
    ran); Skipped itself when all were."""
    flow = flow if flow is not None else _flow_for("merge")
    inputs = {f"task{index}": branch for index, branch in enumerate(tasks, start=1)}
    return Merge().bind(**inputs, mapped=mapped, flow=flow)


class case(CaseBlock):
    """``with case(task, value):`` the tasks made in the block run only when ``task``'s result
    equals ``value``; otherwise they are Skipped. Blocks nest."""

    def __init__(self, task: Any, value: Any) -> None:
        if isinstance(task, case):
            raise TypeError("case(task, value): the first argument is the task to compare")
        self.task = task
        self.value = value
        self._tasks: list[Task] = []
        self._flow: Flow | None = None
        self._token: Token[Any] | None = None

    def add_task(self, task: Task, flow: Flow) -> None:
        # A parameter is an input of the whole run, even when first used inside a block.
        if not isinstance(task, Parameter):
            self._tasks.append(task)
        self._flow = flow

    def __enter__(self) -> case:
        self._token = enter_case(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        assert self._token is not None
        leave_case(self._token)
        if kind is not None or not self._tasks:
            return
        flow = self._flow if self._flow is not None else _flow_for("case")
        condition = as_task(self.task, flow)
        made = set(self._tasks)
        # One comparison per block, made outside the block (a nested block's comparison belongs
        # to the enclosing one, so it too is skipped when the outer branch is not taken).
        matches = CompareValue(self.value).bind(
            value=condition if condition is not None else self.task, flow=flow
        )
        for member in self._tasks:
            if member is matches or member is condition:
                continue
            inside = [edge.upstream for edge in flow.edges_to(member) if edge.upstream in made]
            if not inside:
                flow.add_edge(matches, member)


def _flow_for(what: str) -> Flow:
    flow = active_flow()
    if flow is None:
        raise ValueError(f"{what} needs a flow: use it inside `with Flow(...)`")
    return flow


def _kept_by_default(result: Any) -> bool:
    return result is not None and not isinstance(result, BaseException)


class FilterTask(Task):
    """Keeps the items of a list that ``filter_func`` accepts (by default: not None and not an
    exception, which drops the failed and skipped children of a mapped task). Runs whatever
    happened upstream.

    >>> keep_ok = FilterTask()                              # doctest: +SKIP
    >>> with Flow("f") as flow:                             # doctest: +SKIP
    ...     cleaned = keep_ok(fetch.map(urls))              # only the fetches that worked
    """

    def __init__(
        self,
        filter_func: Callable[[Any], bool] | None = None,
        log_func: Callable[[list[Any]], str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("skip_on_upstream_skip", False)
        kwargs.setdefault("trigger", all_finished)
        kwargs.setdefault("name", "FilterTask")
        self.filter_func = filter_func or _kept_by_default
        self.log_func = log_func
        super().__init__(**kwargs)

    def run(self, task_results: list[Any]) -> list[Any]:
        kept = [result for result in task_results if self.filter_func(result)]
        if self.log_func is not None:
            line = self.log_func(kept)
            if line:
                self.logger.info("%s", line)
        return kept
