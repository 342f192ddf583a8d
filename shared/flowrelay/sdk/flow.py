"""The Flow: a DAG of tasks plus where and how its runs should execute.

>>> from flowrelay import Flow, task, Parameter
>>> @task
... def double(x):
...     return 2 * x
>>> with Flow("doubler") as flow:
...     result = double(Parameter("x", default=21))
>>> flow.run().result[result].result
42
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from flowrelay.sdk.context import active_case, enter_flow, leave_flow
from flowrelay.sdk.tasks import Edge, Parameter, StateHandler, Task, as_task

if TYPE_CHECKING:
    from contextvars import Token

    from flowrelay.core.registration import FlowRegistration
    from flowrelay.core.run_configs import RunConfig
    from flowrelay.core.schedules import ScheduleSpec
    from flowrelay.core.storage import Storage
    from flowrelay.sdk.environments import Environment
    from flowrelay.sdk.executors.base import Executor
    from flowrelay.sdk.schedules import Schedule
    from flowrelay.sdk.states import State


class Flow:
    """A named DAG of tasks.

    Args:
        name: the flow's name (runs and registrations are keyed by it).
        tasks, edges: initial tasks and ``Edge`` objects (usually built with the functional API).
        run_config: where runs go and how they are configured (``flowrelay.core.run_configs``).
        executor: how tasks run inside one flow run (``flowrelay.sdk.executors``).
        storage: where the flow runner will find this flow (``flowrelay.sdk.storage``).
        labels: extra labels for matching launch targets (merged with ``run_config.labels``).
        schedule: when runs start on their own: a ``Schedule`` (``flowrelay.schedules``) or an
            AWS expression (``"cron(0 10 * * ? *)"``, ``"rate(5 minutes)"``,
            ``"at(2027-01-01T09:00:00)"``, in UTC); registering the flow makes one EventBridge
            Scheduler schedule per clock. Checked when set.
        reference_tasks: the tasks whose states decide the flow run's state (default: the
            terminal tasks).
        state_handlers: ``fn(flow, old_state, new_state)`` called when the run starts and ends;
            may return a state to use instead.
        result: the ``Result`` of every task that has none of its own (checkpoints, targets).
        terminal_state_handler: ``fn(flow, state, reference_task_states)`` may replace the
            run's final state.
        environment: DEPRECATED, translated to ``run_config`` + ``executor``
            (see docs/environments.md).
    """

    def __init__(
        self,
        name: str,
        schedule: Schedule | str | None = None,
        executor: Executor | None = None,
        environment: Environment | None = None,
        run_config: RunConfig | None = None,
        storage: Storage | None = None,
        tasks: Iterable[Task] | None = None,
        edges: Iterable[Edge] | None = None,
        reference_tasks: Iterable[Task] | None = None,
        state_handlers: Iterable[StateHandler] | None = None,
        validate: bool | None = None,
        result: Any = None,
        terminal_state_handler: Callable[..., State | None] | None = None,
        labels: Iterable[str] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"A flow needs a non-empty name, got {name!r}")
        self.name = name
        self.schedule = schedule
        self.run_config = run_config
        self.executor = executor
        self.storage = storage
        if callable(state_handlers):
            raise TypeError(f"Flow {name!r}: state_handlers is a list of functions")
        self.state_handlers: list[StateHandler] = list(state_handlers or ())
        if result is not None and not all(
            hasattr(result, method) for method in ("write", "read", "exists")
        ):
            raise TypeError(
                f"Flow {name!r}: result must be a Result (flowrelay.engine.results), got {result!r}"
            )
        self.result = result
        self.terminal_state_handler = terminal_state_handler
        self.on_start: Callable[[], None] | None = None
        self.on_exit: Callable[[], None] | None = None
        self.on_execute: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
        self._labels: set[str] = set(labels or ())
        self._environment: Environment | None = None
        self._tasks: dict[Task, None] = {}
        self._slugs: dict[Task, str] = {}
        self._slugs_taken: set[str] = set()
        self._slug_numbers: dict[str, int] = {}
        self._edges: list[Edge] = []
        self._edges_to: dict[Task, list[Edge]] = {}
        self._edges_from: dict[Task, list[Edge]] = {}
        self.constants: dict[Task, dict[str, Any]] = {}
        self.mapped_constants: dict[Task, set[str]] = {}
        self._reference_tasks: set[Task] = set()
        self._context_tokens: list[Token[Flow | None]] = []
        for task in tasks or ():
            self.add_task(task)
        for edge in edges or ():
            self.add_edge(
                edge.upstream,
                edge.downstream,
                key=edge.key,
                mapped=edge.mapped,
                flattened=edge.flattened,
            )
        if reference_tasks:
            self.set_reference_tasks(reference_tasks)
        if environment is not None:
            self.environment = environment

    # --- context manager (functional API) --------------------------------------------------

    def __enter__(self) -> Flow:
        self._context_tokens.append(enter_flow(self))
        return self

    def __exit__(self, *exc_info: object) -> None:
        leave_flow(self._context_tokens.pop())

    # --- building ----------------------------------------------------------------------------

    def add_task(self, task: Task) -> Task:
        """Add ``task`` (no edges); adding it twice is harmless."""
        if not isinstance(task, Task):
            raise TypeError(f"Flow {self.name!r}: add_task needs a Task, got {task!r}")
        if task in self._tasks:
            return task
        block = active_case()
        if block is not None:
            block.add_task(task, self)
        if isinstance(task, Parameter):
            clash = next((p for p in self.parameters() if p.name == task.name), None)
            if clash is not None:
                raise ValueError(f"Flow {self.name!r} already has a parameter named {task.name!r}")
        self._tasks[task] = None
        if task.slug is not None:
            if task.slug in self._slugs_taken:
                raise ValueError(f"Flow {self.name!r} already has a task with slug {task.slug!r}")
            self._slugs[task] = task.slug
            self._slugs_taken.add(task.slug)
            return task
        # Continue numbering from the last number used for this name: building a flow stays
        # linear when one task is called thousands of times.
        number = self._slug_numbers.get(task.name, 1)
        slug = task.name if number == 1 else f"{task.name}-{number}"
        while slug in self._slugs_taken:
            number += 1
            slug = f"{task.name}-{number}"
        self._slug_numbers[task.name] = number + 1
        self._slugs[task] = slug
        self._slugs_taken.add(slug)
        return task

    def add_edge(
        self,
        upstream: Task,
        downstream: Task,
        key: str | None = None,
        mapped: bool = False,
        flattened: bool = False,
    ) -> Edge:
        """Make ``upstream`` run before ``downstream`` and, with ``key``, feed it that input
        (``mapped``: one item per child; ``flattened``: the items of its items)."""
        if key is not None:
            self._check_input_free(downstream, key)
        if upstream is downstream or self._reaches(downstream, upstream):
            raise ValueError(
                f"Flow {self.name!r}: an edge {upstream.name!r} -> {downstream.name!r} would make "
                f"a cycle; flows must be acyclic"
            )
        self.add_task(upstream)
        self.add_task(downstream)
        edge = Edge(upstream, downstream, key=key, mapped=mapped, flattened=flattened)
        self._edges.append(edge)
        self._edges_to.setdefault(downstream, []).append(edge)
        self._edges_from.setdefault(upstream, []).append(edge)
        return edge

    def add_constant(self, task: Task, key: str, value: Any, mapped: bool = False) -> None:
        """Feed ``task`` the plain value ``value`` as input ``key`` (mapped: one item per child)."""
        self._check_input_free(task, key)
        self.add_task(task)
        self.constants.setdefault(task, {})[key] = value
        if mapped:
            self.mapped_constants.setdefault(task, set()).add(key)

    def _check_input_free(self, task: Task, key: str) -> None:
        taken = key in self.constants.get(task, {}) or any(
            edge.key == key for edge in self._edges_to.get(task, ())
        )
        if taken:
            raise ValueError(f"Flow {self.name!r}: task {task.name!r} already has an input {key!r}")

    def set_dependencies(
        self,
        task: Task,
        upstream_tasks: Iterable[Any] | None = None,
        downstream_tasks: Iterable[Task] | None = None,
        keyword_tasks: Mapping[str, Any] | None = None,
        mapped: bool = False,
    ) -> None:
        """Wire ``task`` in one call: ordering-only upstreams, downstreams and keyword inputs."""
        self.add_task(task)
        for upstream in upstream_tasks or ():
            self.add_edge(self.task_for(upstream), task, mapped=mapped)
        for downstream in downstream_tasks or ():
            self.add_edge(task, downstream)
        for key, value in (keyword_tasks or {}).items():
            task._bind_input(self, key, value, mapped)

    def task_for(self, value: Any) -> Task:
        """The task producing ``value`` (a task, or a collection of tasks); TypeError otherwise."""
        upstream = as_task(value, self)
        if upstream is None:
            raise TypeError(f"Flow {self.name!r}: {value!r} is not a task")
        return upstream

    def _reaches(self, start: Task, goal: Task) -> bool:
        """Whether ``goal`` is downstream of ``start``."""
        seen: set[Task] = set()
        stack = [start]
        while stack:
            current = stack.pop()
            for edge in self._edges_from.get(current, ()):
                if edge.downstream is goal:
                    return True
                if edge.downstream not in seen:
                    seen.add(edge.downstream)
                    stack.append(edge.downstream)
        return False

    # --- reading -----------------------------------------------------------------------------

    @property
    def tasks(self) -> set[Task]:
        return set(self._tasks)

    @property
    def edges(self) -> list[Edge]:
        return list(self._edges)

    def slug(self, task: Task) -> str:
        """The task's name, made unique within this flow (``add``, ``add-2``, ...)."""
        return self._slugs[task]

    def edges_to(self, task: Task) -> list[Edge]:
        return list(self._edges_to.get(task, ()))

    def edges_from(self, task: Task) -> list[Edge]:
        return list(self._edges_from.get(task, ()))

    def upstream_tasks(self, task: Task) -> set[Task]:
        return {edge.upstream for edge in self._edges_to.get(task, ())}

    def downstream_tasks(self, task: Task) -> set[Task]:
        return {edge.downstream for edge in self._edges_from.get(task, ())}

    def parameters(self) -> list[Parameter]:
        return [task for task in self._tasks if isinstance(task, Parameter)]

    def get_tasks(self, name: str | None = None, tags: Iterable[str] | None = None) -> list[Task]:
        """Tasks with this name (or slug) and all of these tags."""
        wanted_tags = set(tags or ())
        return [
            task
            for task in self._tasks
            if (name is None or name in (task.name, self._slugs[task])) and wanted_tags <= task.tags
        ]

    def root_tasks(self) -> set[Task]:
        return {task for task in self._tasks if not self._edges_to.get(task)}

    def terminal_tasks(self) -> set[Task]:
        return {task for task in self._tasks if not self._edges_from.get(task)}

    def reference_tasks(self) -> set[Task]:
        """The tasks that decide the run's state: those set, else the terminal tasks."""
        return set(self._reference_tasks) or self.terminal_tasks()

    def set_reference_tasks(self, tasks: Iterable[Task]) -> None:
        chosen = set(tasks)
        unknown = [task.name for task in chosen if task not in self._tasks]
        if unknown:
            raise ValueError(f"Flow {self.name!r}: reference tasks not in the flow: {unknown}")
        self._reference_tasks = chosen

    def sorted_tasks(self) -> list[Task]:
        """Every task after all of its upstreams; ties keep the order tasks were added."""
        remaining = {task: len(self._edges_to.get(task, ())) for task in self._tasks}
        ready = deque(task for task, count in remaining.items() if count == 0)
        ordered: list[Task] = []
        while ready:
            current = ready.popleft()
            ordered.append(current)
            for edge in self._edges_from.get(current, ()):
                remaining[edge.downstream] -= 1
                if remaining[edge.downstream] == 0:
                    ready.append(edge.downstream)
        return ordered

    def __iter__(self) -> Iterator[Task]:
        return iter(self.sorted_tasks())

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<Flow: {self.name!r} ({len(self._tasks)} tasks)>"

    # --- configuration ------------------------------------------------------------------------

    @property
    def labels(self) -> set[str]:
        """Labels a launch target must carry: those set here plus ``run_config.labels``."""
        from_run_config = set(self.run_config.labels) if self.run_config is not None else set()
        return self._labels | from_run_config

    @labels.setter
    def labels(self, labels: Iterable[str]) -> None:
        if isinstance(labels, str):
            raise TypeError("flow.labels takes a list of labels, not one string")
        self._labels = set(labels)

    @property
    def schedule(self) -> Schedule | str | None:
        """When runs start on their own: a ``Schedule``, an AWS expression (kept in AWS's
        spelling), or None."""
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: Schedule | str | None) -> None:
        from flowrelay.core.schedules import ScheduleError, parse_expression
        from flowrelay.sdk.schedules import Schedule

        if schedule is None or isinstance(schedule, Schedule):
            self._schedule: Schedule | str | None = schedule
        elif isinstance(schedule, str):
            try:
                self._schedule = parse_expression(schedule)
            except ScheduleError as exc:
                raise ScheduleError(f"Flow {self.name!r}: schedule {exc}") from None
        else:
            raise TypeError(
                f"Flow {self.name!r}: schedule is a Schedule (flowrelay.schedules), an AWS "
                f"expression such as 'rate(5 minutes)', or None; got {type(schedule).__name__}"
                + (": wrap a clock in Schedule(clocks=[clock])" if _is_clock(schedule) else "")
            )

    @property
    def environment(self) -> Environment | None:
        """DEPRECATED: setting it fills ``run_config``, ``executor`` and the run hooks."""
        return self._environment

    @environment.setter
    def environment(self, environment: Environment | None) -> None:
        self._environment = environment
        if environment is None:
            return
        warnings.warn(
            "flow.environment is deprecated: set flow.run_config and flow.executor instead "
            "(see docs/environments.md)",
            DeprecationWarning,
            stacklevel=2,
        )
        translation = environment.translate()
        if self.run_config is None:
            self.run_config = translation.run_config
        if self.executor is None:
            self.executor = translation.executor
        self.on_start = translation.on_start
        self.on_exit = translation.on_exit
        self.on_execute = translation.on_execute

    # --- running -------------------------------------------------------------------------------

    def run(
        self,
        parameters: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
        *,
        context: Mapping[str, Any] | None = None,
        task_states: Mapping[Task | str, State] | None = None,
        restart_from: Mapping[str, State] | None = None,
        run_on_schedule: bool | None = None,
        **parameter_values: Any,
    ) -> State:
        """Run the flow here, now, once, and return its state.

        ``parameters`` (or keyword arguments) give parameter values; ``executor`` overrides
        ``flow.executor`` (default ``LocalExecutor``); ``context`` adds values to
        ``flowrelay.context`` (e.g. ``flow_run_id``, ``checkpointing``). ``task_states`` gives
        finished states to use instead of running those tasks, as the seeds' engine does (keyed
        by a Task, or a slug such as ``"load"``, or ``"load[3]"`` for one mapped child; a key
        that names no task is refused). ``restart_from`` gives the states of a run being
        restarted (``flowrelay runs retry``), by slug: each is reused only while everything its
        task depends on is, so what follows a task that runs again runs again (parameters count
        as unchanged: give the restarted run's parameter values).

        The seeds' engine ran a scheduled flow forever on its schedule here; flowrelay runs it
        once, and schedules start runs only once the flow is registered: ``run_on_schedule=True``
        is refused rather than ignored.
        """
        from flowrelay.sdk.engine import run_flow

        if run_on_schedule:
            raise ValueError(
                f"Flow {self.name!r}: run_on_schedule=True is not supported: flow.run() runs "
                f"once; register the flow (flowrelay register) and its schedule starts the runs"
            )
        return run_flow(
            self,
            {**(parameters or {}), **parameter_values},
            executor,
            context=context,
            task_states=task_states,
            restart_from=restart_from,
        )


def registration_for(flow: Flow, storage: Storage | None = None) -> FlowRegistration:
    """The registration of ``flow`` (its own storage unless ``storage`` is given).

    Raises ValueError when the flow has no storage, parameter defaults are not JSON, or a clock
    of its schedule gives parameters the flow does not take (``ParameterError``).
    """
    import json

    from flowrelay.core.registration import FlowRegistration, ParameterSpec
    from flowrelay.sdk.executors.spec import executor_spec

    where = storage or flow.storage
    if where is None:
        raise ValueError(
            f"Flow {flow.name!r} has no storage: set flow.storage (Module, Local or S3) so the "
            f"flow runner can find it"
        )
    parameters = [
        ParameterSpec(name=p.name, default=p.default, required=p.required)
        for p in sorted(flow.parameters(), key=lambda p: p.name)
    ]
    try:
        json.dumps([p.default for p in parameters])
    except TypeError as exc:
        raise ValueError(f"Flow {flow.name!r}: parameter defaults must be JSON: {exc}") from None
    registration = FlowRegistration(
        name=flow.name,
        labels=sorted(flow.labels),
        run_config=flow.run_config,
        executor=executor_spec(flow.executor),
        storage=where,
        parameters=parameters,
        schedule=schedule_spec(flow.schedule),
    )
    # Checked here, where a flow is registered, not when a stored version is read: a clock
    # whose every run would be refused is a mistake to show now, not a reason to lose a version.
    registration.check_schedule_parameters()
    return registration.with_content_hash()


def schedule_spec(schedule: Schedule | str | None) -> ScheduleSpec | None:
    """A flow's schedule as registered: a ``Schedule``'s clocks, or one clock (``clock-1``, UTC)
    for an AWS expression.

    >>> schedule_spec("rate(5 minutes)").clocks[0].expression
    'rate(5 minutes)'
    """
    from flowrelay.core.schedules import ScheduleSpec

    if schedule is None:
        return None
    if isinstance(schedule, str):
        return ScheduleSpec.of_expression(schedule)
    return schedule.to_spec()


def _is_clock(value: object) -> bool:
    from flowrelay.sdk.schedules.clocks import Clock

    return isinstance(value, Clock)
