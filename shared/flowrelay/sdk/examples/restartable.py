"""A flow that fails in its last task until its warehouse is ready: ``flowrelay runs retry``
then reuses what ``extract`` checkpointed (its result is not computed again) and runs ``load``.

``workdir`` holds the "warehouse is ready" marker and a count of how often ``extract`` ran."""

import os
import tempfile
from pathlib import Path

from flowrelay import Flow, Parameter, context, task
from flowrelay.engine.results import LocalResult
from flowrelay.run_configs import UniversalRun


@task
def extract(workdir: str) -> list[int]:
    runs_file = Path(workdir, "extract-runs")
    runs = int(runs_file.read_text()) + 1 if runs_file.exists() else 1
    runs_file.write_text(str(runs))
    context.get("logger").info("extracted 3 rows (extract has run %d time(s))", runs)
    return [1, 2, 3]


@task
def load(rows: list[int], workdir: str) -> str:
    if not Path(workdir, "warehouse-ready").exists():
        raise RuntimeError(f"the warehouse is not ready: no {workdir}/warehouse-ready yet")
    return f"loaded {len(rows)} rows"


# Every task's result is checkpointed here (runs on the stack checkpoint by default).
RESULTS = LocalResult(
    dir=os.path.join(tempfile.gettempdir(), "flowrelay-example-results"),
    location="{flow_name}/{flow_run_id}/{task_slug}.pkl",
)

with Flow("restartable", run_config=UniversalRun(), result=RESULTS) as flow:
    workdir = Parameter("workdir")
    load(extract(workdir), workdir)
