"""Modifying context at runtime: ``with prefect.context(key=...)`` around ``flow.run()``.

Source: Prefect 1.x docs, core/concepts/execution.md ("Modifying context at runtime", the
``try_unlock`` example, as written there). Stated outcome: ``flow.run()`` fails (context has no
``key``); ``with prefect.context(key='abc'): flow.run()`` succeeds.
"""

from unittest.mock import ANY

import flowrelay
from flowrelay import Flow, task
from flowrelay.engine import signals


@task
def try_unlock():
    if flowrelay.context.key == "abc":
        return True
    else:
        raise signals.FAIL()


with Flow("corpus-context-key") as flow:
    unlocked = try_unlock()

EXPECTED = {
    "state": "Failed",
    "tasks": {unlocked: ("Failed", ANY)},
    "variants": [
        {"context": {"key": "abc"}, "state": "Success", "tasks": {unlocked: ("Success", True)}},
    ],
}
