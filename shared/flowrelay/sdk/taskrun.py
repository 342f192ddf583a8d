"""One task run (or one mapped child), as the seeds' engine's task runner did it: upstream skips,
the trigger, the in-process cache and the target, then attempts (retries, loops, signals,
timeouts), the checkpoint, and the state handlers on every change.

``run_task`` is the only code on the per-task hot path: state handlers, triggers other than the
default, caches and results cost nothing to a task that uses none of them.
"""

from __future__ import annotations

import contextvars
import copy
import logging
import pickle
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowrelay.core.logs import ensure_worker_process_logging
from flowrelay.sdk import runcontext, signals
from flowrelay.sdk.secrets import redact
from flowrelay.sdk.states import (
    NO_VALUE_WRITTEN,
    Cached,
    Failed,
    Looped,
    Mapped,
    Pending,
    Retrying,
    Running,
    Skipped,
    State,
    Success,
    TimedOut,
    TriggerFailed,
)
from flowrelay.sdk.triggers import all_successful

if TYPE_CHECKING:
    from flowrelay.sdk.tasks import Edge, Task

task_log = logging.getLogger("flowrelay.task")

# (the edge, the upstream's slug for messages (``load[3]`` for a child), its state or future)
UpstreamInput = tuple["Edge", str, Any]

#: A task's trigger when it has none, or the default given by name: the fast check of upstream
#: states, whose message names the upstream tasks that did not succeed.
DEFAULT_TRIGGERS = (None, all_successful)

SKIPPED_UPSTREAM = (
    "Upstream task was skipped; if this was not intended, set skip_on_upstream_skip=False "
    "on this task"
)


class TaskTimeoutError(Exception):
    """One attempt of a task ran longer than its timeout."""


@dataclass(frozen=True, slots=True)
class RunFrame:
    """What every task run of one flow run shares (picklable: it travels to Dask workers):
    the flow run's context values and the flow's default ``Result``."""

    context: Mapping[str, Any]
    result: Any = None


def run_task(
    task: Task,
    slug: str,
    upstream: list[UpstreamInput],
    constants: Mapping[str, Any],
    frame: RunFrame,
    map_index: int | None = None,
) -> State:
    """Run one task (or one mapped child) once its upstream states are known."""
    ensure_worker_process_logging()
    values = {
        **frame.context,
        "task_name": task.name,
        "task_slug": slug,
        "task_full_name": slug,
        # Unique in the run and across runs, and flat: it may name a file ({task_run_id}.pkl).
        "task_run_id": f"{frame.context.get('flow_run_id')}-{slug.replace('/', '_')}",
        "task_tags": task.tags,
        "map_index": map_index,
        "task_run_count": 1,
        "logger": task.logger,
    }
    token = runcontext.enter(values)
    try:
        final = _run(task, slug, upstream, constants, frame, values)
    finally:
        runcontext.leave(token)
    # Whatever made the message (the task's error, a signal, a handler, a trigger), a secret
    # read in this process does not leave it: states become events, log lines, table cells.
    if final.message:
        final.message = redact(final.message)
    if final.traceback:
        final.traceback = redact(final.traceback)
    if task_log.isEnabledFor(logging.INFO):
        run_name = values.get("task_run_name")
        task_log.info(
            "Task %r%s: %s%s",
            slug,
            f" ({run_name})" if run_name else "",
            final.name,
            f": {final.message}" if final.message else "",
        )
    return final


def _run(
    task: Task,
    slug: str,
    upstream: list[UpstreamInput],
    constants: Mapping[str, Any],
    frame: RunFrame,
    values: dict[str, Any],
) -> State:
    watched = bool(task.state_handlers) or task.on_failure is not None
    state: State = Pending() if watched else _UNWATCHED
    inputs = dict(constants) if constants else {}
    not_successful: list[str] | None = None
    skipped = False
    for edge, upstream_slug, upstream_state in upstream:
        if not isinstance(upstream_state, Success):
            not_successful = not_successful or []
            not_successful.append(upstream_slug)
        elif isinstance(upstream_state, Skipped) or (
            upstream_state.map_states is not None
            and any(isinstance(child, Skipped) for child in upstream_state.map_states)
        ):
            skipped = True
        if edge.key is not None:
            inputs[edge.key] = upstream_state.result
    if task.task_run_name is not None:
        try:
            values["task_run_name"] = _location(
                task.task_run_name, _format_values(inputs, values), "task_run_name"
            )
        except Exception as exc:
            return _change(task, state, Failed(f"Task {slug!r}: {exc}"))
    if skipped and task.skip_on_upstream_skip:
        return _change(task, state, Skipped(SKIPPED_UPSTREAM))
    trigger = task.trigger
    if trigger in DEFAULT_TRIGGERS:
        if not_successful:
            return _change(task, state, trigger_failed(not_successful))
    elif upstream:
        refused = _check_trigger(trigger, upstream)
        if refused is not None:
            return _change(task, state, refused)
    if task.cache_for is not None:
        cached = _from_cache(task, slug, inputs, values)
        if cached is not None:
            return _change(task, state, cached)
    result = task.result if task.result is not None else frame.result
    if task.target is not None:
        if result is None:
            return _change(
                task,
                state,
                Failed(
                    f"Task {slug!r} has target {task.target!r} but no result to look in: set "
                    f"result= on the task or the flow (e.g. LocalResult(dir=...))"
                ),
            )
        found = _from_target(task, result, inputs, values)
        if found is not None:
            return _change(task, state, found)
    if watched:
        state = _change(task, state, Running())
        if state.is_finished():  # a handler ended the run before it started
            return state
    final = _attempts(task, slug, inputs, values, state)
    if isinstance(final, Success) and not isinstance(final, Skipped):
        final = _checkpoint(task, result, final, inputs, values)
        if task.cache_for is not None and final.is_successful():
            _keep_in_cache(task, slug, final, inputs, values)
    return _change(task, state, final) if watched else final


def _attempts(
    task: Task, slug: str, inputs: dict[str, Any], values: dict[str, Any], state: State
) -> State:
    watched = state is not _UNWATCHED
    attempt = 1
    loops = 1
    while True:
        values["task_run_count"] = attempt
        outcome = _attempt(task, inputs, attempt)
        if isinstance(outcome, signals.ENDRUN):
            return outcome.state
        if isinstance(outcome, Looped):
            if watched:
                state = _change(task, state, outcome)
                if not isinstance(state, Looped):  # a handler ended the loop
                    return state
            loops += 1
            values["task_loop_count"] = loops
            values["task_loop_result"] = outcome.result
            if watched:
                state = _change(task, state, Running())
                if state.is_finished():
                    return state
            continue
        retry = isinstance(outcome, Retrying)
        failed = isinstance(outcome, Failed)
        if not retry and not (failed and attempt <= task.max_retries):
            if failed and attempt > 1:
                outcome.message = f"{outcome.message} (gave up after {attempt} attempts)"
            return outcome
        delay = task.retry_delay.total_seconds() if task.retry_delay is not None else 0.0
        if watched:
            retrying = outcome if retry else Retrying(outcome.message, attempts=attempt)
            state = _change(task, state, retrying)
            if not isinstance(state, Retrying):  # a handler said not to retry
                return state
        task_log.warning(
            "Task %r attempt %d%s %s (%s); retrying in %gs",
            slug,
            attempt,
            "" if retry else f" of {task.max_retries + 1}",
            "asked to retry" if retry else "failed",
            redact(outcome.message or ""),
            delay,
        )
        time.sleep(delay)
        attempt += 1
        if watched:
            state = _change(task, state, Running())
            if state.is_finished():
                return state


def _attempt(task: Task, inputs: dict[str, Any], attempt: int) -> State | signals.ENDRUN:
    """One call of the task's ``run``, as a state (or the ENDRUN it raised)."""
    try:
        if task.log_stdout:
            with _prints_logged(task.logger):
                value = _call(task, inputs)
        elif task.timeout is None:
            value = task.run(**inputs)
        else:
            value = _call_with_timeout(task, inputs, task.timeout)
        return Success(result=value, attempts=attempt)
    except signals.ENDRUN as end:
        return end
    except signals.PAUSE as pause:
        return Failed(
            f"The task raised PAUSE ({pause.message or 'no message'}): flowrelay runs are not "
            f"paused and resumed by hand",
            attempts=attempt,
        )
    except signals.StateSignal as signal:
        # A copy: one signal object may be raised by many runs (a module-level constant).
        outcome = copy.copy(signal.state)
        outcome.attempts = attempt
        if outcome.is_failed() and outcome.result is signal:
            outcome.result = _picklable(signal)
            outcome.traceback = traceback.format_exc()
        return outcome
    except TaskTimeoutError as exc:
        return TimedOut(str(exc), result=exc, attempts=attempt)
    except Exception as exc:
        # What a flow's own error says may quote a secret it read: masked before it can reach a
        # state event, a log line or a table.
        return Failed(
            redact(f"{type(exc).__name__}: {exc}"),
            result=_picklable(exc),
            attempts=attempt,
            traceback=redact(traceback.format_exc()),
        )


def _call(task: Task, inputs: dict[str, Any]) -> Any:
    if task.timeout is None:
        return task.run(**inputs)
    return _call_with_timeout(task, inputs, task.timeout)


def _call_with_timeout(task: Task, inputs: dict[str, Any], seconds: float) -> Any:
    """Run the task in a helper thread (with this run's context) and stop waiting after
    ``seconds``.

    Python cannot kill a thread: a timed-out attempt is abandoned, not stopped, and keeps running
    in the background until it returns (documented in docs/flows.md).
    """
    outcome: dict[str, Any] = {}
    values = contextvars.copy_context()

    def attempt() -> None:
        try:
            outcome["value"] = values.run(task.run, **inputs)
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


class _LogWriter:
    """What ``print`` writes in one run of a ``log_stdout=True`` task, one log line per line."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            self.logger.info("%s", line)
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            self.logger.info("%s", self.buffer)
            self.buffer = ""


#: The writer of the ``log_stdout`` task running in this thread of execution, if any.
_task_stdout: contextvars.ContextVar[_LogWriter | None] = contextvars.ContextVar(
    "flowrelay_task_stdout", default=None
)


class _StdoutRouter:
    """``sys.stdout`` while any ``log_stdout`` task runs: each write goes to the logger of the
    task running in the writing thread, or to the stream it replaced; everything else a stream
    has (``encoding``, ``fileno``, ``isatty``, ...) is the replaced stream's. One for the
    process, because ``sys.stdout`` is one: tasks on threads must not take each other's prints,
    nor leave stdout pointing at a finished task."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        writer = _task_stdout.get()
        if writer is None or _logging_a_print.get():
            return int(self.stream.write(text))
        # A log handler that writes to sys.stdout (a console) lands here again: to the stream.
        token = _logging_a_print.set(True)
        try:
            return writer.write(text)
        finally:
            _logging_a_print.reset(token)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


#: Set while a print is being logged, so that a handler printing the record is not re-routed.
_logging_a_print: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "flowrelay_logging_a_print", default=False
)

_router_lock = threading.Lock()
_router_users = 0


@contextmanager
def _prints_logged(logger: logging.Logger) -> Iterator[None]:
    """While the block runs, what this thread prints goes to ``logger``."""
    global _router_users
    with _router_lock:
        if _router_users == 0 or not isinstance(sys.stdout, _StdoutRouter):
            sys.stdout = _StdoutRouter(sys.stdout)
        _router_users += 1
    writer = _LogWriter(logger)
    token = _task_stdout.set(writer)
    try:
        yield
    finally:
        _task_stdout.reset(token)
        writer.flush()
        with _router_lock:
            _router_users -= 1
            if _router_users == 0 and isinstance(sys.stdout, _StdoutRouter):
                sys.stdout = sys.stdout.stream


# --- triggers, handlers -------------------------------------------------------------------


def _check_trigger(trigger: Any, upstream: list[UpstreamInput]) -> State | None:
    """None when the trigger lets the task run, else the state the task ends in."""
    upstream_states = {edge: upstream_state for edge, _, upstream_state in upstream}
    name = getattr(trigger, "__name__", repr(trigger))
    try:
        if trigger(upstream_states):
            return None
        return TriggerFailed(f'Trigger "{name}" did not let the task run')
    except signals.ENDRUN as end:
        return end.state
    except signals.StateSignal as signal:
        refused = copy.copy(signal.state)  # one signal object may be raised many times
        if refused.result is signal:
            refused.result = None
        return refused
    except Exception as exc:
        return TriggerFailed(
            f'Trigger "{name}" raised {type(exc).__name__}: {exc}',
            traceback=traceback.format_exc(),
        )


def _change(task: Task, old: State, new: State) -> State:
    """``new``, or what the task's state handlers made of it; ``on_failure`` is told of a
    failure. A handler that raises fails the task, saying which handler."""
    if old is _UNWATCHED:
        return new
    new = apply_state_handlers(task.state_handlers, task, old, new)
    if task.on_failure is not None and new.is_failed():
        try:
            task.on_failure(task, new)
        except Exception:
            task_log.exception("on_failure of task %r raised", task.name)
    return new


def apply_state_handlers(
    handlers: Iterable[Callable[..., Any]],
    subject: Any,
    old: State,
    new: State,
    label: str = "State handler",
    keep_result: bool = False,
) -> State:
    """``new``, or what ``handlers`` (of a task or a flow, ``subject``) made of it, each called
    with ``(subject, old, new)``. A signal a handler raises gives its state, as in the seeds'
    engine; a handler that raises anything else, or returns what is not a State, gives Failed
    naming it (whose result is ``new``'s with ``keep_result``, as a flow's run keeps its task
    states, else the exception)."""
    for handler in handlers:
        name = getattr(handler, "__name__", handler)
        replaced: Any  # what user code returns, checked below
        try:
            replaced = handler(subject, old, new)
        except signals.ENDRUN as end:
            replaced = end.state
        except signals.StateSignal as signal:
            replaced = copy.copy(signal.state)  # one signal object may be raised many times
            if replaced.result is signal and not replaced.is_failed():
                replaced.result = None
        except Exception as exc:
            return Failed(
                f"{label} {name!r} raised {type(exc).__name__}: {exc}",
                result=new.result if keep_result else _picklable(exc),
                traceback=None if keep_result else traceback.format_exc(),
            )
        if replaced is not None and not isinstance(replaced, State):
            return Failed(
                f"{label} {name!r} returned {type(replaced).__name__}, not a State (or None)",
                result=new.result if keep_result else None,
            )
        if replaced is not None:
            new = replaced
    return new


#: The "old state" of a task no handler watches: nothing is built for it.
_UNWATCHED = Pending()


# --- caches, targets, checkpoints ---------------------------------------------------------

_cache: dict[Any, Cached] = {}
_cache_lock = threading.Lock()


def _cache_key(task: Task, slug: str, values: Mapping[str, Any]) -> Any:
    return task.cache_key or (values.get("flow_name"), slug)


def _from_cache(
    task: Task, slug: str, inputs: Mapping[str, Any], values: Mapping[str, Any]
) -> Cached | None:
    from flowrelay.sdk.cache_validators import duration_only

    with _cache_lock:
        kept = _cache.get(_cache_key(task, slug, values))
    if kept is None:
        return None
    validator = task.cache_validator or duration_only
    try:
        valid = validator(kept, inputs, values.get("parameters") or {})
    except Exception as exc:
        task_log.warning("Cache validator of task %r raised %s; running it", slug, exc)
        return None
    if not valid:
        return None
    return Cached(
        f"Result cached at {(kept.context or {})['cached_at']:%H:%M:%S} (cache_for)",
        result=kept.result,
        location=kept.location,
        context=kept.context,
    )


def _keep_in_cache(
    task: Task, slug: str, state: State, inputs: Mapping[str, Any], values: Mapping[str, Any]
) -> None:
    assert task.cache_for is not None
    now = datetime.now(UTC)
    kept = Cached(
        result=state.result,
        location=state.location,
        context={
            "cached_inputs": dict(inputs),
            "cached_parameters": dict(values.get("parameters") or {}),
            "cached_result_expiration": now + task.cache_for,
            "cached_at": now,
        },
    )
    with _cache_lock:
        _cache[_cache_key(task, slug, values)] = kept


def _format_values(inputs: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """What a location or target template is formatted with: parameters, context, inputs."""
    return {**(values.get("parameters") or {}), **values, **inputs}


def _from_target(
    task: Task, result: Any, inputs: Mapping[str, Any], values: Mapping[str, Any]
) -> State | None:
    formatting = _format_values(inputs, values)
    try:
        # The template is formatted once, by exists() (a value holding braces stays as it is).
        target = task.target(**formatting) if callable(task.target) else task.target
        if not result.exists(target, **formatting):
            return None
        location = _location(target, formatting)
        value = result.read(location).value
    except Exception as exc:
        return Failed(
            f"Cannot check the target {task.target!r} of task {values['task_slug']!r}: "
            f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    return Cached(f"Result found at task target {location}", result=value, location=location)


def _checkpoint(
    task: Task, result: Any, state: State, inputs: Mapping[str, Any], values: Mapping[str, Any]
) -> State:
    """Write the result where the task's (or flow's) Result says, when checkpointing is on and
    the task did not opt out; a write that fails fails the task (its result would be lost)."""
    if result is None or task.checkpoint is False or not values.get("checkpointing"):
        return state
    if state.result is None:
        state.location = NO_VALUE_WRITTEN
        return state
    formatting = _format_values(inputs, values)
    try:
        writer = result
        if task.target is not None:
            writer = result.copy()
            writer.location = task.target  # formatted once, by write()
        state.location = writer.write(state.result, **formatting).location
    except Exception as exc:
        return Failed(
            f"Cannot write the result of task {values['task_slug']!r} ({type(result).__name__}): "
            f"{type(exc).__name__}: {exc}",
            result=state.result,
            attempts=state.attempts,
            traceback=traceback.format_exc(),
        )
    return state


def _location(template: Any, formatting: Mapping[str, Any], what: str = "location") -> str:
    if callable(template):
        return str(template(**formatting))
    try:
        return str(template).format(**formatting)
    except KeyError as exc:
        raise KeyError(
            f"{what} {template!r} names {exc.args[0]!r}, which is not a parameter, an input or "
            f"a context value"
        ) from None


# --- mapped parents -----------------------------------------------------------------------


def collect_mapped(task: Task, slug: str, children: list[State]) -> State:
    """The parent state of a mapped task: Mapped when every child succeeded (skipped ones
    too), else Failed; the task's state handlers see it."""
    results = [child.result for child in children]
    failed = [(index, child) for index, child in enumerate(children) if not child.is_successful()]
    if not failed:
        state: State = Mapped(
            f"{len(children)} mapped runs succeeded", result=results, map_states=children
        )
    else:
        index, first = failed[0]
        state = Failed(
            f"{len(failed)} of {len(children)} mapped runs did not succeed; "
            f"first: {slug}[{index}]: {first.message}",
            result=results,
            map_states=children,
        )
    if task.state_handlers or task.on_failure is not None:
        state = _change(task, Running(), state)
    return state


def trigger_failed(upstream_slugs: list[str]) -> TriggerFailed:
    """What a task whose upstream tasks did not succeed ends in, under the default trigger."""
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
