"""How a run's log lines look, wherever its code runs: the runner's process and the Dask worker
processes it starts. One line per record, stamped with the run id (a container's log stream
is searched by it); the flow's own lines and its task states stand out, libraries' INFO
chatter is heard only when the run logs at DEBUG.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from collections.abc import MutableMapping
from typing import TextIO

from flowrelay.core.contract import ENV_LOG_LEVEL, ENV_RUN_ID

#: Libraries that log their workings at INFO (botocore's "Found credentials...", distributed's
#: scheduler and worker chatter).
CHATTY_LOGGERS = (
    "aiobotocore",
    "asyncio",
    "bokeh",
    "boto3",
    "botocore",
    "dask",
    "distributed",
    "kubernetes",
    "s3transfer",
    "tornado",
    "urllib3",
)


class _RunIdFilter(logging.Filter):
    """Stamps every record with the run id, including records from dask and botocore loggers."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def configure_run_logging(
    run_id: str,
    level: str = "INFO",
    stream: TextIO | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> None:
    """Send every record at ``level`` and above to ``stream`` (stderr: what ECS and Kubernetes
    collect) as one line with the run id; libraries' INFO chatter kept out unless ``level`` is
    DEBUG. Dask worker processes started later read their logging from dask's config in the
    environment (``environ``), so it is set there too."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RunIdFilter(run_id))
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [run %(run_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if root.getEffectiveLevel() > logging.DEBUG:
        for name in CHATTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        env = os.environ if environ is None else environ
        env.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


_worker_configured = False


def ensure_worker_process_logging() -> None:
    """In a Dask worker process a run started (its run id in the environment it inherited) whose
    root logger has no handler, log as the runner does: the flow's own lines and its task
    states would otherwise be lost (Python drops INFO records without a handler). Anywhere
    else, nothing: the runner and ``run-local`` have set logging up themselves."""
    global _worker_configured
    if _worker_configured:
        return
    _worker_configured = True
    run_id = os.environ.get(ENV_RUN_ID)
    if run_id is None or multiprocessing.parent_process() is None:
        return
    if logging.getLogger().handlers:
        return
    configure_run_logging(run_id, os.environ.get(ENV_LOG_LEVEL) or "INFO")
