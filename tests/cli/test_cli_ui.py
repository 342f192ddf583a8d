"""``flowrelay ui``: the command serves the UI over the stack it is pointed at, on loopback by
default, says where, and says loudly when it is told to listen beyond this machine."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from flowrelay.control.store import Store
from flowrelay.core.routing import Target
from tests.support.cli import invoke, one_error_line

FLOWRELAY = str(Path(sys.executable).parent / "flowrelay")


@contextmanager
def ui_command(*args: str) -> Iterator[tuple[str, list[str]]]:
    """``flowrelay ui ARGS`` running; yields its address and the lines it said so far."""
    process = subprocess.Popen(
        [FLOWRELAY, "ui", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stderr is not None
    said: list[str] = []
    try:
        for line in process.stderr:
            said.append(line)
            found = re.search(r"flowrelay UI: (http://\S+)", line)
            if found:
                if listens_beyond_loopback(args):
                    said += [process.stderr.readline(), process.stderr.readline()]
                answering(found.group(1))
                # Keep reading what it says, so a full pipe never holds it up.
                threading.Thread(target=said.extend, args=(process.stderr,), daemon=True).start()
                yield found.group(1), said
                break
        else:
            pytest.fail(f"flowrelay ui said no address: {''.join(said)}")
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, "".join(said)


def answering(url: str) -> None:
    """Wait until the server answers (it says its address just before it serves)."""
    port = url.rsplit(":", 1)[1]
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/static/ui.css", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def listens_beyond_loopback(args: tuple[str, ...]) -> bool:
    return "--host" in args and args[args.index("--host") + 1] not in ("127.0.0.1", "::1")


def test_flowrelay_ui_serves_the_stack_on_loopback(names: dict[str, str], store: Store) -> None:
    store.targets.put(Target(name="box", kind="ecs"))
    with ui_command() as (url, said):
        assert url.startswith("http://127.0.0.1:")
        assert not any("WARNING" in line for line in said)
        page = httpx.get(f"{url}/targets")
        assert page.status_code == 200
        assert "box" in page.text
        assert httpx.get(f"{url}/api/flows").json()["flows"][0]["name"] == "etl"
        # Without a stack's outputs (two exported names only), the pages that need them say why.
        dead_letters = httpx.get(f"{url}/dlq")
        assert dead_letters.status_code == 200
        assert "FLOWRELAY_STACK" in dead_letters.text


def test_serving_beyond_loopback_says_it_has_no_authentication(names: dict[str, str]) -> None:
    import socket

    with ui_command("--host", "0.0.0.0", "--allow-host", "flows.example") as (url, said):
        warning = "".join(said)
        assert "WARNING: the flowrelay UI has no authentication" in warning
        assert url.startswith("http://0.0.0.0:")
        port = url.rsplit(":", 1)[1]
        # Still only the names this machine is reached by: not a rebinding page's own name.
        here = f"http://127.0.0.1:{port}/runs"
        assert httpx.get(here, headers={"host": "evil.example"}).status_code == 400
        assert httpx.get(here, headers={"host": socket.gethostname()}).status_code == 200
        assert httpx.get(here, headers={"host": "flows.example"}).status_code == 200


def test_a_port_in_use_is_one_clear_line(names: dict[str, str]) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("ui", "--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in one_error_line(result, 2)
