"""The runner contract: what every launcher gives the flow runner, and what the runner gives back.

Every launched flow run executes ``RUNNER_COMMAND`` (the ``flowrelay-runner`` console script, or
``python -m flowrelay.runner``) with ``runner_environment(...)`` in its environment; the
runner's exit code says how the run ended. Launchers, the runner and the dev stack read these
names from here only (docs/runner.md describes the contract in full).

>>> runner_environment("r-1", table_name="t", bus_name="b", attempt=2)["FLOWRELAY_ATTEMPT"]
'2'
"""

from __future__ import annotations

#: The container or process command of every launched run.
RUNNER_COMMAND = ("flowrelay-runner",)

# Required: which run, and where the table and the bus are.
ENV_RUN_ID = "FLOWRELAY_RUN_ID"
ENV_TABLE_NAME = "FLOWRELAY_TABLE_NAME"
ENV_BUS_NAME = "FLOWRELAY_BUS_NAME"
# Optional.
ENV_ATTEMPT = "FLOWRELAY_ATTEMPT"
ENV_HEARTBEAT_SECONDS = "FLOWRELAY_HEARTBEAT_SECONDS"
ENV_LOG_LEVEL = "FLOWRELAY_LOG_LEVEL"
#: Variables flowrelay sets for every run, which a run config's ``env`` may not set: they tie the
#: runner to its run. (The optional ones, such as the log level, a run config may set.)
RUNNER_OWNED = frozenset({ENV_RUN_ID, ENV_TABLE_NAME, ENV_BUS_NAME, ENV_ATTEMPT})
#: The prefix of every variable of the runner contract.
RESERVED_PREFIX = "FLOWRELAY_"

DEFAULT_HEARTBEAT_SECONDS = 30.0

# Exit codes of the runner process (what the ECS task or Kubernetes pod ends with).
EXIT_SUCCESS = 0
EXIT_FLOW_FAILED = 1
EXIT_NOT_RUN = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def runner_environment(
    run_id: str, *, table_name: str, bus_name: str, attempt: int
) -> dict[str, str]:
    """The variables a launcher sets for the runner of attempt ``attempt`` of run ``run_id``."""
    return {
        ENV_RUN_ID: run_id,
        ENV_TABLE_NAME: table_name,
        ENV_BUS_NAME: bus_name,
        ENV_ATTEMPT: str(attempt),
    }
