"""``manual_only``: a task that waits for someone to approve it.

Source: Prefect 1.x docs, core/idioms/pause-for-approval.md (the ``code_deploy`` flow, without
its Cloud registration lines) and core/concepts/execution.md ("The manual_only trigger always
puts the task in a Paused state, so the flow will never run a manual_only task automatically").
Stated outcome there: ``deploy`` never runs by itself. flowrelay has no one to resume a paused
run, so ``deploy`` is refused: it fails, and its message names the ``manual_only`` trigger and
what to do instead (docs/flows.md); the flow fails.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.triggers import manual_only


@task
def build():
    print("build task")
    return True


@task
def test(build_result):
    print("test task")
    build_result == True


@task(trigger=manual_only)
def deploy():
    print("deploy task")
    pass


with Flow("corpus-trigger-manual-only") as flow:
    res = build()
    deployed = deploy(upstream_tasks=[test(res)])

EXPECTED = {
    "state": "Failed",
    "tasks": {res: ("Success", True), "test": ("Success", None), deployed: ("Failed", ANY)},
    "messages": {deployed: "manual_only"},
}
