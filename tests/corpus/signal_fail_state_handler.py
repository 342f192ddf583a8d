"""A ``FAIL`` signal carrying data, read by a task state handler.

Source: Prefect 1.x docs, core/concepts/notifications.md ("Responding to State": the
``alert_on_special_failure`` handler and ``mission_critical_task``, as written there). Stated
outcome: ``mission_critical_task(1, 1)`` raises ``FAIL("a equaled b!")`` with ``flag`` and
``value`` set; the handler sees the Failed state whose result is that signal and prints
"Special failure mode!  Send all the alerts!" and "a == b == 1"; the flow fails.
"""

from unittest.mock import ANY

from flowrelay import Flow, task
from flowrelay.engine import signals


def alert_on_special_failure(task, old_state, new_state):
    if new_state.is_failed():
        if getattr(new_state.result, "flag", False) is True:
            print("Special failure mode!  Send all the alerts!")
            print("a == b == {}".format(new_state.result.value))

    return new_state


@task(state_handlers=[alert_on_special_failure])
def mission_critical_task(a, b):
    if a == b:
        fail_signal = signals.FAIL("a equaled b!")
        fail_signal.flag = True  # type: ignore[attr-defined]
        fail_signal.value = a  # type: ignore[attr-defined]
        raise fail_signal
    else:
        return 1 / (b - a)


with Flow(name="corpus-state-inspection-handler") as flow:
    result = mission_critical_task(1, 1)

EXPECTED = {
    "state": "Failed",
    "tasks": {result: ("Failed", ANY)},
    "messages": {result: "a equaled b!"},
    "output": ["Special failure mode!  Send all the alerts!", "a == b == 1"],
}
