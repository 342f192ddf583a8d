"""``ENDRUN(state=Skipped(...))``: a task ends its run in a state it chooses.

Source: Prefect 1.x API reference, ``prefect.engine.signals.ENDRUN`` ("used to indicate that all
state processing should stop. The pipeline result should be the state contained in the
exception"), in the form flows commonly use it: ``raise ENDRUN(state=Skipped(skip_text))`` when
there is nothing new. Stated outcome: the task is Skipped with that message, the tasks after
it are skipped too (skips propagate), and the flow succeeds.
"""

from flowrelay import Flow, task
from flowrelay.engine.signals import ENDRUN
from flowrelay.engine.state import Skipped


@task
def get_new_rows():
    rows: list[str] = []  # what the API returned: nothing new
    if len(rows) == 0:
        skip_text = "No new data available on API"
        raise ENDRUN(state=Skipped(skip_text))
    return rows


@task
def save(rows):
    return len(rows)


with Flow("corpus-signal-endrun") as flow:
    rows = get_new_rows()
    saved = save(rows)

EXPECTED = {
    "state": "Success",
    "tasks": {rows: ("Skipped", None), saved: ("Skipped", None)},
    "messages": {rows: "No new data available on API"},
}
