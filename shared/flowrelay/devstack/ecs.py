"""ECS tasks started in moto, executed as local processes.

moto records RunTask but runs nothing and emits no events. This executor watches the stack's
clusters; for each new task it runs the task's container command with the container's
environment (task definition, then RunTask's container overrides) as a local process, and puts
the "ECS Task State Change" events AWS would put on the default bus: RUNNING when it starts,
STOPPED when it ends. A task its process outlives (StopTask by the monitor or a cancel) gets
SIGTERM, then SIGKILL after a grace period, and is reported STOPPED with stopCode UserInitiated.

A task is a process group, as a container is a set of processes: its command runs under a guard
(``flowrelay.launchers.local.guard``) that leads the group, so everything the runner starts
(Dask workers, multiprocessing helpers) is in it. Signals go to the whole group; when the command
exits, what is left of the group is killed, as ECS ends a container's processes when its
essential container exits; when the dev stack process dies, however it dies, the guards end
their groups.

The task's memory (task-level ``memory``, RunTask's override first; the container's hard limit
when smaller) bounds the resident memory of its process group: sampled every
``memory_seconds``, a group over its limit is killed with SIGKILL and its task reported as Fargate
reports it: the container exited with code 137, reason ``OutOfMemoryError: Container killed due
to memory usage``.

moto ignores RunTask's ``clientToken``. AWS returns the first task for a repeated token, so a task
that repeats a (run id, attempt) pair this executor already ran is stopped in moto without being
run and without events (on AWS it would not exist). Only a flow run's own task has a run: its
``group`` is ``flowrelay:<run id>``. Other tasks (a run's Dask scheduler and workers, whose
group is ``flowrelay-dask:<run id>`` and whose tags name the run) are never a repeat of anything,
and their events match no run.

A task whose command starts a Dask scheduler or worker (dask-cloudprovider's ``dask-scheduler``
or ``dask-worker``) runs as the ``dask`` CLI of this Python, bound to the task's own loopback
address (``dask_tasks``, which the Kubernetes kubelet's Dask pods go through too).

Each task's output goes to ``<log dir>/<task id>.log`` and, when the container logs with awslogs,
to that log group and stream in moto as it is written (new whole lines about once a second, the
rest when the process ends), as awslogs ships them; with ``awslogs-create-group`` "true" the
group is created first when it does not exist, as the awslogs driver does.

Tasks start concurrently, as ECS starts the tasks of a burst of RunTasks side by side: each
new task is started on a pool of ``start_workers`` threads (reading its task definition, which
is read once per revision: revisions never change; starting its process group; putting its
RUNNING event), while the executor's loop goes on watching the tasks already running. A task's
RUNNING event is on the bus before the loop can see its process end, so its STOPPED event always
comes after. Task processes run at a lower CPU priority than the stack (``processes.start_group``):
on AWS a task has CPUs of its own, here it would take them from the functions and moto.

For fault-injection tests, ``lose_events_of(run_id)`` makes the executor drop that run's task
events, as if EventBridge never delivered them: the monitor must then find out by itself.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from flowrelay.core.contract import ENV_ATTEMPT
from flowrelay.devstack.dask_tasks import local_dask_command, task_address
from flowrelay.devstack.processes import (
    MARKER,
    Lifeline,
    child_environment,
    command_pid,
    group_rss,
    signal_group,
    start_group,
)
from flowrelay.launchers.ecs.names import CONTAINER_NAME, run_id_of_group
from flowrelay.launchers.ecs.task_definitions import memory_mib
from flowrelay.launchers.local.processes import resolve_command

__all__ = ["EcsExecutor", "child_environment", "memory_limit"]

ECS_DETAIL_TYPE = "ECS Task State Change"
EXITED_REASON = "Essential container in task exited"
#: The container's ``reason`` when Fargate kills a task over its memory (exit code 137).
OUT_OF_MEMORY_REASON = "OutOfMemoryError: Container killed due to memory usage"
#: How often a running task's new log lines are copied to CloudWatch Logs.
LOG_SHIP_SECONDS = 1.0
MIB = 1024 * 1024
#: Tasks started at once (each: a task definition read, a process group started, an event put).
START_WORKERS = 16
#: The most tasks one DescribeTasks call takes.
DESCRIBE_LIMIT = 100


@dataclass
class TaskProcess:
    """One executed task."""

    task: dict[str, Any]
    container: str
    process: subprocess.Popen[bytes]
    """The guard: the leader of the task's process group, which exits as the command does."""
    log_path: Path
    log_file: IO[bytes]
    run_id: str | None
    memory_mib: int | None = None
    log_group: str | None = None
    log_stream: str | None = None
    create_log_group: bool = False
    """awslogs-create-group: the log group is created when the first lines are shipped."""
    version: int = 1
    stop_reason: str | None = None
    """Set when someone else stopped the task in moto: the process is being terminated."""
    term_sent_at: float | None = None
    killed: bool = False
    out_of_memory: bool = False
    started: float = field(default_factory=time.monotonic)
    log_shipped: int = 0
    """Bytes of the log file already copied to CloudWatch Logs."""
    log_shipped_at: float = 0.0
    announced: bool = False
    """Its RUNNING event is out: until then its end is not reaped (STOPPED comes after)."""

    @property
    def arn(self) -> str:
        return str(self.task["taskArn"])

    @property
    def group(self) -> int:
        """The task's process group (its guard leads it)."""
        return self.process.pid

    @property
    def label(self) -> str:
        """How the stack's lines name the task: ``run <id>`` for a flow run's task, else
        ``task <task id>``."""
        return _label(self.task, self.run_id)


def memory_limit(
    definition: Mapping[str, Any],
    task: Mapping[str, Any],
    container: Mapping[str, Any],
    override: Mapping[str, Any],
) -> int | None:
    """The task's memory in MiB: task-level (RunTask's override, else the task definition), or
    the container's hard limit (override, else definition) when smaller; None without either.

    >>> memory_limit({"memory": "1 GB"}, {"overrides": {"memory": "512"}}, {"memory": 2048}, {})
    512
    """
    task_level = memory_mib((task.get("overrides") or {}).get("memory") or definition.get("memory"))
    container_level = override.get("memory") or container.get("memory")
    limits = [int(str(value)) for value in (task_level, container_level) if str(value).isdigit()]
    return min(limits) if limits else None


class EcsExecutor(threading.Thread):
    """Runs the tasks of ``clusters`` in moto as local processes (see the module docstring)."""

    def __init__(
        self,
        *,
        ecs: Any,
        events: Any,
        logs: Any,
        clusters: list[str],
        stack_env: Callable[[], dict[str, str]],
        log_dir: Path,
        stopping: threading.Event,
        say: Callable[[str], None],
        poll_seconds: float = 0.2,
        grace_seconds: float = 5.0,
        memory_seconds: float = 0.2,
        start_workers: int = START_WORKERS,
    ) -> None:
        super().__init__(name="devstack-ecs", daemon=True)
        self.ecs = ecs
        self.events = events
        self.logs = logs
        self.clusters = clusters
        self.stack_env = stack_env
        self.log_dir = log_dir
        self.stopping = stopping
        self.say = say
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.memory_seconds = memory_seconds
        self.running: dict[str, TaskProcess] = {}
        self.seen: set[str] = set()
        self.executed: dict[tuple[str, str], str] = {}  # (run id, attempt) -> task ARN
        self.started_pids: list[int] = []
        self.duplicates: list[str] = []
        self.lost_events: dict[str, list[str]] = {}  # run id -> statuses dropped
        self._lose: set[str] = set()
        self._lock = threading.Lock()
        self._definitions: dict[str, dict[str, Any]] = {}  # task definition ARN -> definition
        self._starting = 0  # tasks handed to the start pool and not started (or refused) yet
        self._starts = ThreadPoolExecutor(
            max_workers=start_workers, thread_name_prefix="devstack-ecs-start"
        )
        # Only this process holds the write end: the kernel closes it when this process ends,
        # however it ends, and every task's guard then ends its task (launchers/local/guard.py).
        self._lifeline = Lifeline()
        self._memory = threading.Thread(
            target=self._watch_memory, name="devstack-memory", daemon=True
        )

    def lose_events_of(self, run_id: str) -> None:
        """Drop the task state events of ``run_id`` from now on (fault injection)."""
        with self._lock:
            self._lose.add(run_id)

    def pid_of(self, run_id: str) -> int | None:
        """The process id of the run's container command (the runner), while it runs."""
        with self._lock:
            guards = [h.process.pid for h in self.running.values() if h.run_id == run_id]
        for guard in guards:
            pid = command_pid(guard)
            if pid is not None:
                return pid
        return None

    def group_of_task(self, task_arn: str) -> int | None:
        """The process group of any task (a flow run's or not) while it runs here."""
        with self._lock:
            handle = self.running.get(task_arn)
        return handle.group if handle is not None else None

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self._memory.start()
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception as exc:  # keep going: one bad task must not stop the stack
                if self.stopping.is_set():
                    break
                self.say(f"ecs: error: {exc!r}")
            self.stopping.wait(self.poll_seconds)
        self.shutdown()

    def step(self) -> None:
        for cluster in self.clusters:
            pages = self.ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, desiredStatus="RUNNING"
            )
            new = [arn for page in pages for arn in page["taskArns"] if arn not in self.seen]
            for start in range(0, len(new), DESCRIBE_LIMIT):
                described = self.ecs.describe_tasks(
                    cluster=cluster, tasks=new[start : start + DESCRIBE_LIMIT], include=["TAGS"]
                )
                for task in described.get("tasks", []):
                    self.seen.add(task["taskArn"])
                    with self._lock:
                        self._starting += 1
                    self._starts.submit(self._start_counted, task)
        self._check_stopped_by_others()
        self._ship_logs()
        self._reap()

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self.running) or self._starting > 0

    # --- starting ----------------------------------------------------------------------------

    def _start_counted(self, task: dict[str, Any]) -> None:
        """``_start`` on a thread of the start pool: its errors said, not lost with the
        thread, and the task no longer counted as starting afterwards."""
        try:
            if not self.stopping.is_set():
                self._start(task)
        except Exception as exc:  # one task that cannot start must not stop the others
            self.say(
                f"ecs: could not start {_label(task, run_id_of_group(task.get('group')))}: {exc!r}"
            )
        finally:
            with self._lock:
                self._starting -= 1

    def _definition(self, arn: str) -> dict[str, Any]:
        """The task definition (a revision never changes: each is read once)."""
        with self._lock:
            known = self._definitions.get(arn)
        if known is None:
            known = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            with self._lock:
                self._definitions[arn] = known
        return known

    def _start(self, task: dict[str, Any]) -> None:
        arn = task["taskArn"]
        definition = self._definition(task["taskDefinitionArn"])
        overrides = {
            item.get("name"): item
            for item in (task.get("overrides") or {}).get("containerOverrides", [])
        }
        containers = definition.get("containerDefinitions", [])
        container = next(
            (c for c in containers if c.get("name") == CONTAINER_NAME),
            next((c for c in containers if c.get("name") in overrides), containers[0]),
        )
        override = overrides.get(container["name"], {})
        env = {item["name"]: item["value"] for item in container.get("environment", [])}
        env.update({item["name"]: item["value"] for item in override.get("environment", [])})
        # A flow run's task is known by its group alone: a run's Dask cluster carries the run's
        # tags (and may carry its attempt variable), and must not be taken for a repeat.
        run_id = run_id_of_group(task.get("group"))
        if run_id is not None:
            key = (run_id, env.get(ENV_ATTEMPT, ""))
            with self._lock:  # one check-and-claim: two tasks of a key may start side by side
                first = self.executed.setdefault(key, arn)
            if first != arn:
                self.ecs.stop_task(
                    cluster=task["clusterArn"],
                    task=arn,
                    reason=f"dev stack: same run and attempt as {first} (clientToken)",
                )
                with self._lock:
                    self.duplicates.append(arn)
                self.say(f"task ignored: run {run_id} attempt {key[1]} already has a task")
                return
        env[MARKER] = str(self.log_dir)
        task_id = arn.rsplit("/", 1)[-1]
        log_path = self.log_dir / f"{task_id}.log"
        log_file = log_path.open("wb")
        try:
            command = list(override.get("command") or container.get("command") or [])
            # dask-cloudprovider's schedulers and workers need this Python's dask CLI and the
            # task's own address (dask_tasks); any other command runs as it is.
            process = start_group(
                resolve_command(local_dask_command(command, task_address(task))),
                env=child_environment(self.stack_env(), env),
                log_file=log_file,
                lifeline=self._lifeline,
                grace_seconds=self.grace_seconds,
            )
        except (OSError, ValueError) as exc:
            log_file.close()
            self.say(f"task failed to start: {_label(task, run_id)} ({exc})")
            self.ecs.stop_task(cluster=task["clusterArn"], task=arn, reason=str(exc)[:255])
            self._put(task, "STOPPED", 2, stop_code="TaskFailedToStart", reason=str(exc))
            return
        options = (container.get("logConfiguration") or {}).get("options") or {}
        group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
        handle = TaskProcess(
            task=task,
            container=container["name"],
            process=process,
            log_path=log_path,
            log_file=log_file,
            run_id=run_id,
            log_group=group,
            log_stream=f"{prefix}/{container['name']}/{task_id}" if group and prefix else None,
            create_log_group=str(options.get("awslogs-create-group", "")).lower() == "true",
            memory_mib=memory_limit(definition, task, container, override),
        )
        with self._lock:
            self.running[arn] = handle
            self.started_pids.append(process.pid)
        memory = f"{handle.memory_mib} MiB" if handle.memory_mib else "no memory limit"
        self.say(f"task started: {handle.label} group {process.pid}, {memory} (log {log_path})")
        try:
            self._put(task, "RUNNING", handle.version, containers=[_container(handle, "RUNNING")])
        finally:
            # Only now may the loop reap the task: its STOPPED event comes after RUNNING.
            handle.announced = True

    # --- stopping ----------------------------------------------------------------------------

    def _check_stopped_by_others(self) -> None:
        by_cluster: dict[str, list[TaskProcess]] = {}
        with self._lock:
            for handle in self.running.values():
                if handle.stop_reason is None:
                    by_cluster.setdefault(handle.task["clusterArn"], []).append(handle)
        for cluster, handles in by_cluster.items():
            status: dict[str, dict[str, Any]] = {}
            for start in range(0, len(handles), DESCRIBE_LIMIT):
                described = self.ecs.describe_tasks(
                    cluster=cluster, tasks=[h.arn for h in handles[start : start + DESCRIBE_LIMIT]]
                )
                status.update((task["taskArn"], task) for task in described.get("tasks", []))
            for handle in handles:
                task = status.get(handle.arn, {})
                if task.get("desiredStatus") == "STOPPED" or task.get("lastStatus") == "STOPPED":
                    handle.stop_reason = task.get("stoppedReason") or "Task stopped by user"
                    self.say(f"task stopped in ECS: {handle.label} ({handle.stop_reason})")
                    self._terminate(handle)

    def _terminate(self, handle: TaskProcess) -> None:
        if handle.process.poll() is not None or handle.term_sent_at is not None:
            return
        handle.term_sent_at = time.monotonic()
        signal_group(handle.group, signal.SIGTERM)

    def _reap(self) -> None:
        with self._lock:
            handles = list(self.running.values())
        for handle in handles:
            if not handle.announced:
                continue
            code = handle.process.poll()
            if code is None:
                waited = handle.term_sent_at and time.monotonic() - handle.term_sent_at
                if waited and waited > self.grace_seconds and not handle.killed:
                    handle.killed = True
                    signal_group(handle.group, signal.SIGKILL)
                continue
            self._finish(handle, code)

    def _finish(self, handle: TaskProcess, code: int) -> None:
        signal_group(handle.group, signal.SIGKILL)  # what the command left running
        with self._lock:
            self.running.pop(handle.arn, None)
        handle.log_file.close()
        exit_code = 128 - code if code < 0 else code  # killed by signal N: shells say 128+N
        self.say(f"task exited: {handle.label} code {exit_code}")
        self._ship_log(handle, final=True)
        if handle.stop_reason is None:
            self.ecs.stop_task(
                cluster=handle.task["clusterArn"], task=handle.arn, reason=EXITED_REASON
            )
            stop_code, reason = "EssentialContainerExited", EXITED_REASON
        else:
            stop_code, reason = "UserInitiated", handle.stop_reason
        handle.version += 1
        container = _container(handle, "STOPPED")
        container["exitCode"] = exit_code
        if handle.out_of_memory:
            container["reason"] = OUT_OF_MEMORY_REASON
        self._put(
            handle.task,
            "STOPPED",
            handle.version,
            stop_code=stop_code,
            reason=reason,
            containers=[container],
        )

    def shutdown(self) -> None:
        """Terminate every task process (SIGTERM, then SIGKILL after the grace period) and wait
        for them. No events: the stack they would go to is going away. Safe to call again."""
        # Starts under way finish first (they see the stack stopping and start nothing new), so
        # no task is started after its group was looked for here.
        self._starts.shutdown(wait=True)
        with self._lock:
            handles = list(self.running.values())
        for handle in handles:
            if handle.process.poll() is None:
                signal_group(handle.group, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for handle in handles:
            try:
                handle.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(handle.group, signal.SIGKILL)
                handle.process.wait()
            signal_group(handle.group, signal.SIGKILL)
            handle.log_file.close()
            self.say(f"task terminated: {handle.label} group {handle.group}")
        with self._lock:
            self.running.clear()
        if self._memory.is_alive():
            self._memory.join()
        self._lifeline.close()

    # --- memory ------------------------------------------------------------------------------

    def _watch_memory(self) -> None:
        while not self.stopping.wait(self.memory_seconds):
            with self._lock:
                limited = [h for h in self.running.values() if h.memory_mib and not h.killed]
            if not limited:
                continue
            groups = {handle.group for handle in limited}
            used = group_rss(groups, leave_out=groups)  # each group's leader is its guard
            for handle in limited:
                assert handle.memory_mib is not None
                if used[handle.group] > handle.memory_mib * MIB:
                    handle.out_of_memory = handle.killed = True
                    signal_group(handle.group, signal.SIGKILL)
                    self.say(
                        f"task out of memory: {handle.label} used "
                        f"{used[handle.group] // MIB} MiB of {handle.memory_mib} MiB: killed"
                    )

    # --- reporting ---------------------------------------------------------------------------

    def _put(
        self,
        task: dict[str, Any],
        status: str,
        version: int,
        *,
        stop_code: str | None = None,
        reason: str | None = None,
        containers: list[dict[str, Any]] | None = None,
    ) -> None:
        detail = task_state_change(
            task, status, version, stop_code=stop_code, reason=reason, containers=containers
        )
        run_id = run_id_of_group(task.get("group"))
        with self._lock:
            if run_id in self._lose:
                self.lost_events.setdefault(run_id, []).append(status)
                self.say(f"ecs: {status} event of run {run_id} dropped (fault injection)")
                return
        response = self.events.put_events(
            Entries=[
                {
                    "Source": "aws.ecs",
                    "DetailType": ECS_DETAIL_TYPE,
                    "Resources": [task["taskArn"]],
                    "Detail": json.dumps(detail),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            self.say(f"ecs: could not put the {status} event: {response.get('Entries')}")

    def _ship_logs(self) -> None:
        """Copy what running tasks wrote since the last copy, about once a second, as awslogs
        does (so ``runs logs --follow`` sees lines as they are written)."""
        now = time.monotonic()
        with self._lock:
            handles = list(self.running.values())
        for handle in handles:
            if now - handle.log_shipped_at >= LOG_SHIP_SECONDS:
                handle.log_shipped_at = now
                self._ship_log(handle, final=False)

    def _ship_log(self, handle: TaskProcess, *, final: bool) -> None:
        """The task's new complete lines (``final``: all that is left) to its log stream."""
        if not (handle.log_group and handle.log_stream):
            return
        try:
            with handle.log_path.open("rb") as log:
                log.seek(handle.log_shipped)
                new = log.read()
            if not final:
                new = new[: new.rfind(b"\n") + 1]  # whole lines only, until the end
            if not new:
                return
            if handle.log_shipped == 0:
                if handle.create_log_group:
                    with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                        self.logs.create_log_group(logGroupName=handle.log_group)
                with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
                    self.logs.create_log_stream(
                        logGroupName=handle.log_group, logStreamName=handle.log_stream
                    )
            now = int(time.time() * 1000)
            lines = new.decode(errors="replace").splitlines()
            events = [{"timestamp": now, "message": line or " "} for line in lines]
            for start in range(0, len(events), 1000):
                self.logs.put_log_events(
                    logGroupName=handle.log_group,
                    logStreamName=handle.log_stream,
                    logEvents=events[start : start + 1000],
                )
            handle.log_shipped += len(new)
        except Exception as exc:  # the local file still has the output
            self.say(f"ecs: could not copy the log of {handle.arn} to CloudWatch: {exc!r}")


def _container(handle: TaskProcess, status: str) -> dict[str, Any]:
    return {"name": handle.container, "lastStatus": status, "taskArn": handle.arn}


def _label(task: Mapping[str, Any], run_id: str | None) -> str:
    return f"run {run_id}" if run_id else f"task {str(task['taskArn']).rsplit('/', 1)[-1]}"


def task_state_change(
    task: dict[str, Any],
    status: str,
    version: int,
    *,
    stop_code: str | None = None,
    reason: str | None = None,
    containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The ``detail`` of the "ECS Task State Change" event ECS puts on the bus for ``task``
    (as DescribeTasks gives it) reaching ``status``; the stop code and reason only when it
    stopped."""
    detail: dict[str, Any] = {
        "taskArn": task["taskArn"],
        "clusterArn": task["clusterArn"],
        "taskDefinitionArn": task.get("taskDefinitionArn"),
        "lastStatus": status,
        "desiredStatus": "STOPPED" if status == "STOPPED" else "RUNNING",
        "group": task.get("group"),
        "startedBy": task.get("startedBy"),
        "launchType": task.get("launchType"),
        "containers": containers or [],
        "version": version,
    }
    if status == "STOPPED":
        detail["stopCode"] = stop_code
        detail["stoppedReason"] = reason
    return detail
