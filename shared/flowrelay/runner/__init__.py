"""The flow runner: the command every launched flow run executes (``python -m flowrelay.runner``
or the ``flowrelay-runner`` console script).

The launchers start it with the run's coordinates in its environment:

- ``FLOWRELAY_RUN_ID``, ``FLOWRELAY_TABLE_NAME``, ``FLOWRELAY_BUS_NAME`` (required);
- ``FLOWRELAY_ATTEMPT`` (optional, reported with every event), ``FLOWRELAY_HEARTBEAT_SECONDS``
  (optional, default 30), ``FLOWRELAY_LOG_LEVEL`` (optional, default INFO).

It reads the run and its flow registration from the table (``GetItem`` only), loads the flow
from the registration's storage, builds the registered executor and runs the flow. Everything it
has to say goes on the bus as "Flow Run State Changed" events (``PutEvents`` only): ``Running``,
heartbeats while the flow runs, then one final ``Success`` or ``Failed`` whose message says why.
It never writes the table: ``record_state`` is the single writer of run state, so the runner's
reports pass the same transition table and duplicate handling as everyone else's.

Exit codes (what the ECS task or Kubernetes pod ends with):

- 0: the flow run succeeded;
- 1: the flow run failed (a task failed, or the executor could not run the flow);
- 2: the flow was not run (missing settings, unknown run, flow not registered, flow cannot be
  loaded, parameters do not fit, bad executor);
- 143: stopped by SIGTERM (ECS StopTask, pod deletion); 130 for SIGINT. The ``Failed`` report is
  on the bus and any temporary Dask cluster closed before the process exits.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

from flowrelay.core.events import RUN_ID_PATTERN, FlowRunStateChanged
from flowrelay.core.interrupts import Terminated, raise_on_sigterm
from flowrelay.core.lifecycle import RunState, Source

if TYPE_CHECKING:
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.store import FlowRun, RunStore
    from flowrelay.core.registration import FlowRegistration
    from flowrelay.sdk.executors.base import Executor
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.states import State

log = logging.getLogger("flowrelay.runner")

ENV_RUN_ID = "FLOWRELAY_RUN_ID"
ENV_TABLE_NAME = "FLOWRELAY_TABLE_NAME"
ENV_BUS_NAME = "FLOWRELAY_BUS_NAME"
ENV_ATTEMPT = "FLOWRELAY_ATTEMPT"
ENV_HEARTBEAT_SECONDS = "FLOWRELAY_HEARTBEAT_SECONDS"
ENV_LOG_LEVEL = "FLOWRELAY_LOG_LEVEL"

DEFAULT_HEARTBEAT_SECONDS = 30.0

EXIT_SUCCESS = 0
EXIT_FLOW_FAILED = 1
EXIT_NOT_RUN = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = Terminated.exit_code

#: ``FlowRunStateChanged.message`` is bounded; longer messages are cut to fit.
_MAX_MESSAGE = 8192
STOPPED_BY_SIGTERM = "Flow run stopped by SIGTERM (ECS StopTask or pod deletion) before it finished"


class ConfigError(ValueError):
    """The runner's environment is missing a setting or has a bad one."""


class NotRunnable(Exception):
    """The flow cannot be run; the message names the cause.

    ``report`` is False when there is no run to report on (its id is unknown to the table):
    an event about it would only end in a dead-letter queue.
    """

    def __init__(self, message: str, *, report: bool = True) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class RunnerConfig:
    """The runner's settings, read once from its environment."""

    run_id: str
    table_name: str
    bus_name: str
    attempt: int | None = None
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    log_level: str = "INFO"


def config_from_env(env: Mapping[str, str]) -> RunnerConfig:
    """The settings in ``env``; ``ConfigError`` names every missing or bad one at once, so a
    misconfigured task definition is fixed in one round."""
    import re

    problems: list[str] = []
    required: dict[str, str] = {}
    for name in (ENV_RUN_ID, ENV_TABLE_NAME, ENV_BUS_NAME):
        value = env.get(name, "").strip()
        if not value:
            problems.append(f"{name} is not set")
        required[name] = value
    run_id = required[ENV_RUN_ID]
    if run_id and not re.fullmatch(RUN_ID_PATTERN, run_id):
        problems.append(f"{ENV_RUN_ID}={run_id!r} is not a flow run id")
    attempt: int | None = None
    raw_attempt = env.get(ENV_ATTEMPT, "").strip()
    if raw_attempt:
        try:
            attempt = int(raw_attempt)
        except ValueError:
            attempt = None
        if attempt is None or attempt < 1:
            problems.append(f"{ENV_ATTEMPT}={raw_attempt!r} is not a whole number >= 1")
    heartbeat = DEFAULT_HEARTBEAT_SECONDS
    raw_heartbeat = env.get(ENV_HEARTBEAT_SECONDS, "").strip()
    if raw_heartbeat:
        try:
            heartbeat = float(raw_heartbeat)
        except ValueError:
            heartbeat = -1.0
        if not 0 < heartbeat < float("inf"):
            problems.append(f"{ENV_HEARTBEAT_SECONDS}={raw_heartbeat!r} is not a number > 0")
    log_level = env.get(ENV_LOG_LEVEL, "").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(log_level), int):
        problems.append(f"{ENV_LOG_LEVEL}={log_level!r} is not a logging level")
    if problems:
        raise ConfigError("; ".join(problems))
    return RunnerConfig(
        run_id=run_id,
        table_name=required[ENV_TABLE_NAME],
        bus_name=required[ENV_BUS_NAME],
        attempt=attempt,
        heartbeat_seconds=heartbeat,
        log_level=log_level,
    )


class _RunIdFilter(logging.Filter):
    """Stamps every record with the run id, including records from dask and botocore loggers:
    the container's log stream is searched by run id."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def configure_logging(config: RunnerConfig) -> None:
    """Log to stderr (what ECS and Kubernetes collect), one line per record, with the run id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RunIdFilter(config.run_id))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [run %(run_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level)


def _clip(message: str | None) -> str | None:
    if message is None or len(message) <= _MAX_MESSAGE:
        return message
    return message[: _MAX_MESSAGE - 1] + "…"


class Reporter:
    """Puts this run's state reports on the bus.

    A report that cannot be published is logged, not raised: the run's outcome and exit code must
    not depend on the bus, and the control plane still learns of the end from the task or pod
    stopping (and from missing heartbeats).
    """

    def __init__(self, publisher: Publisher, config: RunnerConfig) -> None:
        self.publisher = publisher
        self.config = config

    def report(
        self,
        state: RunState,
        message: str | None = None,
        *,
        heartbeat: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Publish one report; whether the bus accepted it."""
        all_details = dict(details or {})
        if self.config.attempt is not None:
            all_details.setdefault("attempt", self.config.attempt)
        event = FlowRunStateChanged(
            flow_run_id=self.config.run_id,
            state=state,
            source=Source.RUNNER,
            message=_clip(message),
            heartbeat=heartbeat,
            details=all_details,
        )
        try:
            self.publisher.publish(event)
        except Exception:
            what = "heartbeat" if heartbeat else f"{state} report"
            log.exception("Could not put the %s on bus %r", what, self.config.bus_name)
            return False
        if not heartbeat:
            log.info("Reported %s%s", state, f": {event.message}" if event.message else "")
        return True


@contextmanager
def heartbeats(reporter: Reporter, interval: float) -> Iterator[None]:
    """Report ``Running`` heartbeats every ``interval`` seconds while the block runs.

    A daemon thread: a flow that hangs or ignores signals must not keep the process alive for the
    sake of its heartbeat. The thread is stopped (and joined) before the block's exit returns, so
    no heartbeat follows the final report.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            reporter.report(RunState.RUNNING, heartbeat=True)

    thread = threading.Thread(target=beat, name="flowrelay-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=max(interval, 5.0))


@dataclass
class PreparedRun:
    """Everything needed to run the flow, checked before anything is reported as Running."""

    run: FlowRun
    registration: FlowRegistration
    flow: Flow
    executor: Executor
    parameters: dict[str, Any]


def prepare(store: RunStore, run_id: str) -> PreparedRun:
    """Load the run, its registration, the flow and its executor; ``NotRunnable`` names what
    is missing or wrong."""
    from flowrelay.sdk.engine import ParameterError, resolve_parameters
    from flowrelay.sdk.executors.dask_executors import DaskExecutor
    from flowrelay.sdk.executors.spec import build_executor
    from flowrelay.sdk.storage import FlowLoadError

    try:
        run = store.get_run(run_id)
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
        registration = store.get_flow(run.flow_name, run.flow_version)
    except Exception as exc:
        raise NotRunnable(
            f"Cannot read the registration of flow {run.flow_name!r} ({version}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if registration is None:
        raise NotRunnable(f"Flow {run.flow_name!r} ({version}) is not registered")
    where = f"flow {registration.name!r} version {registration.version}"

    try:
        flow = registration.storage.load()
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

    def __init__(self, config: RunnerConfig, store: RunStore, reporter: Reporter) -> None:
        self.config = config
        self.store = store
        self.reporter = reporter
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
        prepared = prepare(self.store, self.config.run_id)
        self.prepared = prepared
        registration = prepared.registration
        log.info(
            "Running flow %r version %d with %r",
            registration.name,
            registration.version,
            prepared.executor,
        )
        self.started_at = time.monotonic()
        self.reporter.report(
            RunState.RUNNING,
            f"Running flow {registration.name!r} version {registration.version}",
            details={"executor": registration.executor.type},
        )
        with heartbeats(self.reporter, self.config.heartbeat_seconds):
            self.state = prepared.flow.run(
                parameters=prepared.parameters, executor=prepared.executor
            )

    def _report_outcome(self, state: State) -> int:
        details = self._elapsed()
        if state.is_successful():
            self.reporter.report(RunState.SUCCESS, state.message, details=details)
            return EXIT_SUCCESS
        assert self.prepared is not None
        tasks = failed_tasks(self.prepared.flow, state)
        if tasks:
            details["failed_tasks"] = tasks
        self.reporter.report(RunState.FAILED, state.message, details=details)
        return EXIT_FLOW_FAILED

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


def run(env: Mapping[str, str]) -> int:
    """Run the flow run ``env`` describes; returns the exit code (see the module docstring)."""
    try:
        config = config_from_env(env)
    except ConfigError as exc:
        print(f"flowrelay-runner: {exc}", file=sys.stderr)
        return EXIT_NOT_RUN
    configure_logging(config)

    import boto3

    from flowrelay.aws.bus import Publisher
    from flowrelay.control.store import RunStore

    # Clients from the environment: region, credentials and AWS_ENDPOINT_URL as the task or pod
    # provides them.
    session = boto3.session.Session()
    store = RunStore(session.client("dynamodb"), config.table_name)
    reporter = Reporter(Publisher(session.client("events"), config.bus_name), config)
    return Runner(config, store, reporter).execute()


def main() -> None:
    """Console-script entry point: run, then exit with the run's exit code."""
    code = run(os.environ)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if code in (EXIT_TERMINATED, EXIT_INTERRUPTED):
        # Everything is reported and closed. A task abandoned mid-run may still hold a
        # non-daemon thread (thread pools are joined at interpreter exit), which would keep the
        # process alive until the task ends or the platform kills it; leave now instead.
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
