"""``always_run`` (``all_finished``): a clean-up task that runs whatever happened upstream.

Source: Prefect 1.x docs, core/concepts/execution.md ("Tasks will only evaluate their triggers
if all upstream tasks are in Finished states. Therefore, the all_finished trigger is the same
as an always_run trigger") and core/concepts/flows.md ("Reference tasks": the clean-up
example; by default a flow's reference tasks are its terminal tasks). Stated outcome: the
clean-up runs after the failure; it is the terminal task, so the flow counts as a Success.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.triggers import always_run


@task
def create_cluster():
    return "cluster-1"


@task
def run_job(cluster):
    raise RuntimeError(f"job failed on {cluster}")


@task(trigger=always_run)
def delete_cluster(cluster):
    return f"deleted {cluster}"


with Flow("corpus-trigger-always-run") as flow:
    cluster = create_cluster()
    job = run_job(cluster)
    cleanup = delete_cluster(cluster, upstream_tasks=[job])

EXPECTED = {
    "state": "Success",
    "tasks": {
        cluster: ("Success", "cluster-1"),
        job: ("Failed", ANY),
        cleanup: ("Success", "deleted cluster-1"),
    },
}
