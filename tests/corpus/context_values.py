"""Values the engine puts in context during a run: ``today``, ``flow_run_id``, ``map_index``.

Source: Prefect 1.x docs, core/concepts/execution.md ("Prefect-supplied context": the
``report_start_day`` task logs ``prefect.context.today``) and the context API reference
(utilities/context: ``today`` is the run's date as ``YYYY-MM-DD``, ``flow_run_id`` the run's id,
``map_index`` the index of a mapped child). Stated outcome: the task logs the day the run
started; a mapped child sees its own index.
"""

import datetime

import flowrelay
from flowrelay import Flow, task


@task
def report_start_day():
    logger = flowrelay.context.get("logger")
    logger.info(flowrelay.context.today)
    return flowrelay.context.today


@task
def report_run_id():
    return flowrelay.context.get("flow_run_id")


@task
def report_map_index(x):
    return flowrelay.context.get("map_index")


with Flow("corpus-context-values") as flow:
    day = report_start_day()
    run_id = report_run_id()
    indexes = report_map_index.map([10, 20, 30])


def _is_today(value):
    # The run's date in UTC, as the seeds' engine formats it; a run across midnight may see
    # either side.
    now = datetime.datetime.now(datetime.UTC).date()
    return value in {str(now), str(now - datetime.timedelta(days=1))}


EXPECTED = {
    "state": "Success",
    "tasks": {
        day: ("Success", _is_today),
        run_id: ("Success", lambda v: isinstance(v, str) and v != ""),
        indexes: ("Mapped", [0, 1, 2]),
    },
}
