"""Tasks: the units of work a flow is made of.

Functional API (inside ``with Flow(...)``): calling a task adds a copy of it to the flow, wired to
its arguments::

    @task(max_retries=2, retry_delay=timedelta(seconds=5), tags=["dask-resource:GPU=1"])
    def train(data, epochs=3): ...

    with Flow("ml") as flow:
        model = train(load(), epochs=10)

Imperative API: ``task.set_upstream(other, flow=flow)``, ``task.bind(x=other,
flow=flow)``. Mapping: ``add.map(numbers, unmapped(10))`` runs one child per item.
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from flowrelay.sdk.context import active_flow

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow

_DASK_RESOURCE_TAG = re.compile(r"^dask-resource:(?P<key>[^=]+)=(?P<amount>.+)$")
_NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "<no default>"})()


class unmapped:
    """Marks an argument of ``task.map`` that every mapped child receives whole."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True, slots=True)
class Edge:
    """``upstream`` feeds ``downstream``: as keyword ``key`` (None: ordering only), per item if
    ``mapped``."""

    upstream: Task
    downstream: Task
    key: str | None = None
    mapped: bool = False


class Task:
    """A unit of work. Subclass and implement ``run``, or use the ``@task`` decorator.

    Args:
        name: shown in states and logs; defaults to the class or function name.
        max_retries: how many times to run again after a failure (0 = never).
        retry_delay: wait between attempts; required when ``max_retries > 0``.
        timeout: seconds (or a timedelta) one attempt may take before it counts as failed.
        tags: free-form strings; ``dask-resource:KEY=NUM`` becomes a Dask worker resource.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        max_retries: int = 0,
        retry_delay: timedelta | float | None = None,
        timeout: timedelta | float | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        self.name = name or type(self).__name__
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(
                f"Task {self.name!r}: max_retries must be an int >= 0, got {max_retries!r}"
            )
        self.max_retries = max_retries
        self.retry_delay = _as_timedelta(retry_delay, "retry_delay", self.name)
        if max_retries > 0 and self.retry_delay is None:
            raise ValueError(
                f"Task {self.name!r}: a retry_delay (timedelta or seconds) must be given "
                f"when max_retries > 0"
            )
        timeout_delta = _as_timedelta(timeout, "timeout", self.name)
        if timeout_delta is not None and timeout_delta.total_seconds() <= 0:
            raise ValueError(f"Task {self.name!r}: timeout must be positive, got {timeout!r}")
        self.timeout: float | None = timeout_delta.total_seconds() if timeout_delta else None
        if isinstance(tags, str):
            raise TypeError(f"Task {self.name!r}: tags must be a list of strings, not one string")
        self.tags: frozenset[str] = frozenset(tags or ())
        self.dask_resources: dict[str, float] = _parse_dask_resources(self.tags, self.name)
        self._signature = inspect.signature(self.run)
        for param in self._signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ValueError(
                    f"Task {self.name!r}: functions with *{param.name} are not supported; "
                    f"take a list argument instead"
                )

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The work itself. Called with the task's inputs as keyword arguments."""
        raise NotImplementedError(f"Task {self.name!r} does not implement run()")

    def copy(self, **overrides: Any) -> Task:
        """A new task with the same settings (``overrides`` replace some of them)."""
        new = copy.copy(self)
        for attribute, value in overrides.items():
            if not hasattr(new, attribute):
                raise AttributeError(f"Task {self.name!r} has no setting {attribute!r}")
            setattr(new, attribute, value)
        return new

    # --- functional API ---------------------------------------------------------------------

    def __call__(
        self,
        *args: Any,
        mapped: bool = False,
        upstream_tasks: Iterable[Any] | None = None,
        task_args: Mapping[str, Any] | None = None,
        flow: Flow | None = None,
        **kwargs: Any,
    ) -> Task:
        """Add a copy of this task to the active (or given) flow, fed by these arguments."""
        new = self.copy(**(task_args or {}))
        return new.bind(*args, mapped=mapped, upstream_tasks=upstream_tasks, flow=flow, **kwargs)

    def map(
        self,
        *args: Any,
        upstream_tasks: Iterable[Any] | None = None,
        task_args: Mapping[str, Any] | None = None,
        flow: Flow | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run one copy of this task per item of the arguments (``unmapped(x)`` is passed whole).

        >>> with Flow("m") as flow:                        # doctest: +SKIP
        ...     totals = add.map([1, 2, 3], unmapped(10))  # 11, 12, 13
        """
        new = self.copy(**(task_args or {}))
        return new.bind(*args, mapped=True, upstream_tasks=upstream_tasks, flow=flow, **kwargs)

    def bind(
        self,
        *args: Any,
        mapped: bool = False,
        upstream_tasks: Iterable[Any] | None = None,
        flow: Flow | None = None,
        **kwargs: Any,
    ) -> Task:
        """Wire this very task's inputs in ``flow`` (the imperative form of calling it)."""
        flow = _require_flow(flow, self, "bind")
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"Task {self.name!r}: {exc}") from None
        flow.add_task(self)
        for key, value in bound.arguments.items():
            if self._signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
                for extra_key, extra_value in value.items():
                    self._bind_input(flow, extra_key, extra_value, mapped)
            else:
                self._bind_input(flow, key, value, mapped)
        for upstream in upstream_tasks or ():
            flow.add_edge(flow.task_for(upstream), self)
        return self

    def _bind_input(self, flow: Flow, key: str, value: Any, mapped: bool) -> None:
        if isinstance(value, unmapped):
            value, mapped = value.value, False
        upstream = as_task(value, flow)
        if upstream is None:
            flow.add_constant(self, key, value, mapped=mapped)
        else:
            flow.add_edge(upstream, self, key=key, mapped=mapped)

    def set_upstream(
        self, task: Any, flow: Flow | None = None, key: str | None = None, mapped: bool = False
    ) -> Task:
        """Make ``task`` run before this one (and feed it as ``key`` when given)."""
        flow = _require_flow(flow, self, "set_upstream")
        flow.add_edge(flow.task_for(task), self, key=key, mapped=mapped)
        return self

    def set_downstream(
        self, task: Task, flow: Flow | None = None, key: str | None = None, mapped: bool = False
    ) -> Task:
        """Make this task run before ``task`` (and feed it as ``key`` when given)."""
        flow = _require_flow(flow, self, "set_downstream")
        flow.add_edge(self, task, key=key, mapped=mapped)
        return self

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"


class FunctionTask(Task):
    """A task whose work is a plain function (what ``@task`` makes)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None, **settings: Any) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        self.fn = fn
        self.run = fn  # type: ignore[method-assign]
        super().__init__(name=name or getattr(fn, "__name__", None), **settings)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn


class Parameter(Task):
    """A flow input, given per run: ``flow.run(parameters={"x": 3})``.

    A parameter without a default is required; one with a default is optional unless
    ``required=True``.
    """

    def __init__(self, name: str, default: Any = _NO_DEFAULT, required: bool | None = None) -> None:
        if required is None:
            required = default is _NO_DEFAULT
        self.default = None if default is _NO_DEFAULT else default
        self.required = required
        super().__init__(name=name)

    def run(self) -> Any:
        return self.default

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"


class Collection(Task):
    """Gathers the values of tasks passed inside a list, tuple, set or dict argument."""

    def __init__(self, kind: type, keys: list[Any]) -> None:
        self.kind = kind
        self.keys = keys
        super().__init__(name=kind.__name__)

    def run(self, **items: Any) -> Any:
        values = [items[f"item_{index}"] for index in range(len(self.keys))]
        if self.kind is dict:
            return dict(zip(self.keys, values, strict=True))
        return self.kind(values)


F = TypeVar("F", bound=Callable[..., Any])


class TaskDecorator(Generic[F]):
    """What ``@task(...)`` returns before it is applied to a function."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def __call__(self, fn: F) -> FunctionTask:
        return FunctionTask(fn, **self.settings)


@overload
def task(fn: Callable[..., Any], /) -> FunctionTask: ...


@overload
def task(
    *,
    name: str | None = None,
    max_retries: int = 0,
    retry_delay: timedelta | float | None = None,
    timeout: timedelta | float | None = None,
    tags: Iterable[str] | None = None,
) -> TaskDecorator[Any]: ...


def task(
    fn: Callable[..., Any] | None = None, /, **settings: Any
) -> FunctionTask | TaskDecorator[Any]:
    """Turn a function into a task; use bare (``@task``) or with settings (``@task(name=...)``).

    >>> @task(max_retries=3, retry_delay=timedelta(seconds=1))
    ... def fetch(url): ...
    """
    if fn is None:
        return TaskDecorator(settings)
    return FunctionTask(fn, **settings)


def as_task(value: Any, flow: Flow) -> Task | None:
    """The task that produces ``value`` in ``flow``, or None when ``value`` is a plain constant.

    Lists, tuples, sets and dicts that contain tasks become a ``Collection`` task.
    """
    if isinstance(value, Task):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        keys: list[Any] = list(range(len(items)))
    elif isinstance(value, dict):
        keys, items = list(value.keys()), list(value.values())
    else:
        return None
    upstreams = [as_task(item, flow) for item in items]
    if all(upstream is None for upstream in upstreams):
        return None
    collection = Collection(type(value), keys)
    flow.add_task(collection)
    for index, (item, upstream) in enumerate(zip(items, upstreams, strict=True)):
        if upstream is None:
            flow.add_constant(collection, f"item_{index}", item)
        else:
            flow.add_edge(upstream, collection, key=f"item_{index}")
    return collection


def _require_flow(flow: Flow | None, task: Task, action: str) -> Flow:
    if flow is None:  # not `flow or ...`: a Flow with no tasks yet is falsy (len 0)
        flow = active_flow()
    if flow is None:
        raise ValueError(
            f"Task {task.name!r}: {action} needs a flow: call it inside `with Flow(...)` "
            f"or pass flow=..."
        )
    return flow


def _as_timedelta(value: timedelta | float | None, what: str, task_name: str) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    raise TypeError(f"Task {task_name!r}: {what} must be a timedelta or seconds, got {value!r}")


def _parse_dask_resources(tags: Iterable[str], task_name: str) -> dict[str, float]:
    resources: dict[str, float] = {}
    for tag in tags:
        if not tag.startswith("dask-resource:"):
            continue
        match = _DASK_RESOURCE_TAG.match(tag)
        try:
            if match is None:
                raise ValueError
            resources[match["key"]] = float(match["amount"])
        except ValueError:
            raise ValueError(
                f"Task {task_name!r}: tag {tag!r} is not of the form dask-resource:KEY=NUM"
            ) from None
    return resources
