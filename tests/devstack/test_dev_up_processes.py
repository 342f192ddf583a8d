"""``flowrelay dev up`` as a real process: what it leaves behind when it is killed, what the next
one does about it, and what reaches its console.

Each stack works in a temporary directory of the test's own (``TMPDIR``), so the stacks of other
tests and other users are never looked at.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested
from flowrelay.core.storage import Module
from flowrelay.devstack.processes import MARKER, end_leftovers, running
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.support.aws import report_figures

ROOT = Path(__file__).resolve().parents[2]
FLOWRELAY = Path(sys.executable).parent / "flowrelay"


class DevUp:
    """One ``flowrelay dev up`` process, its stderr lines and the environment it exports."""

    def __init__(self, tmp: Path) -> None:
        env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [str(FLOWRELAY), "dev", "up"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.env: dict[str, str] = {}
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stderr, self.lines.append)),
            threading.Thread(target=self._read, args=(self.process.stdout, self._export)),
        ]
        for reader in self._readers:
            reader.start()
        self.wait_for("dev stack running", timeout=60)
        self.folder = Path(self.line("stack folder: ").split("stack folder: ", 1)[1])

    @staticmethod
    def _read(stream: Any, keep: Any) -> None:
        for line in stream:
            keep(line.rstrip("\n"))

    def _export(self, line: str) -> None:
        if line.startswith("export "):
            self.env = dict(item.split("=", 1) for item in shlex.split(line[len("export ") :]))

    def line(self, text: str) -> str:
        return next(line for line in self.lines if text in line)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "\n".join(self.lines)
            assert time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.1)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        self.process.wait(timeout=30)
        for reader in self._readers:
            reader.join(timeout=10)


@pytest.mark.slow  # two dev stacks and a grace period: about 11 s
def test_a_dev_stack_killed_with_sigkill_leaves_no_process(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two runs: on the ECS target, a flow that hangs after starting a multiprocessing helper
    that ignores SIGTERM and a subprocess; on the local target, a flow that sleeps. The stack
    gets SIGKILL. Every process it started ends within the grace period (5 s) and a few
    seconds; the next ``dev up`` removes the dead stack's folder and says so."""
    stack = DevUp(tmp_path)
    try:
        store = Store(stack.client("dynamodb"), stack.env["FLOWRELAY_TABLE_NAME"])
        for path in ("tests.support.flows:hanging", "tests.support.flows:local_sleepy"):
            storage = Module(path)
            store.flows.register(registration_for(load_flow(storage), storage=storage))
        publisher = Publisher(stack.client("events"), stack.env["FLOWRELAY_BUS_NAME"])
        local_run = str(uuid.uuid4())
        publisher.publish(
            FlowRunRequested(flow="hanging", flow_run_id=str(uuid.uuid4()), requested_by="t"),
            FlowRunRequested(flow="local-sleepy", flow_run_id=local_run, requested_by="t"),
        )
        _wait_running(store, local_run, timeout=60)
        descendants = _wait_for_helpers(psutil.Process(stack.process.pid), timeout=60)
    except BaseException:
        stack.stop()
        raise

    runners = [
        p
        for p in descendants
        if "flowrelay-runner" in str(_cmdline(p)) and "guard" not in str(_cmdline(p))
    ]
    assert len(runners) == 2, [_cmdline(p) for p in descendants]  # the ECS task's, the local run's
    killed_at = time.monotonic()
    stack.stop(signal.SIGKILL)

    deadline = time.monotonic() + 15
    while (left := [p for p in descendants if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    ended_in = time.monotonic() - killed_at
    assert left == [], [p.cmdline() for p in left]
    assert stack.folder.exists()  # nobody was left to remove it

    after = DevUp(tmp_path)
    after.stop()

    assert not stack.folder.exists()
    report_figures(
        request.config,
        "fault injection: the dev stack killed with SIGKILL",
        [
            f"{len(descendants)} processes of its runs (an ECS task's runner and the helpers its "
            f"flow started, a local target's runner, their guards): all ended {ended_in:.1f} s "
            f"after the SIGKILL, 0 left",
            "the next dev up found the dead stack's folder and removed it",
        ],
    )
    (ended,) = [line for line in after.lines if "a dev stack that died" in line]
    assert f"(pid {stack.process.pid})" in ended
    assert f"removed its folder {stack.folder}" in ended
    assert not after.folder.exists()  # a stack stopped cleanly removes its own


def _wait_running(store: Store, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (run := store.runs.get(run_id)) is None or str(run.state) != "Running":
        assert time.monotonic() < deadline, f"run {run_id} not running: {run}"
        time.sleep(0.2)


def _wait_for_helpers(stack: psutil.Process, timeout: float) -> list[psutil.Process]:
    """The stack's descendants, once the hanging flow has started both of its helpers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        descendants = stack.children(recursive=True)
        commands = [" ".join(_cmdline(process)) for process in descendants]
        if any("spawn_main" in c for c in commands) and any("sleep(600)" in c for c in commands):
            # the runner, the spawned helper, multiprocessing's resource tracker, the sleeper
            assert len(descendants) >= 4, commands
            return descendants
        time.sleep(0.2)
    raise AssertionError(f"the flow's helpers did not start: {stack.children(recursive=True)}")


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def test_moto_errors_go_to_the_server_log_not_the_dev_up_console(tmp_path: Path) -> None:
    """A request moto fails on (PutItem without a table): werkzeug's traceback is in the stack
    folder's server.log, not on the console of ``dev up``."""
    stack = DevUp(tmp_path)
    try:
        request = urllib.request.Request(
            stack.env["AWS_ENDPOINT_URL"] + "/",
            data=b"{}",
            method="POST",
            headers={
                "X-Amz-Target": "DynamoDB_20120810.PutItem",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/"
                "dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=10)
        assert failed.value.code == 500
        server_log = stack.folder / "server.log"
        deadline = time.monotonic() + 5  # werkzeug logs the error after it has answered
        while "Error on request" not in (logged := _text(server_log)) + "\n".join(stack.lines):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stack.stop()
    assert not [line for line in stack.lines if "Error on request" in line or "Traceback" in line]
    assert "Error on request" in logged


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def test_the_next_stack_ends_only_marked_processes_of_a_dead_stack(tmp_path: Path) -> None:
    """The dead stack's recorded pid now belongs to another process (started later than the
    record says): the stack is dead all the same, and that process, not marked as the stack's,
    lives on; the marked one is ended. A live stack's folder is left alone."""
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    stranger = subprocess.Popen(sleeper, start_new_session=True)
    dead = tmp_path / "flowrelay-dev-dead"
    dead.mkdir()
    (dead / "stack.json").write_text(json.dumps({"pid": stranger.pid, "started": 1.0}))
    ours = subprocess.Popen(sleeper, env={**os.environ, MARKER: str(dead)}, start_new_session=True)
    live = tmp_path / "flowrelay-dev-live"
    live.mkdir()
    me = psutil.Process()
    (live / "stack.json").write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    try:
        _wait_for_marker(ours.pid, str(dead))
        lines: list[str] = []

        removed = end_leftovers(lines.append, root=tmp_path)

        assert removed == [dead]
        assert ours.wait(timeout=5) == -signal.SIGKILL
        assert stranger.poll() is None
        assert not dead.exists()
        assert live.exists()
        assert lines == [
            f"a dev stack that died (pid {stranger.pid}) left 1 process(es): ended {ours.pid}; "
            f"removed its folder {dead}"
        ]
    finally:
        for process in (ours, stranger):
            process.kill()
            process.wait()


def _wait_for_marker(pid: int, folder: str) -> None:
    """Until the process has exec'd Python (its environment is the one it was given)."""
    deadline = time.monotonic() + 10
    while psutil.Process(pid).environ().get(MARKER) != folder:
        assert time.monotonic() < deadline
        time.sleep(0.02)
