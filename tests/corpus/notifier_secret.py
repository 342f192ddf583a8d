"""A notifier state handler that reads a Secret when its task finishes.

Source: Prefect 1.x docs, core/concepts/notifications.md ("Sending a simple notification": the
``post_to_slack`` handler, which reads ``Secret("SLACK_WEBHOOK_URL_SECRET_NAME").get()`` and
posts "Task {0} finished in state {1}"). Tests here have no network, so the "webhook" is a file
path the secret names and the post appends the message to it; the Secret is given locally as
the documentation says (``PREFECT__CONTEXT__SECRETS__<NAME>``, here ``FLOWRELAY__CONTEXT__
SECRETS__<NAME>``). Stated outcome: the handler posts only when the task is finished
("this includes Success states as well as Failed states"), once; the run succeeds.
"""

from flowrelay import Flow, Task
from flowrelay.client.secrets import Secret


def post_to_slack(task, old_state, new_state):
    if new_state.is_finished():
        msg = "Task {0} finished in state {1}".format(task, new_state)
        # replace with your Slack webhook URL secret name
        secret_slack = Secret("SLACK_WEBHOOK_URL_SECRET_NAME").get()

        with open(secret_slack, "a") as webhook:
            webhook.write(msg + "\n")

    return new_state


t = Task(state_handlers=[post_to_slack])
flow = Flow(name="corpus-state-handler-notifier", tasks=[t])

EXPECTED = {
    "state": "Success",
    "tasks": {t: ("Success", None)},
    "env": {"FLOWRELAY__CONTEXT__SECRETS__SLACK_WEBHOOK_URL_SECRET_NAME": "{tmp}/webhook.txt"},
    "written": {"webhook.txt": lambda text: text.count("finished in state") == 1},
}
