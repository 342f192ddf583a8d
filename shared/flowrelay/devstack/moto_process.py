"""moto's server in a process of its own, for the dev stack.

On AWS the services are not in the functions' process; in the dev stack the functions, their
event sources and the ECS executor are. moto answering in that same process would share one
interpreter lock with them: every request moto serves (a few milliseconds of Python each) would
wait for the functions' Python and hold it from them, and a burst of runs would be served on one
core of the machine. In a process of its own, moto works on one core while the functions work on
another, as the services and Lambda work side by side on AWS.

The stack starts ``python -m flowrelay.devstack.moto_process <port>`` (``MotoProcess``), with
the pipe of its standard input held only by the stack: the server runs until the stack closes it
(``MotoProcess.stop``) or dies, however it dies (the kernel closes the pipe then). The server
answers as the tests' and the benchmarks' servers do: with flowrelay's moto fixes
(``moto_fixes``), and keeping connections alive (HTTP/1.1: a connection, and the server thread
serving it, per client, not one per request). It says the port it listens on in one line, then
its standard output goes where its errors go: ``server.log`` in the stack's folder (werkzeug's
traceback of each request moto fails on, what moto prints about the resource types its
CloudFormation skips). Ctrl-C is meant for the stack, which then stops the server: the server
ignores SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

#: How long moto may take to start and listen.
SERVER_START_SECONDS = 30.0
#: How long the server may take to end once its pipe is closed, before it is killed.
STOP_SECONDS = 5.0


class MotoProcessError(RuntimeError):
    """The server did not start listening; the message says why (with its log's last lines)."""


class MotoProcess:
    """moto's server in a child process (see the module docstring); its log to ``log_path``."""

    def __init__(self, *, port: int, log_path: Path, env: Mapping[str, str]) -> None:
        self.port = port
        self.log_path = log_path
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self, timeout: float = SERVER_START_SECONDS) -> str:
        """Start the server and wait until it listens; its endpoint, ``http://127.0.0.1:<port>``.
        ``MotoProcessError`` when it does not listen within ``timeout`` seconds."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowrelay.devstack.moto_process", str(self.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
            )
        assert self.process.stdout is not None
        said: list[bytes] = []
        reader = threading.Thread(
            target=lambda: said.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout)
        line = said[0].strip() if said else b""
        if not line.isdigit():
            self.stop()
            waited = "" if said else f" within {timeout:g} s"
            raise MotoProcessError(
                f"moto did not start listening on 127.0.0.1:{self.port}{waited}: "
                f"{self._log_tail() or 'no output'}"
            )
        self.process.stdout.close()
        self.endpoint = f"http://127.0.0.1:{int(line)}"
        return self.endpoint

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self) -> None:
        """Close the server's pipe and wait for it to end (killed after ``STOP_SECONDS``). Safe
        to call again."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def _log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])
        return ""


def serve(port: int) -> None:
    """Run moto's server on 127.0.0.1:``port`` (0: a free one) until standard input closes."""
    import logging
    import warnings

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    from flowrelay.devstack import moto_fixes

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The port goes to the stack on standard output; everything printed after it, to the log.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    # One access-log line per AWS call would drown the errors; and moto logs and warns about
    # each resource its CloudFormation skips (QueuePolicy, Alarm), which the dev stack does not
    # need.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    moto_fixes.apply()
    MotoRequestHandler.protocol_version = "HTTP/1.1"  # keep-alive
    MotoRequestHandler.disable_nagle_algorithm = True
    # What moto's ThreadedMotoServer does, but failing at once when the port is taken (its
    # start() waits for ever then), and accepting without waiting (``_Server``).
    server = _server()(
        "127.0.0.1", port, DomainDispatcherApplication(create_backend_app), MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    channel.write(f"{server.server_address[1]}\n")
    channel.close()
    sys.stdin.buffer.read()  # until the stack closes the pipe, or dies
    # What moto holds is the stack's and goes with it: nothing to save, no thread to wait for.
    sys.stderr.flush()
    os._exit(0)


def _server() -> type:
    """werkzeug's threaded WSGI server (moto's), each connection served on a thread it does not
    wait for.

    ``threading.Thread.start`` returns once the new thread has run, which takes the interpreter
    lock: while moto's threads keep it busy, each start waits for its turn, and the one thread
    that accepts connections accepts nothing meanwhile. Under a burst the functions' clients
    open many connections (a boto3 client keeps 10 and opens and closes more), and requests
    queued at the door (hundreds of milliseconds each) while moto itself had time to spare.
    """
    import _thread
    from typing import Any

    from werkzeug.serving import ThreadedWSGIServer

    class _Server(ThreadedWSGIServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            _thread.start_new_thread(self.process_request_thread, (request, client_address))

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            # What socketserver's thread does, never raising (no thread of threading's to
            # report it).
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                with contextlib.suppress(OSError):
                    self.shutdown_request(request)

    return _Server


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    serve(int(args[0]) if args else 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
