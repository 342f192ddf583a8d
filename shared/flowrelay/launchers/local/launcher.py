"""Local targets: each run as a ``flowrelay-runner`` process on the machine the dispatcher runs
on (the dev stack's machine), for ``LocalRun`` and ``UniversalRun`` flows.

A launch starts the runner, under a guard (``guard.py``) that leads its process group and ends
it when the process that launched it is gone, in the run config's ``working_dir`` (else the
target's) with the run config's ``env`` over the dispatcher's environment, its output in a log
file (``<log_dir>/<run id>-<attempt>.log``). Each attempt leaves a record beside its log
(``.json``: process id and start time), so a resumed attempt finds what it started instead of
starting another. When the process exits, the launcher puts a "Local Process State Change"
event on the bus (as ECS puts "ECS Task State Change"), which record_state reads with
``read_process_event``; the monitor asks ``status`` when an event went missing.

Local targets need a long-lived host: the dev stack. Where the dispatcher lives only for one
call (``flowrelay invoke``), its runs end with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.contract import RUNNER_COMMAND
from flowrelay.core.routing import Target
from flowrelay.core.run_configs import LocalRun, UniversalRun
from flowrelay.core.runs import FlowRun
from flowrelay.core.wording import with_article
from flowrelay.launchers.base import (
    InfraStatus,
    Launched,
    LaunchError,
    Swept,
    container_environment,
    run_config_of,
)
from flowrelay.launchers.local.events import DETAIL_TYPE, SOURCE, process_status
from flowrelay.launchers.local.processes import lifeline, resolve_command, start_guarded
from flowrelay.launchers.local.settings import LocalSettings

#: Seconds between SIGTERM and SIGKILL when a run is stopped (as ECS's stopTimeout).
STOP_GRACE_SECONDS = 30.0


class LocalLaunched(Launched):
    """A run's local process, as its run records it."""

    kind: str = "local"
    pid: int
    started_at: float
    """The process's start time (seconds since the epoch): with ``pid``, it names the process
    (a process id alone may be given to another process once this one ends)."""
    log_file: str
    working_dir: str | None = None


def process_ref(pid: int, started_at: float) -> str:
    """The ``ref`` of a local process: its id and start time."""
    return f"local:{pid}:{started_at:.3f}"


class LocalLauncher:
    """Launches runs as local processes (see the module docstring); the ``Launcher`` contract.

    ``events`` is a boto3 EventBridge client, where process exits are reported on ``bus_name``;
    ``table_name`` and ``bus_name`` go to the runner.
    """

    kind = "local"
    reports_events = True

    def __init__(
        self,
        events: Any,
        *,
        table_name: str,
        bus_name: str,
        grace_seconds: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.events = events
        self.table_name = table_name
        self.bus_name = bus_name
        self.grace_seconds = grace_seconds
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- launching -----------------------------------------------------------------------------

    def launch(
        self, run: FlowRun, target: Target, *, attempt: int = 1, resume: bool = False
    ) -> LocalLaunched:
        """Start the runner of attempt ``attempt`` of ``run`` as a local process; with
        ``resume``, return the process the attempt started before, if there is one."""
        settings = _settings(target)
        log_dir = Path(settings.log_dir or _default_log_dir())
        record = log_dir / f"{run.run_id}-{attempt}.json"
        if resume:
            found = _read_record(record)
            if found is not None:
                return found
        config = _run_config(run)
        working_dir = (
            config.working_dir if isinstance(config, LocalRun) and config.working_dir else None
        ) or settings.working_dir
        if working_dir is not None and not Path(working_dir).is_dir():
            raise LaunchError(
                f"working_dir {working_dir!r} is not a directory on this machine",
                retryable=False,
            )
        env = {
            **os.environ,
            **container_environment(
                run,
                config or LocalRun(),
                attempt,
                table_name=self.table_name,
                bus_name=self.bus_name,
                region=None,  # the dispatcher's own environment says it
            ),
        }
        try:
            command = resolve_command(list(RUNNER_COMMAND))
            log_dir.mkdir(parents=True, exist_ok=True)
            log_path = log_dir / f"{run.run_id}-{attempt}.log"
            with open(log_path, "ab") as log:
                process = start_guarded(
                    command,
                    fd=lifeline(),
                    env=env,
                    log_file=log,
                    grace_seconds=self.grace_seconds,
                    cwd=working_dir,
                )
        except OSError as exc:
            raise LaunchError(f"cannot start the runner: {exc}", retryable=False) from exc
        started_at = _start_time(process.pid)
        launched = LocalLaunched(
            ref=process_ref(process.pid, started_at),
            attempt=attempt,
            pid=process.pid,
            started_at=started_at,
            log_file=str(log_path),
            working_dir=working_dir,
        )
        record.write_text(launched.model_dump_json())
        with self._lock:
            self._children[process.pid] = process
        threading.Thread(
            target=self._report_exit,
            args=(run.run_id, launched, process),
            name=f"local-run-{run.run_id}",
            daemon=True,
        ).start()
        return launched

    def find_unrecorded(
        self, run: FlowRun, attempt: int, targets: Iterable[Target]
    ) -> LocalLaunched | None:
        """The process attempt ``attempt`` of ``run`` started on one of ``targets`` (from its
        record), if any."""
        for target in targets:
            if target.kind != self.kind:
                continue
            log_dir = Path(_settings(target).log_dir or _default_log_dir())
            found = _read_record(log_dir / f"{run.run_id}-{attempt}.json")
            if found is not None:
                return found
        return None

    # --- how it is doing, and stopping it --------------------------------------------------------

    def status(self, infrastructure: Mapping[str, Any]) -> InfraStatus:
        """Whether the run's process still runs; when it has ended, how (its exit code, when it
        was started from this process)."""
        launched = _launched(infrastructure)
        code = self._exit_code(launched.pid)
        running = code is None and _is_running(launched)
        return process_status(launched.ref, launched.pid, code, running=running)

    def stop_launched(self, infrastructure: Mapping[str, Any], reason: str) -> None:
        """SIGTERM to the run's process group, SIGKILL after the grace period if it lingers."""
        launched = _launched(infrastructure)
        if not _is_running(launched):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(launched.pid, signal.SIGTERM)
        threading.Thread(target=self._kill_after_grace, args=(launched,), daemon=True).start()

    # --- inside --------------------------------------------------------------------------------

    def sweep_cluster(self, run: FlowRun, cluster: ClusterSweep) -> Swept:
        """Nothing to sweep: a local run's Dask cluster (a ``LocalCluster``) lives in its
        process group, which ends with the run."""
        return Swept()

    def _kill_after_grace(self, launched: LocalLaunched) -> None:
        process = self._children.get(launched.pid)
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=self.grace_seconds)
        else:
            threading.Event().wait(self.grace_seconds)
        if _is_running(launched):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(launched.pid, signal.SIGKILL)

    def _exit_code(self, pid: int) -> int | None:
        with self._lock:
            process = self._children.get(pid)
        return None if process is None else process.poll()

    def _report_exit(
        self, run_id: str, launched: LocalLaunched, process: subprocess.Popen[bytes]
    ) -> None:
        code = process.wait()
        # What the command left in its group goes with it, as a container's processes do.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(launched.pid, signal.SIGKILL)
        detail = {
            "flow_run_id": run_id,
            "ref": launched.ref,
            "pid": launched.pid,
            "exit_code": code,
            "stopped_at": datetime.now(UTC).isoformat(),
        }
        with contextlib.suppress(Exception):  # the monitor asks status() when this is lost
            self.events.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "Detail": json.dumps(detail),
                        "EventBusName": self.bus_name,
                    }
                ]
            )


def _settings(target: Target) -> LocalSettings:
    try:
        return LocalSettings.model_validate(target.settings)
    except ValidationError as exc:
        raise LaunchError(
            f"target {target.name!r} has settings a local target cannot use: {exc}",
            retryable=False,
        ) from None


def _run_config(run: FlowRun) -> LocalRun | UniversalRun | None:
    config = run_config_of(run)
    if config is None:
        return None
    if not isinstance(config, LocalRun | UniversalRun):
        raise LaunchError(
            f"{with_article(config.type)} cannot run on a local target", retryable=False
        )
    return config


def _default_log_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "flowrelay-local-runs")


def _launched(infrastructure: Mapping[str, Any]) -> LocalLaunched:
    try:
        return LocalLaunched.model_validate(infrastructure)
    except ValidationError as exc:
        raise LaunchError(
            f"the run's infrastructure is not a local process: {exc}", retryable=False
        ) from None


def _read_record(path: Path) -> LocalLaunched | None:
    try:
        return LocalLaunched.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return None


def _start_time(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return 0.0


def _is_running(launched: LocalLaunched) -> bool:
    """Whether the process ``launched`` names still runs (the same process: same start time)."""
    import psutil

    try:
        process = psutil.Process(launched.pid)
        if abs(process.create_time() - launched.started_at) > 0.01:
            return False
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
