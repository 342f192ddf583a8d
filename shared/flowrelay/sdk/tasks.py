"""Tasks: the units of work a flow is made of.

Functional API (inside ``with Flow(...)``): calling a task adds a copy of it to the flow, wired to
its arguments::

    @task(max_retries=2, retry_delay=timedelta(seconds=5), tags=["dask-resource:GPU=1"])
    def train(data, epochs=3): ...

    with Flow("ml") as flow:
        model = train(load(), epochs=10)

Imperative API: ``task.set_upstream(other, flow=flow)``, ``task.bind(x=other,
flow=flow)``. Mapping: ``add.map(numbers, unmapped(10))`` runs one child per item.

The seeds' engine's task options work as it documented them: ``trigger=``,
``skip_on_upstream_skip=``, ``state_handlers=``, ``nout=`` (``a, b = pair()``), ``task()["key"]``
and operators (``total + 1``, ``count > 3``: each builds a task), ``log_stdout=``, results and
checkpoints (``result=``, ``checkpoint=``, ``target=``) and in-process caching (``cache_for=``).
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from flowrelay.sdk.context import active_flow
from flowrelay.sdk.runcontext import context

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.states import State

StateHandler = Callable[[Any, "State", "State"], "State | None"]

_DASK_RESOURCE_TAG = re.compile(r"^dask-resource:(?P<key>[^=]+)=(?P<amount>.+)$")
_NO_DEFAULT: Any = type("NoDefault", (), {"__repr__": lambda self: "<no default>"})()


class unmapped:
    """Marks an argument of ``task.map`` that every mapped child receives whole."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class mapped:
    """Marks an argument of a plain call that is mapped over (``add(mapped(xs), 1)``)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_MAPPED = mapped  # the methods below take a ``mapped`` flag that hides the class


class flatten:
    """Marks a mapped argument whose items are lists, mapped over as one list:
    ``add.map(flatten(nested))`` runs one child per inner item."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True, slots=True)
class Edge:
    """``upstream`` feeds ``downstream``: as keyword ``key`` (None: ordering only), per item if
    ``mapped``, its items' items if ``flattened``."""

    upstream: Task
    downstream: Task
    key: str | None = None
    mapped: bool = False
    flattened: bool = False

    @property
    def upstream_task(self) -> Task:
        """The seeds' engine's name for ``upstream``."""
        return self.upstream

    @property
    def downstream_task(self) -> Task:
        """The seeds' engine's name for ``downstream``."""
        return self.downstream


class Task:
    """A unit of work. Subclass and implement ``run``, or use the ``@task`` decorator.

    Args (the seeds' engine's, with its defaults):
        name: shown in states and logs; defaults to the class or function name.
        slug: the task's unique name in its flow (default: ``name``, numbered when taken).
        tags: free-form strings; ``dask-resource:KEY=NUM`` becomes a Dask worker resource.
        max_retries: how many times to run again after a failure (0 = never).
        retry_delay: wait between attempts; required when ``max_retries > 0``.
        timeout: seconds (or a timedelta) one attempt may take before it counts as failed.
        trigger: whether to run given the upstream states (``flowrelay.triggers``; default
            ``all_successful``).
        skip_on_upstream_skip: be Skipped when an upstream task was (default True).
        cache_for, cache_validator, cache_key: reuse a result within this process for a while
            (``flowrelay.engine.cache_validators``).
        checkpoint: False never writes the result; otherwise it is written when checkpointing is
            on for the run (flowrelay runs: on; ``flow.run``: ``FLOWRELAY__FLOWS__CHECKPOINTING``).
        state_handlers: ``fn(task, old_state, new_state)`` called on every change; may return
            a state to use instead.
        on_failure: ``fn(task, state)`` called when the task fails.
        log_stdout: send what the task prints to its logger (and so to the run's log).
        result: where results are written (``flowrelay.engine.results``; default: the flow's).
        target: a location (template or callable) whose existence means the task already ran:
            it is then Cached with the value read from there.
        task_run_name: a template for the name its runs show, e.g. ``"fetch-{city}"``.
        nout: how many values it returns, for ``a, b = task()`` (else from a ``Tuple[...]``
            return annotation).
    """

    #: Whether running it again gives what it gave before (a parameter, a secret): a restart
    #: that runs it again may still reuse the results of what follows it.
    same_when_rerun: ClassVar[bool] = False

    def __init__(
        self,
        name: str | None = None,
        slug: str | None = None,
        tags: Iterable[str] | None = None,
        max_retries: int | None = None,
        retry_delay: timedelta | float | None = None,
        timeout: timedelta | float | None = None,
        trigger: Callable[..., bool] | None = None,
        skip_on_upstream_skip: bool = True,
        cache_for: timedelta | None = None,
        cache_validator: Callable[..., bool] | None = None,
        cache_key: str | None = None,
        checkpoint: bool | None = None,
        state_handlers: Iterable[StateHandler] | None = None,
        on_failure: Callable[[Any, State], None] | None = None,
        log_stdout: bool = False,
        result: Any = None,
        target: str | Callable[..., str] | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        nout: int | None = None,
    ) -> None:
        self.name = name or type(self).__name__
        self.slug = slug
        self.max_retries: int = max_retries  # type: ignore[assignment]  # settled below
        self.retry_delay: timedelta | None = retry_delay  # type: ignore[assignment]
        self.timeout: float | None = timeout  # type: ignore[assignment]
        self.tags: frozenset[str] = tags  # type: ignore[assignment]
        self.trigger = trigger
        self.skip_on_upstream_skip = skip_on_upstream_skip
        self.cache_for = cache_for
        self.cache_validator = cache_validator
        self.cache_key = cache_key
        self.checkpoint = checkpoint
        self.state_handlers: list[StateHandler] = state_handlers  # type: ignore[assignment]
        self.on_failure = on_failure
        self.log_stdout = log_stdout
        self.result = result
        self.target = target
        self.task_run_name = task_run_name
        # The base run() takes nothing (a bare ``Task()`` is a no-op, as in the seeds' engine).
        plain = getattr(self.run, "__func__", None) is Task.run
        self._signature = inspect.Signature() if plain else inspect.signature(self.run)
        for param in self._signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                raise ValueError(
                    f"Task {self.name!r}: functions with *{param.name} are not supported; "
                    f"take a list argument instead"
                )
        self.nout = _nout_from_annotation(self.run) if nout is None else nout
        self._settle()

    def _settle(self) -> None:
        """Check and normalise the settings, as given to ``__init__`` or changed by ``copy``
        (``task_args``): every way of setting them is held to the same rules."""
        name = self.name
        retries: Any = self.max_retries  # as given: None means 0
        if retries is None:
            retries = 0
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"Task {name!r}: max_retries must be an int >= 0, got {retries!r}")
        self.max_retries = retries
        self.retry_delay = _as_timedelta(self.retry_delay, "retry_delay", name)
        if retries > 0 and self.retry_delay is None:
            raise ValueError(
                f"Task {name!r}: a retry_delay (timedelta or seconds) must be given "
                f"when max_retries > 0"
            )
        timeout = _as_timedelta(self.timeout, "timeout", name)
        if timeout is not None and timeout.total_seconds() <= 0:
            raise ValueError(f"Task {name!r}: timeout must be positive, got {self.timeout!r}")
        self.timeout = timeout.total_seconds() if timeout is not None else None
        tags: Any = self.tags  # as given: any iterable of strings
        if isinstance(tags, str):
            raise TypeError(f"Task {name!r}: tags must be a list of strings, not one string")
        self.tags = frozenset(tags or ()) | _context_tags()
        self.dask_resources: dict[str, float] = _parse_dask_resources(self.tags, name)
        if self.trigger is not None and not callable(self.trigger):
            raise TypeError(
                f"Task {name!r}: trigger must be a function of the upstream states "
                f"(flowrelay.triggers), got {self.trigger!r}"
            )
        self.skip_on_upstream_skip = bool(self.skip_on_upstream_skip)
        if self.cache_for is not None and not isinstance(self.cache_for, timedelta):
            raise TypeError(f"Task {name!r}: cache_for must be a timedelta, got {self.cache_for!r}")
        if self.cache_validator is not None and self.cache_for is None:
            raise ValueError(
                f"Task {name!r}: cache_validator needs cache_for (how long a result is kept)"
            )
        handlers: Any = self.state_handlers  # as given: any iterable of functions
        if callable(handlers) or isinstance(handlers, str):
            raise TypeError(f"Task {name!r}: state_handlers is a list of functions")
        self.state_handlers = list(handlers or ())
        for handler in [*self.state_handlers, self.on_failure]:
            if handler is not None and not callable(handler):
                raise TypeError(f"Task {name!r}: {handler!r} is not a function")
        self.log_stdout = bool(self.log_stdout)
        result = self.result
        if result is not None and (
            isinstance(result, type)
            or not all(hasattr(result, method) for method in ("write", "read", "exists"))
        ):
            raise TypeError(
                f"Task {name!r}: result must be a Result instance (flowrelay.engine.results), "
                f"e.g. LocalResult(dir=...), got {result!r}"
            )
        if self.target is not None and not (isinstance(self.target, str) or callable(self.target)):
            raise TypeError(f"Task {name!r}: target is a location template or a function")
        nout = self.nout
        if nout is not None and (not isinstance(nout, int) or isinstance(nout, bool) or nout < 0):
            raise ValueError(f"Task {name!r}: nout must be an int >= 0, got {nout!r}")

    @property
    def logger(self) -> logging.Logger:
        """The task's logger (``context.get("logger")`` inside it): its lines reach the run's
        log, named ``flowrelay.task.<name>``."""
        # Kept, since every run of the task asks for it; made again when the name changed.
        kept: logging.Logger | None = self.__dict__.get("_logger")
        if kept is None or kept.name[15:] != self.name:
            kept = logging.getLogger(f"flowrelay.task.{self.name}")
            self.__dict__["_logger"] = kept
        return kept

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """The work itself, called with the task's inputs as keyword arguments. Subclasses
        implement it; this one takes nothing and returns None (a task that only orders others,
        or that only its state handlers matter for)."""
        return None

    def copy(self, **overrides: Any) -> Task:
        """A new task with the same settings (``overrides`` replace some of them, checked as
        ``__init__`` checks them; ``tags`` are added to the task's own, as are those of an
        enclosing ``with tags(...)``)."""
        if "_signature" not in self.__dict__:
            raise TypeError(
                f"{type(self).__name__}: its __init__ must call super().__init__(**kwargs) "
                f"(Task's settings were never set)"
            )
        new = copy.copy(self)
        for attribute, value in overrides.items():
            if not hasattr(new, attribute):
                raise AttributeError(f"Task {self.name!r} has no setting {attribute!r}")
            setattr(new, attribute, value)
        if "tags" in overrides and not isinstance(overrides["tags"], str):
            new.tags = self.tags | frozenset(overrides["tags"] or ())
        new._settle()
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
            if isinstance(upstream, unmapped):
                flow.add_edge(flow.task_for(upstream.value), self)
            else:
                flow.add_edge(flow.task_for(upstream), self, mapped=mapped)
        return self

    def _bind_input(self, flow: Flow, key: str, value: Any, mapped: bool) -> None:
        flattened = False
        if isinstance(value, unmapped):
            value, mapped = value.value, False
        elif isinstance(value, _MAPPED):
            value, mapped = value.value, True
        if isinstance(value, flatten):
            value, flattened = value.value, True
        upstream = as_task(value, flow)
        if upstream is None:
            if flattened:
                value = [item for inner in value for item in inner]
            flow.add_constant(self, key, value, mapped=mapped)
        else:
            flow.add_edge(upstream, self, key=key, mapped=mapped, flattened=flattened)

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

    def set_dependencies(
        self,
        flow: Flow | None = None,
        upstream_tasks: Iterable[Any] | None = None,
        downstream_tasks: Iterable[Task] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
    ) -> Task:
        """Wire this task in ``flow`` in one call (``Flow.set_dependencies`` for this task)."""
        flow = _require_flow(flow, self, "set_dependencies")
        flow.set_dependencies(
            self,
            upstream_tasks=upstream_tasks,
            downstream_tasks=downstream_tasks,
            keyword_tasks=keyword_tasks,
            mapped=mapped,
        )
        return self

    # --- tasks built from tasks (the seeds' engine's operators) ----------------------------

    def __iter__(self) -> Iterator[Task]:
        if self.nout is None:
            raise TypeError(
                f"Task {self.name!r} is not iterable. If it returns several values, give it "
                f"nout= (or a Tuple[...] return annotation) to unpack them."
            )
        return (self[index] for index in range(self.nout))

    def __getitem__(self, key: Any) -> Task:
        from flowrelay.sdk.operators import GetItem

        return GetItem().bind(self, key)

    def __or__(self, other: Task) -> Task:
        """``a | b``: b runs after a. Returns b."""
        self.set_dependencies(downstream_tasks=[other])
        return other

    def __ror__(self, other: Task) -> Task:
        self.set_dependencies(upstream_tasks=[other])
        return self

    def __add__(self, other: Any) -> Task:
        return _operator("Add", self, other)

    def __sub__(self, other: Any) -> Task:
        return _operator("Sub", self, other)

    def __mul__(self, other: Any) -> Task:
        return _operator("Mul", self, other)

    def __truediv__(self, other: Any) -> Task:
        return _operator("Div", self, other)

    def __floordiv__(self, other: Any) -> Task:
        return _operator("FloorDiv", self, other)

    def __mod__(self, other: Any) -> Task:
        return _operator("Mod", self, other)

    def __pow__(self, other: Any) -> Task:
        return _operator("Pow", self, other)

    def __and__(self, other: Any) -> Task:
        return _operator("And", self, other)

    def __radd__(self, other: Any) -> Task:
        return _operator("Add", other, self)

    def __rsub__(self, other: Any) -> Task:
        return _operator("Sub", other, self)

    def __rmul__(self, other: Any) -> Task:
        return _operator("Mul", other, self)

    def __rtruediv__(self, other: Any) -> Task:
        return _operator("Div", other, self)

    def __rfloordiv__(self, other: Any) -> Task:
        return _operator("FloorDiv", other, self)

    def __rmod__(self, other: Any) -> Task:
        return _operator("Mod", other, self)

    def __rpow__(self, other: Any) -> Task:
        return _operator("Pow", other, self)

    def __rand__(self, other: Any) -> Task:
        return _operator("And", other, self)

    def __gt__(self, other: Any) -> Task:
        return _operator("GreaterThan", self, other)

    def __ge__(self, other: Any) -> Task:
        return _operator("GreaterThanOrEqual", self, other)

    def __lt__(self, other: Any) -> Task:
        return _operator("LessThan", self, other)

    def __le__(self, other: Any) -> Task:
        return _operator("LessThanOrEqual", self, other)

    def is_equal(self, other: Any) -> Task:
        """A task giving ``self == other`` (``==`` itself compares tasks, as in the seeds'
        engine)."""
        return _operator("Equal", self, other)

    def is_not_equal(self, other: Any) -> Task:
        """A task giving ``self != other``."""
        return _operator("NotEqual", self, other)

    def not_(self) -> Task:
        """A task giving ``not self``."""
        from flowrelay.sdk.operators import Not

        return Not().bind(self)

    def or_(self, other: Any) -> Task:
        """A task giving ``self or other`` (``|`` orders tasks, as in the seeds' engine)."""
        return _operator("Or", self, other)

    # Tasks are compared and hashed by identity, whatever the operators above build.
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<Task: {self.name}>"


def _operator(kind: str, left: Any, right: Any) -> Task:
    from flowrelay.sdk import operators

    operator_task: Task = getattr(operators, kind)()
    return operator_task.bind(left, right)


def _context_tags() -> frozenset[str]:
    found = context.get("tags")
    return frozenset(found) if found else frozenset()


@contextmanager
def tags(*names: str) -> Iterator[None]:
    """Every task made inside the block gets these tags too.

    >>> with tags("warehouse"):
    ...     load = Load()                  # doctest: +SKIP
    """
    with context(tags=_context_tags() | set(names)):
        yield


def _nout_from_annotation(run: Callable[..., Any]) -> int | None:
    """``Tuple[int, str]`` (or ``tuple[int, str]``) as a return annotation means two values."""
    try:
        annotation = typing.get_type_hints(run).get("return")
    except Exception:  # an annotation that does not resolve says nothing about nout
        return None
    if typing.get_origin(annotation) is not tuple:
        return None
    arguments = typing.get_args(annotation)
    if not arguments or Ellipsis in arguments:
        return None
    return len(arguments)


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

    def __init__(
        self,
        name: str,
        default: Any = _NO_DEFAULT,
        required: bool | None = None,
        tags: Iterable[str] | None = None,
    ) -> None:
        if required is None:
            required = default is _NO_DEFAULT
        self.default = None if default is _NO_DEFAULT else default
        self.required = required
        super().__init__(name=name, tags=tags, checkpoint=False)

    def run(self) -> Any:
        return self.default

    def __repr__(self) -> str:
        return f"<Parameter: {self.name}>"


class Constant(Task):
    """A task that returns ``value`` (what a plain value becomes where it must be an upstream
    task: an ``apply_map`` argument a ``merge`` reads)."""

    def __init__(self, value: Any, **kwargs: Any) -> None:
        self.value = value
        kwargs.setdefault("name", "Constant")
        super().__init__(**kwargs)

    def run(self) -> Any:
        return self.value


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
def task(fn: Callable[..., Any], /, **settings: Any) -> FunctionTask: ...


@overload
def task(*, name: str | None = None, **settings: Any) -> TaskDecorator[Any]: ...


def task(
    fn: Callable[..., Any] | None = None, /, **settings: Any
) -> FunctionTask | TaskDecorator[Any]:
    """Turn a function into a task; use bare (``@task``) or with settings (``@task(name=...)``,
    any argument of ``Task``).

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


R = TypeVar("R")


def defaults_from_attrs(*names: str) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """For a ``Task`` subclass's ``run``: an argument left out (or None) takes the value of the
    task's attribute of that name, as the seeds' engine's decorator of this name does.

    >>> class Greet(Task):
    ...     def __init__(self, greeting="hello", **kwargs):
    ...         self.greeting = greeting
    ...         super().__init__(**kwargs)
    ...     @defaults_from_attrs("greeting")
    ...     def run(self, name, greeting=None):
    ...         return f"{greeting} {name}"
    """

    def decorator(run: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(run)
        def with_defaults(self: Any, *args: Any, **kwargs: Any) -> R:
            for name in names:
                if kwargs.get(name) is None:
                    kwargs[name] = getattr(self, name)
            return run(self, *args, **kwargs)

        return with_defaults

    return decorator
