"""A flow to restart (its script, written to a folder for Local storage) and what its runs
leave there: the runner's restart tests and the dev stack's end to end use the same one."""

from __future__ import annotations

from pathlib import Path

#: extract -> transform -> load, with results in a folder beside the script; transform fails
#: until a "fixed" file exists. Every task counts its runs in a file; ``seen`` (never
#: checkpointed) records what the run's context says.
RESTARTABLE_TEMPLATE = """
import json
from pathlib import Path

from flowrelay import Flow, context, task
from flowrelay.engine.results import LocalResult

HERE = Path(__file__).parent


def count(name):
    path = HERE / f"{name}.count"
    path.write_text(str(int(path.read_text()) + 1 if path.exists() else 1))


@task
def extract():
    count("extract")
    return [1, 2, 3]


@task
def transform(rows):
    count("transform")
    if not (HERE / "fixed").exists():
        raise ValueError("not fixed yet")
    return sum(rows)


@task
def load(total):
    count("load")
    (HERE / "loaded.txt").write_text(str(total))


@task(checkpoint=False)
def seen():
    (HERE / f"context-{context.flow_run_id}.json").write_text(json.dumps({
        "flow_run_id": context.flow_run_id,
        "scheduled_start_time": context.scheduled_start_time.isoformat(),
        "checkpointing": context.checkpointing,
    }))


with Flow("__FLOW_NAME__", result=LocalResult(dir=str(HERE / "results"))) as flow:
    load(transform(extract()))
    seen()
"""


def restartable_script(name: str = "restartable") -> str:
    """The restartable flow's script, its flow named ``name``."""
    return RESTARTABLE_TEMPLATE.replace("__FLOW_NAME__", name)


def counts(folder: Path) -> dict[str, int]:
    """How often each checkpointed task ran, from the counts they leave in ``folder``."""
    return {
        name: int((folder / f"{name}.count").read_text())
        if (folder / f"{name}.count").exists()
        else 0
        for name in ("extract", "transform", "load")
    }
