"""The flow engine: runs a flow's tasks in dependency order on an executor.

Every task becomes one ``executor.submit(run_task, ...)`` whose inputs are its upstream states
(futures). A mapped task first waits for its upstreams (it must know how many children to make),
then submits one ``run_task`` per child and a ``collect_mapped`` that builds the parent's state.

``run_task`` is the only code on the per-task hot path; it does no logging unless INFO is on for
``flowrelay.task`` and starts a thread only for tasks with a timeout.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from flowrelay.core.logs import ensure_worker_process_logging
from flowrelay.core.registration import check_parameters
from flowrelay.sdk.states import Failed, Mapped, State, Success, TimedOut, TriggerFailed
from flowrelay.sdk.tasks import Parameter, Task

if TYPE_CHECKING:
    from flowrelay.sdk.executors.base import Executor
    from flowrelay.sdk.flow import Flow

flow_log = logging.getLogger("flowrelay.flow_run")
task_log = logging.getLogger("flowrelay.task")

# (input key or None for ordering-only, upstream slug for messages, upstream state or future)
UpstreamInput = tuple[str | None, str, Any]


class TaskTimeoutError(Exception):
    """One attempt of a task ran longer than its timeout."""


def resolve_parameters(flow: Flow, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter's value for a run: given ones, else defaults. Raises ParameterError."""
    declared = {parameter.name: parameter for parameter in flow.parameters()}
    check_parameters(flow.name, {name: p.required for name, p in declared.items()}, given)
    return {name: given.get(name, parameter.default) for name, parameter in declared.items()}


def run_flow(flow: Flow, parameters: Mapping[str, Any], executor: Executor | None = None) -> State:
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
    order = flow.sorted_tasks()
    flow_log.info("Flow run of %r starting: %d tasks on %r", flow.name, len(order), executor)
    if flow.on_start is not None:
        flow.on_start()
    try:
        with executor.start():
            futures = _submit_all(flow, order, values, executor)
            final_states: dict[Task, State] = executor.wait(futures)
    finally:
        if flow.on_exit is not None:
            flow.on_exit()
    state = flow_state(flow, final_states)
    flow_log.info("Flow run of %r finished: %s: %s", flow.name, state.name, state.message)
    return state


def _submit_all(
    flow: Flow, order: list[Task], values: Mapping[str, Any], executor: Executor
) -> dict[Task, Any]:
    futures: dict[Task, Any] = {}
    for task in order:
        if isinstance(task, Parameter):
            futures[task] = Success(message="Parameter", result=values[task.name])
            continue
        edges = flow._edges_to.get(task, ())
        constants = flow.constants.get(task, {})
        mapped_constants = flow.mapped_constants.get(task, set())
        slug = flow.slug(task)
        context = {"task_name": slug, "resources": task.dask_resources}
        if not mapped_constants and not any(edge.mapped for edge in edges):
            upstream = [
                (edge.key, flow.slug(edge.upstream), futures[edge.upstream]) for edge in edges
            ]
            futures[task] = executor.submit(
                run_task, task, slug, upstream, constants, extra_context=context
            )
            continue
        futures.update(executor.wait({edge.upstream: futures[edge.upstream] for edge in edges}))
        plan = plan_children(flow, task, futures, constants, mapped_constants)
        if isinstance(plan, State):
            futures[task] = plan
            continue
        children = [
            executor.submit(
                run_task,
                task,
                f"{slug}[{index}]",
                child_upstream,
                child_constants,
                extra_context={**context, "task_name": f"{slug}[{index}]"},
            )
            for index, (child_upstream, child_constants) in enumerate(plan)
        ]
        futures[task] = executor.submit(collect_mapped, slug, children, extra_context=context)
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
    per_child_upstream: list[tuple[str | None, str, list[State]]] = []
    per_child_constants: list[tuple[str, list[Any]]] = []
    lengths: dict[str, int] = {}
    not_successful: list[str] = []
    for edge in flow._edges_to.get(task, ()):
        state: State = states[edge.upstream]
        upstream_slug = flow.slug(edge.upstream)
        if edge.mapped and state.map_states is not None:
            per_child_upstream.append((edge.key, upstream_slug, state.map_states))
            lengths[upstream_slug] = len(state.map_states)
        elif not state.is_successful():
            not_successful.append(upstream_slug)
        elif edge.mapped:
            try:
                items = list(state.result)
            except TypeError:
                return Failed(
                    f"Cannot map {slug!r} over input {edge.key!r}: upstream {upstream_slug!r} "
                    f"returned {type(state.result).__name__}, which is not iterable"
                )
            per_child_upstream.append(
                (edge.key, upstream_slug, [Success(result=item) for item in items])
            )
            lengths[upstream_slug] = len(items)
        else:
            shared_upstream.append((edge.key, upstream_slug, state))
    if not_successful:
        return _trigger_failed(not_successful)
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
            (key, f"{upstream_slug}[{index}]", child_states[index])
            for key, upstream_slug, child_states in per_child_upstream
        )
        child_constants = dict(unmapped_constants)
        child_constants.update((key, items[index]) for key, items in per_child_constants)
        plan.append((child_upstream, child_constants))
    return plan


def run_task(
    task: Task, slug: str, upstream: list[UpstreamInput], constants: Mapping[str, Any]
) -> State:
    """Run one task (or one mapped child) once its upstream states are known."""
    ensure_worker_process_logging()
    inputs = dict(constants) if constants else {}
    not_successful = None
    for key, upstream_slug, state in upstream:
        if not isinstance(state, Success):
            not_successful = not_successful or []
            not_successful.append(upstream_slug)
        elif key is not None:
            inputs[key] = state.result
    if not_successful:
        final: State = _trigger_failed(not_successful)
    else:
        final = _run_with_retries(task, slug, inputs)
    if task_log.isEnabledFor(logging.INFO):
        task_log.info(
            "Task %r: %s%s", slug, final.name, f": {final.message}" if final.message else ""
        )
    return final


def _run_with_retries(task: Task, slug: str, inputs: dict[str, Any]) -> State:
    attempt = 1
    while True:
        try:
            if task.timeout is None:
                result = task.run(**inputs)
            else:
                result = _call_with_timeout(task, inputs, task.timeout)
            return Success(result=result, attempts=attempt)
        except TaskTimeoutError as exc:
            failure: State = TimedOut(str(exc), result=exc, attempts=attempt)
        except Exception as exc:
            failure = Failed(
                f"{type(exc).__name__}: {exc}",
                result=_picklable(exc),
                attempts=attempt,
                traceback=traceback.format_exc(),
            )
        if attempt > task.max_retries:
            if attempt > 1:
                failure.message = f"{failure.message} (gave up after {attempt} attempts)"
            return failure
        assert task.retry_delay is not None  # Task.__init__ guarantees it when retries are set
        delay = task.retry_delay.total_seconds()
        task_log.warning(
            "Task %r attempt %d of %d failed (%s); retrying in %gs",
            slug,
            attempt,
            task.max_retries + 1,
            failure.message,
            delay,
        )
        time.sleep(delay)
        attempt += 1


def _call_with_timeout(task: Task, inputs: dict[str, Any], seconds: float) -> Any:
    """Run the task in a helper thread and stop waiting after ``seconds``.

    Python cannot kill a thread: a timed-out attempt is abandoned, not stopped, and keeps running
    in the background until it returns (documented in docs/flows.md).
    """
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        try:
            outcome["value"] = task.run(**inputs)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name=f"flowrelay-timeout-{task.name}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TaskTimeoutError(f"Task timed out after {seconds:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def collect_mapped(slug: str, children: list[State]) -> State:
    """The parent state of a mapped task: Mapped when every child succeeded, else Failed."""
    results = [child.result if child.is_successful() else None for child in children]
    failed = [(index, child) for index, child in enumerate(children) if not child.is_successful()]
    if not failed:
        return Mapped(f"{len(children)} mapped runs succeeded", result=results, map_states=children)
    index, first = failed[0]
    return Failed(
        f"{len(failed)} of {len(children)} mapped runs did not succeed; "
        f"first: {slug}[{index}]: {first.message}",
        result=results,
        map_states=children,
    )


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


def _trigger_failed(upstream_slugs: list[str]) -> TriggerFailed:
    names = ", ".join(repr(name) for name in upstream_slugs)
    noun = "task" if len(upstream_slugs) == 1 else "tasks"
    return TriggerFailed(f"Did not run: upstream {noun} {names} did not succeed")


def _picklable(exc: BaseException) -> BaseException:
    """The exception itself when it can cross a process boundary, else a stand-in saying what
    it was (a state that cannot be pickled would break process and distributed executors)."""
    try:
        pickle.dumps(exc)
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
