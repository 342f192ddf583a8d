"""The flow engine: runs a flow's tasks in dependency order on an executor.

Every task becomes one ``executor.submit(run_task, ...)`` whose inputs are its upstream states
(futures). A mapped task first waits for its upstreams (it must know how many children to make),
then submits one ``run_task`` per child and a ``collect_mapped`` that builds the parent's state.
What one task run does (triggers, retries, signals, checkpoints, state handlers) is in
``taskrun``.

A run's context (``flowrelay.context``) holds the flow run's values from start to end, and each
task run adds its own.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flowrelay.core.registration import check_parameters
from flowrelay.sdk import runcontext
from flowrelay.sdk.secrets import redact
from flowrelay.sdk.states import (
    Failed,
    Running,
    Scheduled,
    Skipped,
    State,
    Success,
    TriggerFailed,
)
from flowrelay.sdk.taskrun import (
    DEFAULT_TRIGGERS,
    SKIPPED_UPSTREAM,
    RunFrame,
    UpstreamInput,
    apply_state_handlers,
    collect_mapped,
    run_task,
    trigger_failed,
)
from flowrelay.sdk.tasks import Parameter, Task

if TYPE_CHECKING:
    from flowrelay.sdk.executors.base import Executor
    from flowrelay.sdk.flow import Flow

flow_log = logging.getLogger("flowrelay.flow_run")

#: Turns checkpointing on or off for ``flow.run`` (flowrelay's runners turn it on), as the seeds'
#: engine's ``PREFECT__FLOWS__CHECKPOINTING``.
CHECKPOINTING_VARIABLE = "FLOWRELAY__FLOWS__CHECKPOINTING"


def resolve_parameters(flow: Flow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for a run: given ones, else defaults. Raises ParameterError."""
    declared = {parameter.name: parameter for parameter in flow.parameters()}
    check_parameters(flow.name, {name: p.required for name, p in declared.items()}, given)
    return {name: given.get(name, parameter.default) for name, parameter in declared.items()}


def checkpointing_from_environment(default: bool = False) -> bool:
    """Whether ``FLOWRELAY__FLOWS__CHECKPOINTING`` turns checkpointing on (``true``/``false``,
    any case); ``default`` when unset. Anything else is refused, not guessed."""
    value = os.environ.get(CHECKPOINTING_VARIABLE)
    if value is None or not value.strip():
        return default
    if value.strip().lower() in ("true", "1", "yes"):
        return True
    if value.strip().lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"{CHECKPOINTING_VARIABLE} must be true or false, got {value!r}")


def run_context(
    flow: Flow, parameters: Mapping[str, Any], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The context values of one flow run: the run's own, then what the caller gave."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        **runcontext.current(),
        "flow_name": flow.name,
        "flow_run_id": str(uuid.uuid4()),
        "parameters": dict(parameters),
        "scheduled_start_time": now,
        "date": now,
        "checkpointing": None,
        "logger": flow_log,
    }
    values.update(given or {})
    values["flow_run_name"] = values.get("flow_run_name") or values["flow_run_id"]
    if values["checkpointing"] is None:
        values["checkpointing"] = checkpointing_from_environment()
    day = values["date"]
    for name, shift in (("yesterday", -1), ("today", 0), ("tomorrow", 1)):
        when = day + timedelta(days=shift)
        values.setdefault(name, when.strftime("%Y-%m-%d"))
        values.setdefault(f"{name}_nodash", when.strftime("%Y%m%d"))
    return values


def run_flow(
    flow: Flow,
    parameters: Mapping[str, Any],
    executor: Executor | None = None,
    *,
    context: Mapping[str, Any] | None = None,
    task_states: Mapping[Task | str, State] | None = None,
    restart_from: Mapping[str, State] | None = None,
) -> State:
    """Run ``flow`` in this process and return its flow-run state (see ``Flow.run``)."""
    from flowrelay.sdk.executors import DaskExecutor, LocalExecutor

    values = resolve_parameters(flow, parameters)
    executor = executor or flow.executor or LocalExecutor()
    if flow.on_execute is not None:
        provider_kwargs = (
            dict(executor.cluster_kwargs) if isinstance(executor, DaskExecutor) else {}
        )
        flow.on_execute(values, provider_kwargs)
        if isinstance(executor, DaskExecutor):
            executor = executor.with_cluster_kwargs(provider_kwargs)
    given = _given_states(flow, task_states, "task_states", strict=True)
    restart = _given_states(flow, restart_from, "restart_from", strict=False)
    frame = RunFrame(context=run_context(flow, values, context), result=flow.result)
    order = flow.sorted_tasks()
    token = runcontext.enter(dict(frame.context))
    try:
        state: State = _change_flow_state(flow, Scheduled(), Running())
        if state.is_finished():
            return state
        flow_log.info("Flow run of %r starting: %d tasks on %r", flow.name, len(order), executor)
        if flow.on_start is not None:
            flow.on_start()
        try:
            with executor.start():
                futures = _submit_all(flow, order, frame, executor, given, restart)
                final_states: dict[Task, State] = executor.wait(futures)
        finally:
            if flow.on_exit is not None:
                flow.on_exit()
        final = flow_state(flow, final_states)
        if flow.terminal_state_handler is not None:
            reference = {task: final_states[task] for task in flow.reference_tasks()}
            replaced: Any = flow.terminal_state_handler(flow, final, reference)
            if replaced is not None and not isinstance(replaced, State):
                replaced = Failed(
                    f"terminal_state_handler returned {type(replaced).__name__}, not a State "
                    f"(or None)",
                    result=final.result,
                )
            final = replaced or final
        final = _change_flow_state(flow, state, final)
        if final.message:
            final.message = redact(final.message)
    finally:
        runcontext.leave(token)
    flow_log.info("Flow run of %r finished: %s: %s", flow.name, final.name, final.message)
    return final


def _change_flow_state(flow: Flow, old: State, new: State) -> State:
    """``new``, or what the flow's state handlers made of it (a handler that raises fails the
    run, saying which, and the run keeps its task states)."""
    return apply_state_handlers(
        flow.state_handlers, flow, old, new, label="Flow state handler", keep_result=True
    )


def _given_states(
    flow: Flow, states: Mapping[Any, State] | None, what: str, strict: bool
) -> dict[str, State]:
    """Given finished states by slug (a Task key is read as its slug, ``slug[3]`` is a mapped
    child); a key naming no task of the flow is refused (``strict``) or left out, logged."""
    if not states:
        return {}
    slugs = {flow.slug(task) for task in flow._tasks}
    found: dict[str, State] = {}
    unknown: list[str] = []
    for given, state in states.items():
        if isinstance(given, Task):
            if given not in flow._tasks:
                raise ValueError(
                    f"Flow {flow.name!r}: {what} names a task not in the flow: {given!r}"
                )
            slug = flow.slug(given)
        else:
            slug = given
        parent = slug[: slug.rindex("[")] if slug.endswith("]") and "[" in slug else None
        if slug not in slugs and parent not in slugs:
            unknown.append(slug)
            continue
        if not isinstance(state, State):
            raise TypeError(f"Flow {flow.name!r}: {what}[{slug!r}] is not a State: {state!r}")
        if state.is_finished():
            found[slug] = state
    if unknown and strict:
        raise ValueError(
            f"Flow {flow.name!r}: {what} names no task of the flow: {', '.join(map(repr, unknown))}"
        )
    if unknown:
        flow_log.warning("%s names no task of flow %r: %s; ignored", what, flow.name, unknown)
    return found


def _submit_all(
    flow: Flow,
    order: list[Task],
    frame: RunFrame,
    executor: Executor,
    given: Mapping[str, State],
    restart: Mapping[str, State],
) -> dict[Task, Any]:
    futures: dict[Task, Any] = {}
    parameters: Mapping[str, Any] = frame.context["parameters"]
    # Tasks whose state is as before: parameters, given states, and a restarted run's states
    # whose upstreams all are (what depends on a task that runs again runs again).
    unchanged: set[Task] = set()
    reusing = bool(given or restart)  # else nothing below needs to know what is unchanged
    slugs = flow._slugs
    for task in order:
        if isinstance(task, Parameter):
            futures[task] = Success(message="Parameter", result=parameters[task.name])
            unchanged.add(task)
            continue
        edges = flow._edges_to.get(task, ())
        slug = slugs[task]
        upstream_unchanged = reusing and all(edge.upstream in unchanged for edge in edges)
        if reusing:
            kept_state = given.get(slug) or (restart.get(slug) if upstream_unchanged else None)
            if kept_state is not None:
                futures[task] = kept_state
                unchanged.add(task)
                continue
        constants = flow.constants.get(task, {})
        mapped_constants = flow.mapped_constants.get(task, set())
        context = {"task_name": slug, "resources": task.dask_resources}
        if upstream_unchanged and task.same_when_rerun:
            unchanged.add(task)
        if not mapped_constants and not any(edge.mapped for edge in edges):
            upstream = [(edge, slugs[edge.upstream], futures[edge.upstream]) for edge in edges]
            futures[task] = executor.submit(
                run_task, task, slug, upstream, constants, frame, extra_context=context
            )
            continue
        futures.update(executor.wait({edge.upstream: futures[edge.upstream] for edge in edges}))
        plan = plan_children(flow, task, futures, constants, mapped_constants)
        if isinstance(plan, State):
            futures[task] = plan
            continue
        children = []
        kept_children = 0
        for index, (child_upstream, child_constants) in enumerate(plan):
            child_slug = f"{slug}[{index}]"
            kept = (
                given.get(child_slug) or (restart.get(child_slug) if upstream_unchanged else None)
                if reusing
                else None
            )
            if kept is not None:
                children.append(kept)
                kept_children += 1
                continue
            children.append(
                executor.submit(
                    run_task,
                    task,
                    child_slug,
                    child_upstream,
                    child_constants,
                    frame,
                    index,
                    extra_context={**context, "task_name": child_slug},
                )
            )
        # Unchanged only when every child was kept (a child run again may differ now).
        if upstream_unchanged and plan and kept_children == len(plan):
            unchanged.add(task)
        futures[task] = executor.submit(collect_mapped, task, slug, children, extra_context=context)
    return futures


def plan_children(
    flow: Flow,
    task: Task,
    states: Mapping[Task, Any],
    constants: Mapping[str, Any],
    mapped_constants: set[str],
) -> State | list[tuple[list[UpstreamInput], dict[str, Any]]]:
    """The inputs of each child of mapped ``task``, or the parent's final state when it cannot
    be mapped (an upstream failed, an input is not iterable, lengths differ)."""
    slug = flow.slug(task)
    shared_upstream: list[UpstreamInput] = []
    per_child_upstream: list[tuple[Any, str, list[State]]] = []
    per_child_constants: list[tuple[str, list[Any]]] = []
    lengths: dict[str, int] = {}
    not_successful: list[str] = []
    for edge in flow._edges_to.get(task, ()):
        state: State = states[edge.upstream]
        upstream_slug = flow.slug(edge.upstream)
        if edge.mapped and state.map_states is not None and not edge.flattened:
            per_child_upstream.append((edge, upstream_slug, state.map_states))
            lengths[upstream_slug] = len(state.map_states)
        elif state.is_skipped() and task.skip_on_upstream_skip:
            return Skipped(SKIPPED_UPSTREAM)
        elif not state.is_successful() and (edge.mapped or task.trigger in DEFAULT_TRIGGERS):
            not_successful.append(upstream_slug)
        elif edge.mapped:
            try:
                items = list(state.result)
                if edge.flattened:
                    items = [item for inner in items for item in inner]
            except TypeError:
                what = " items" if edge.flattened else ""
                over = f"input {edge.key!r}" if edge.key is not None else "its upstream task"
                return Failed(
                    f"Cannot map {slug!r} over {over}: upstream {upstream_slug!r} "
                    f"returned {type(state.result).__name__}{what}, which is not iterable"
                )
            per_child_upstream.append(
                (edge, upstream_slug, [Success(result=item) for item in items])
            )
            lengths[upstream_slug] = len(items)
        else:
            shared_upstream.append((edge, upstream_slug, state))
    if not_successful:
        return trigger_failed(not_successful)
    unmapped_constants = {k: v for k, v in constants.items() if k not in mapped_constants}
    for key in sorted(mapped_constants):
        try:
            items = list(constants[key])
        except TypeError:
            return Failed(
                f"Cannot map {slug!r} over input {key!r}: "
                f"{type(constants[key]).__name__} is not iterable"
            )
        per_child_constants.append((key, items))
        lengths[repr(key)] = len(items)
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{name} has {size}" for name, size in lengths.items())
        return Failed(f"Cannot map {slug!r}: its mapped inputs differ in length ({sizes})")
    count = next(iter(lengths.values()), 0)
    plan = []
    for index in range(count):
        child_upstream = list(shared_upstream)
        child_upstream.extend(
            (edge, f"{upstream_slug}[{index}]", child_states[index])
            for edge, upstream_slug, child_states in per_child_upstream
        )
        child_constants = dict(unmapped_constants)
        child_constants.update((key, items[index]) for key, items in per_child_constants)
        plan.append((child_upstream, child_constants))
    return plan


def flow_state(flow: Flow, task_states: dict[Task, State]) -> State:
    """The flow-run state: Success when every reference task succeeded, else Failed with a
    message naming the task(s) where the failure started."""
    unsuccessful = [
        task for task in flow.reference_tasks() if not task_states[task].is_successful()
    ]
    if not unsuccessful:
        return Success("All reference tasks succeeded.", result=task_states)
    causes = failure_causes(flow, task_states)
    if not causes:
        names = ", ".join(repr(flow.slug(task)) for task in unsuccessful)
        return Failed(f"Reference tasks did not succeed: {names}", result=task_states)
    first = causes[0]
    message = f"Task {flow.slug(first)!r} failed: {task_states[first].message}"
    if len(causes) > 1:
        others = ", ".join(repr(flow.slug(task)) for task in causes[1:])
        message += f" (also failed: {others})"
    return Failed(message, result=task_states)


def failure_causes(flow: Flow, task_states: Mapping[Task, State]) -> list[Task]:
    """The tasks where a failure started (not those skipped because an upstream failed), in run
    order: what a person looking at a failed run wants to open first."""
    return [
        task
        for task in flow.sorted_tasks()
        if task in task_states and _failed_here(task_states[task])
    ]


#: How much of a failed task's traceback travels with a report (its end, where the error is).
TRACEBACK_CHARS = 4000


def failure_traceback(state: State, limit: int = TRACEBACK_CHARS) -> str | None:
    """The traceback of the error a failed task raised (for a mapped task: its first child that
    raised), cut to its last ``limit`` characters; None when none was captured (a timeout, a
    task that did not run)."""
    text = state.traceback
    if text is None and state.map_states is not None:
        text = next((child.traceback for child in state.map_states if child.traceback), None)
    if text is None:
        return None
    text = text.rstrip()
    if len(text) <= limit:
        return text
    cut = text[-limit:]
    return "…" + cut[cut.find("\n") :] if "\n" in cut else "…" + cut


def _failed_here(state: State) -> bool:
    """Whether a failure started in this task rather than upstream of it (for a mapped task:
    in one of its children, not only in children that did not run)."""
    if not state.is_failed() or isinstance(state, TriggerFailed):
        return False
    return state.map_states is None or any(_failed_here(child) for child in state.map_states)
