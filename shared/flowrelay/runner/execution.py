"""One execution of one flow run: load the run, its registration and its flow, run it with its
executor, and report how it ended; SIGTERM (ECS StopTask, pod deletion) is reported too.

Restart from failure: once the flow has run (whatever its outcome), the locations of the task
results it checkpointed are written as a manifest next to them (``flowrelay.sdk.checkpoints``)
and the final report says where (``details.checkpoints``). A run that restarts another
(``restart_of``) reads that report, the manifest and the values it names, and gives them to the
engine as finished task states: those tasks do not run again, the rest do.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from flowrelay.core.contract import (
    EXIT_FLOW_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUN,
    EXIT_SUCCESS,
    EXIT_TERMINATED,
)
from flowrelay.core.interrupts import Terminated, raise_on_sigterm
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.runner.config import RunnerConfig
from flowrelay.runner.reporting import Reporter, heartbeats
from flowrelay.sdk.storage import load_flow

if TYPE_CHECKING:
    from flowrelay.control.store import Store
    from flowrelay.core.registration import FlowRegistration
    from flowrelay.core.runs import FlowRun
    from flowrelay.sdk.executors.base import Executor
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.states import State

log = logging.getLogger("flowrelay.runner")


def code_changed(registration: FlowRegistration) -> str | None:
    """Why the code a Local storage names is not the code this version was registered with;
    None when it is (or its storage pins nothing: S3 keys hold the content's hash, and a
    Module is the image's code)."""
    from flowrelay.core.registration import local_code_sha256
    from flowrelay.core.storage import Local

    storage = registration.storage
    if not isinstance(storage, Local) or registration.code_sha256 is None:
        return None
    now = local_code_sha256(storage)
    if now is None or now == registration.code_sha256:
        return None  # the same code; or no script at all, which loading the flow reports
    return (
        f"its script {storage.path} has changed since it was registered (sha256 "
        f"{registration.code_sha256[:12]}…, now {now[:12]}…); a version runs only the code it "
        f"was registered with: register the flow again and run the new version"
    )


#: How many failed tasks a report names (the rest are counted).
MAX_FAILED_TASKS = 20
#: How many problems restoring checkpoints a report names, and how long each may be: a report's
#: details are bounded (``flowrelay.core.limits.DETAILS_BYTES``); the log has them all.
MAX_RESTORE_PROBLEMS = 10
MAX_PROBLEM_CHARS = 300
#: How many restarts back the runner looks for checkpoints and the first run's scheduled start.
MAX_RESTART_CHAIN = 20
STOPPED_BY_SIGTERM = "Flow run stopped by SIGTERM (ECS StopTask or pod deletion) before it finished"


class NotRunnable(Exception):
    """The flow cannot be run; the message names the cause.

    ``report`` is False when there is no run to report on (its id is unknown to the table):
    an event about it would only end in a dead-letter queue.
    """

    def __init__(self, message: str, *, report: bool = True) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class PreparedRun:
    """Everything needed to run the flow, checked before anything is reported as Running."""

    run: FlowRun
    registration: FlowRegistration
    flow: Flow
    executor: Executor
    parameters: dict[str, Any]


@dataclass
class Restored:
    """What a restart takes over from the run it restarts: finished task states by slug, and
    what to say about them (the Running report's message and details)."""

    task_states: dict[str, State] = field(default_factory=dict)
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def prepare(store: Store, run_id: str) -> PreparedRun:
    """Load the run, its registration, the flow and its executor; ``NotRunnable`` names what
    is missing or wrong."""
    from flowrelay.core.registration import ParameterError
    from flowrelay.sdk.engine import resolve_parameters
    from flowrelay.sdk.executors.dask_executors import DaskExecutor
    from flowrelay.sdk.executors.spec import build_executor
    from flowrelay.sdk.storage import FlowLoadError

    try:
        run = store.runs.get(run_id)
    except Exception as exc:
        raise NotRunnable(
            f"Cannot read flow run {run_id!r} from table {store.table_name!r}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if run is None:
        raise NotRunnable(
            f"Flow run {run_id!r} not found in table {store.table_name!r}", report=False
        )
    if run.state.is_final:
        raise NotRunnable(
            f"Flow run {run_id!r} is already {run.state}; not running it again", report=False
        )
    if run.state is RunState.CANCELLING:
        raise NotRunnable(
            f"Flow run {run_id!r} was asked to cancel before its flow started; not running it"
        )

    version = "latest version" if run.flow_version is None else f"version {run.flow_version}"
    try:
        registration = store.flows.get(run.flow_name, run.flow_version)
    except Exception as exc:
        raise NotRunnable(
            f"Cannot read the registration of flow {run.flow_name!r} ({version}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if registration is None:
        raise NotRunnable(f"Flow {run.flow_name!r} ({version}) is not registered")
    where = f"flow {registration.name!r} version {registration.version}"
    changed = code_changed(registration)
    if changed is not None:
        raise NotRunnable(f"Cannot run {where}: {changed}")

    try:
        flow = load_flow(registration.storage)
    except FlowLoadError as exc:
        raise NotRunnable(f"Cannot load {where} from its storage: {exc}") from exc
    except Exception as exc:  # e.g. S3 unreachable: botocore raises its own errors
        raise NotRunnable(
            f"Cannot load {where} from its storage: {type(exc).__name__}: {exc}"
        ) from exc
    if flow.name != registration.name:
        log.warning("The storage of %s holds a flow named %r; running it anyway", where, flow.name)

    try:
        parameters = resolve_parameters(flow, run.parameters)
    except ParameterError as exc:
        raise NotRunnable(f"Parameters of flow run {run_id!r} do not fit {where}: {exc}") from exc

    spec = registration.executor
    try:
        executor = build_executor(spec)
        if isinstance(executor, DaskExecutor) and isinstance(executor.cluster_class, str):
            # Resolve the import string now: a typo is a registration error (exit 2), not a
            # failure of the flow that shows only after the run was reported Running.
            executor.resolve_cluster_class()
    except Exception as exc:
        raise NotRunnable(
            f"Cannot build the executor of {where} ({spec.type} with {spec.kwargs}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return PreparedRun(
        run=run,
        registration=registration,
        flow=flow,
        executor=executor,
        parameters=parameters,
    )


def failed_tasks(flow: Flow, state: State) -> list[str]:
    """The names of the tasks where the run's failure started."""
    from flowrelay.sdk.engine import failure_causes

    task_states = state.result if isinstance(state.result, dict) else {}
    return [flow.slug(task) for task in failure_causes(flow, task_states)]


def root_traceback(flow: Flow, state: State) -> str | None:
    """The traceback of the first task where the run's failure started, bounded."""
    from flowrelay.sdk.engine import failure_causes, failure_traceback

    task_states = state.result if isinstance(state.result, dict) else {}
    for task in failure_causes(flow, task_states):
        trace = failure_traceback(task_states[task])
        if trace is not None:
            return trace
    return None


def _said(exc: BaseException) -> str:
    """An error in one line: our own errors say what and where; others need their type."""
    text = " ".join(str(exc).split())
    ours = type(exc).__module__.startswith("flowrelay.")
    return text if ours else f"{type(exc).__name__}: {text}"


def _boto3_client(service: str) -> Any:
    """A client of ``service`` from the environment (region, credentials and endpoint as the
    task or pod provides them)."""
    import boto3

    session: Any = boto3.session.Session()
    return session.client(service)


@contextmanager
def _reports_not_interrupted() -> Iterator[None]:
    """Outside the flow, SIGTERM only notes itself: the final report (a few seconds at most, well
    within the ECS and Kubernetes grace periods) must not be cut short by it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: FrameType | None) -> None:
        log.warning("Received %s; finishing the report first", signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, note)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Runner:
    """One execution of one flow run (``run`` below drives it)."""

    def __init__(
        self,
        config: RunnerConfig,
        store: Store,
        reporter: Reporter,
        make_client: Callable[[str], Any] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.reporter = reporter
        self.make_client = make_client or _boto3_client
        self.prepared: PreparedRun | None = None
        self.state: State | None = None
        self.started_at: float | None = None

    def execute(self) -> int:
        """Run the flow and report how it ended; returns the process exit code."""
        with _reports_not_interrupted():
            try:
                with raise_on_sigterm():
                    self._prepare_and_run()
            except NotRunnable as exc:
                log.error("Not running the flow: %s", exc)
                if exc.report:
                    self.reporter.report(RunState.FAILED, str(exc))
                return EXIT_NOT_RUN
            except (Terminated, KeyboardInterrupt) as exc:
                if self.state is not None:  # the signal came after the flow had finished
                    return self._report_outcome(self.state)
                return self._report_stopped(exc)
            except Exception as exc:
                # The engine turns task errors into states; what reaches here kept the flow
                # from running at all (its executor or cluster did not start, a hook raised).
                log.exception("The flow run crashed")
                self.reporter.report(
                    RunState.FAILED,
                    f"Flow run crashed: {type(exc).__name__}: {exc}",
                    details=self._elapsed(),
                )
                return EXIT_FLOW_FAILED
            assert self.state is not None
            return self._report_outcome(self.state)

    def _prepare_and_run(self) -> None:
        from flowrelay.runner.clusters import RunClusters
        from flowrelay.sdk.executors.dask_executors import DaskExecutor

        prepared = prepare(self.store, self.config.run_id)
        self.prepared = prepared
        if isinstance(prepared.executor, DaskExecutor):
            prepared.executor.watcher = RunClusters(
                prepared.run, self.store, self.reporter, self.make_client
            )
        registration = prepared.registration
        restarted = self._restarted_runs(prepared.run)
        restored = self._restored(prepared, restarted)
        first = restarted[-1] if restarted else prepared.run
        context = {
            "flow_run_id": prepared.run.run_id,
            # The dates of the first run (``today`` and the rest come from ``date``): when it was
            # requested, so a restart redoes the same day's work, whenever it runs.
            "scheduled_start_time": first.created_at,
            "date": first.created_at,
            "checkpointing": self.config.checkpointing,
        }
        log.info(
            "Running flow %r version %d with %r",
            registration.name,
            registration.version,
            prepared.executor,
        )
        self.started_at = time.monotonic()
        message = f"Running flow {registration.name!r} version {registration.version}"
        self.reporter.report(
            RunState.RUNNING,
            f"{message}; {restored.message}" if restored.message else message,
            details={"executor": registration.executor.type, **restored.details},
        )
        with heartbeats(self.reporter, self.config.heartbeat_seconds):
            self.state = prepared.flow.run(
                parameters=prepared.parameters,
                executor=prepared.executor,
                context=context,
                restart_from=restored.task_states,
            )

    def _restarted_runs(self, run: FlowRun) -> list[FlowRun]:
        """The runs ``run`` restarts, nearest first: the one it restarts, the one that one
        restarted, ... (at most ``MAX_RESTART_CHAIN``; one ``GetItem`` each). Empty for a run
        that is not a restart, or when the one it restarts cannot be read (then said why)."""
        chain: list[FlowRun] = []
        current = run
        while current.restart_of is not None and len(chain) < MAX_RESTART_CHAIN:
            try:
                earlier = self.store.runs.get(current.restart_of)
            except Exception as exc:
                log.warning(
                    "Cannot read run %s, which run %s restarts: %s: %s",
                    current.restart_of,
                    current.run_id,
                    type(exc).__name__,
                    exc,
                )
                break
            if earlier is None or any(seen.run_id == earlier.run_id for seen in chain):
                break
            chain.append(earlier)
            current = earlier
        return chain

    def _restored(self, prepared: PreparedRun, restarted: list[FlowRun]) -> Restored:
        """For a restart, finished task states from the checkpoint manifest of the run it
        restarts (or, when that run left none, of the nearest run before it that did: a restart
        that failed before checkpointing anything loses nothing); nothing for another run. What
        cannot be restored runs again: a restart never fails for want of checkpoints, it says
        what it could not reuse and why."""
        from flowrelay.sdk.checkpoints import read_manifest, restored_states

        original_id = prepared.run.restart_of
        if original_id is None:
            return Restored()
        details: dict[str, Any] = {"restart_of": original_id, "reused_tasks": 0}
        try:
            found, why_not = self._manifest_in(restarted)
        except Exception as exc:
            found, why_not = None, f"where its checkpoints are cannot be read ({_said(exc)})"
        if found is None:
            if not restarted:
                why_not = "it cannot be read from the table"
            message = f"restart of run {original_id}: {why_not}; running every task"
            log.warning("%s", message)
            return Restored(message=message, details=details)
        uri, owner = found
        of_run = f"run {owner}" + ("" if owner == original_id else f" (restarted by {original_id})")
        details["checkpoints"] = uri
        if owner != original_id:
            details["checkpoints_of"] = owner
        try:
            client = self.make_client("s3") if uri.startswith("s3://") else None
            entries = read_manifest(uri, client)
            states, problems = restored_states(prepared.flow, entries)
        except Exception as exc:
            message = (
                f"restart of run {original_id}: the checkpoints of {of_run} cannot be read "
                f"({_said(exc)}); running every task"
            )
            log.warning("%s", message)
            return Restored(message=message, details=details)
        for problem in problems:
            log.warning("Not reusing a checkpoint of %s: %s", of_run, problem)
        message = (
            f"reusing {len(states)} checkpointed task result{'' if len(states) == 1 else 's'} "
            f"of {of_run}"
            if states
            else f"restart of run {original_id}: none of the checkpointed results of {of_run} "
            f"can be reused; running every task"
        )
        if problems:
            message += f" ({len(problems)} not reused: see the run's log)"
        log.info("%s", message[0].upper() + message[1:])
        details["reused_tasks"] = len(states)
        if problems:
            shown = [
                problem if len(problem) <= MAX_PROBLEM_CHARS else problem[:MAX_PROBLEM_CHARS] + "…"
                for problem in problems[:MAX_RESTORE_PROBLEMS]
            ]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown)} more")
            details["checkpoint_problems"] = shown
        return Restored(task_states=dict(states), message=message, details=details)

    def _manifest_in(self, restarted: list[FlowRun]) -> tuple[tuple[str, str] | None, str]:
        """The URI of the nearest checkpoint manifest of the ``restarted`` runs, and the run
        it belongs to (a final report says where, in ``details.checkpoints.uri``); or None and
        why the run restarted left none."""
        why_not = ""
        for index, earlier in enumerate(restarted):
            entry = self.store.runs.last_transition(earlier)
            checkpoints = entry.details.get("checkpoints") if entry is not None else None
            uri = checkpoints.get("uri") if isinstance(checkpoints, dict) else None
            if isinstance(uri, str) and uri:
                return (uri, earlier.run_id), ""
            if index > 0:
                continue
            if entry is None:
                why_not = "its history has expired, and with it where its checkpoints are"
            elif entry.source is not Source.RUNNER:
                why_not = (
                    f"it left no checkpoints: it ended {earlier.state} before its flow finished "
                    f"({entry.source}: {entry.message or 'no message'})"
                )
            elif (entry.message or "").startswith(("Flow run crashed", "Flow run stopped")):
                why_not = f"it left no checkpoints: {entry.message}"
            else:
                why_not = (
                    "it left no checkpoints: its tasks checkpointed no results (the flow has no "
                    "result= configured, or checkpointing was off) or they could not be listed "
                    "(see its log)"
                )
        return None, why_not

    def _report_outcome(self, state: State) -> int:
        details = self._elapsed()
        checkpoints = self._write_manifest(state)
        if checkpoints is not None:
            details["checkpoints"] = checkpoints
        if state.is_successful():
            self.reporter.report(RunState.SUCCESS, state.message, details=details)
            return EXIT_SUCCESS
        assert self.prepared is not None
        tasks = failed_tasks(self.prepared.flow, state)
        if tasks:
            shown = tasks[:MAX_FAILED_TASKS]
            if len(tasks) > len(shown):
                shown.append(f"... and {len(tasks) - len(shown)} more")
            details["failed_tasks"] = shown
        trace = root_traceback(self.prepared.flow, state)
        if trace is not None:
            log.error("Task %s failed:\n%s", tasks[0] if tasks else "?", trace)
            details["traceback"] = trace
        self.reporter.report(RunState.FAILED, state.message, details=details)
        return EXIT_FLOW_FAILED

    def _write_manifest(self, state: State) -> dict[str, Any] | None:
        """Write where this run's checkpointed results are, for a restart to find them; its
        URI and how many task results it names, or None when there is nothing to write or it
        could not be written (a warning: how the flow ended does not change)."""
        from flowrelay.sdk.checkpoints import manifest_entries, manifest_result, write_manifest

        prepared = self.prepared
        if prepared is None or not self.config.checkpointing:
            return None
        try:
            entries = manifest_entries(prepared.flow, state)
            result = manifest_result(prepared.flow) if entries else None
            if result is None:
                return None
            uri = write_manifest(result, prepared.run.run_id, prepared.flow.name, entries)
        except Exception as exc:
            log.warning(
                "Could not write the checkpoint manifest (a restart of this run will run every "
                "task): %s: %s",
                type(exc).__name__,
                exc,
            )
            return None
        log.info("Wrote the checkpoints of %d task results to %s", len(entries), uri)
        return {"uri": uri, "tasks": len(entries)}

    def _report_stopped(self, exc: BaseException) -> int:
        if isinstance(exc, KeyboardInterrupt):
            message, code = "Flow run stopped by SIGINT before it finished", EXIT_INTERRUPTED
        else:
            message, code = STOPPED_BY_SIGTERM, EXIT_TERMINATED
        log.warning("%s", message)
        details = {**self._elapsed(), "signal": "SIGINT" if code == EXIT_INTERRUPTED else "SIGTERM"}
        # Reported even when the stop came before the flow started: the run was launched, and
        # Failed while Cancelling is how a cancellation takes effect.
        self.reporter.report(RunState.FAILED, message, details=details)
        return code

    def _elapsed(self) -> dict[str, Any]:
        if self.started_at is None:
            return {}
        return {"duration_seconds": round(time.monotonic() - self.started_at, 3)}
