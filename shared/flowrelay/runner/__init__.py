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
import sys
from collections.abc import Mapping
from typing import Any

from flowrelay.core.contract import (
    DEFAULT_HEARTBEAT_SECONDS,
    ENV_ATTEMPT,
    ENV_BUS_NAME,
    ENV_HEARTBEAT_SECONDS,
    ENV_LOG_LEVEL,
    ENV_RUN_ID,
    ENV_TABLE_NAME,
    EXIT_FLOW_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUN,
    EXIT_SUCCESS,
    EXIT_TERMINATED,
)
from flowrelay.core.logs import configure_run_logging
from flowrelay.runner.config import ConfigError, RunnerConfig, config_from_env
from flowrelay.runner.execution import NotRunnable, Runner, prepare
from flowrelay.runner.reporting import Reporter


def configure_logging(config: RunnerConfig) -> None:
    """The runner's log lines (``flowrelay.core.logs``): stderr, with the run id."""
    configure_run_logging(config.run_id, config.log_level)
    # A secret the flow read never reaches the run's log, whoever logs a text quoting it.
    from flowrelay.sdk.secrets import RedactSecrets

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets())


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
    from flowrelay.control.store import Store

    # Clients from the environment: region, credentials and AWS_ENDPOINT_URL as the task or pod
    # provides them.
    session: Any = boto3.session.Session()
    store = Store(session.client("dynamodb"), config.table_name)
    reporter = Reporter(Publisher(session.client("events"), config.bus_name), config)
    return Runner(config, store, reporter, make_client=session.client).execute()


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


__all__ = [
    "DEFAULT_HEARTBEAT_SECONDS",
    "ENV_ATTEMPT",
    "ENV_BUS_NAME",
    "ENV_HEARTBEAT_SECONDS",
    "ENV_LOG_LEVEL",
    "ENV_RUN_ID",
    "ENV_TABLE_NAME",
    "EXIT_FLOW_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_RUN",
    "EXIT_SUCCESS",
    "EXIT_TERMINATED",
    "ConfigError",
    "NotRunnable",
    "Reporter",
    "Runner",
    "RunnerConfig",
    "config_from_env",
    "main",
    "prepare",
    "run",
]
