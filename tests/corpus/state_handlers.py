"""State handlers on a flow and on a task; a bare ``Task()`` in ``Flow(tasks=[...])``.

Source: Prefect 1.x docs, core/concepts/notifications.md ("State Handlers": ``my_state_handler``
attached to ``Flow(name="state-handler-demo", tasks=[Task()], state_handlers=[...])`` and then
to ``Task(state_handlers=[...])``, as written there). Stated outcome: the handler is called on
every change of state: for the flow "Scheduled() to Running" then "Running to Success", for the
task "Pending() to Running" then "Running to Success"; the runs succeed (a ``Task()`` with no
``run`` of its own does nothing and succeeds).
"""

from flowrelay import Flow, Task


def my_state_handler(obj, old_state, new_state):
    msg = "\nCalling my custom state handler on {0}:\n{1} to {2}\n"
    print(msg.format(obj, old_state, new_state))
    return new_state


my_flow = Flow(name="corpus-state-handler-demo", tasks=[Task()], state_handlers=[my_state_handler])

t = Task(state_handlers=[my_state_handler])
my_flow.add_task(t)

flow = my_flow

EXPECTED = {
    "state": "Success",
    "tasks": {t: ("Success", None)},
    "output": [
        "Calling my custom state handler on <Flow",
        "Calling my custom state handler on <Task: Task>",
    ],
}
