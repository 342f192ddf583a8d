"""Serving the UI with uvicorn: on a socket bound here first (so the address, a free port
included, is known and printed before the first request, and a port in use is a clear error),
in the foreground (``flowrelay ui``) or on a thread (``flowrelay demo --keep``, the tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette

from flowrelay.core.network import is_loopback_host
from flowrelay.operations import RefusedError

#: The port ``flowrelay ui`` serves on unless told otherwise.
DEFAULT_PORT = 8765
#: What a user is told when the UI listens beyond this machine.
NO_AUTHENTICATION = (
    "WARNING: the flowrelay UI has no authentication. Served on {host}, anyone who can reach "
    "this machine's port {port} can see every run, its parameters and logs, and cancel or "
    "retry runs, with your AWS credentials. Serve it on 127.0.0.1 (the default) and reach it "
    "through an SSH tunnel instead."
)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: any free port); ``RefusedError`` that says
    what to do when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
            raise RefusedError(
                f"port {port} on {host} is in use: give another with --port (0: any free port)"
            ) from None
        raise RefusedError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def address_of(sock: socket.socket) -> str:
    """The URL a socket from ``bind`` is reached at."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def listens_beyond_loopback(host: str) -> bool:
    """Whether serving on ``host`` can be reached from other machines."""
    return not is_loopback_host(host.strip("[]"))


def _server(app: Starlette) -> uvicorn.Server:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` until interrupted (Ctrl-C)."""
    _server(app).run(sockets=[sock])


@dataclass
class Running:
    """A UI served on a thread: its ``url``; ``stop()`` ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextlib.contextmanager
def served(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Iterator[Running]:
    """``app`` served on a thread for the block; yields where (waits until it answers)."""
    running = start(app, host, port)
    try:
        yield running
    finally:
        running.stop()


def start(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> Running:
    """``app`` served on a daemon thread; returns once it accepts requests."""
    sock = bind(host, port)
    server = _server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="flowrelay-ui", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    return Running(address_of(sock), server, thread)
