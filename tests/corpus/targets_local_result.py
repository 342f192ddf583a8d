"""A ``LocalResult`` with a templated ``target``: a task whose target exists is not run again.

Source: Prefect 1.x docs, core/idioms/targets.md (functional API, as written there:
``@task(result=LocalResult(), target="{task_name}-{today}")``) and core/concepts/persistence.md
("Output Caching based on a file target": "Whenever this task is run, it will first check to
see if the storage backend configured by the result has a file matching the name of the target,
and if so, will enter a Cached state with the data from the target file as the task's return
value"). Checkpointing is turned on as those docs say for local runs
(``PREFECT__FLOWS__CHECKPOINTING=true``, here ``FLOWRELAY__FLOWS__CHECKPOINTING``); results go
to the results directory under the home directory (``FLOWRELAY__HOME_DIR``). Stated outcome:
the first run writes ``get_data-<today>``; the next run the same day finds it, ``get_data`` is
Cached with the same data and ``print_data`` still prints it.
"""

import datetime

from flowrelay import Flow, task
from flowrelay.engine.results import LocalResult


@task(result=LocalResult(), target="{task_name}-{today}")
def get_data():
    return [1, 2, 3, 4, 5]


@task
def print_data(data):
    print(data)


with Flow("corpus-using-targets") as flow:
    data = get_data()
    printed = print_data(data)

_TODAY = datetime.datetime.now(datetime.UTC).date().isoformat()

EXPECTED = {
    "state": "Success",
    "env": {"FLOWRELAY__FLOWS__CHECKPOINTING": "true", "FLOWRELAY__HOME_DIR": "{tmp}/home"},
    "tasks": {data: ("Success", [1, 2, 3, 4, 5]), printed: ("Success", None)},
    "results": {f"home/results/get_data-{_TODAY}": [1, 2, 3, 4, 5]},
    "variants": [
        {
            "state": "Success",
            "tasks": {data: ("Cached", [1, 2, 3, 4, 5]), printed: ("Success", None)},
            "messages": {data: "get_data-"},
        }
    ],
}
