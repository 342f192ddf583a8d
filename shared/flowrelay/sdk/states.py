"""Task-run and flow-run states as seen by flow authors.

A state says how a task (or a whole flow) ended, carries its ``result`` and a ``message`` that a
person can act on. The flow-run state's ``result`` maps each task to its own state::

    state = flow.run()
    if state.is_failed():
        print(state.message)             # "Task 'divide' failed: ZeroDivisionError: ..."
    print(state.result[total].result)    # the value the task `total` returned

These are in-process objects. The durable lifecycle of a flow run in the control plane
(Submitted, Running, Crashed, ...) is wider than how its tasks ended and is modelled separately.
"""

from __future__ import annotations

from typing import Any


class State:
    """Base class of every state. Cheap to create and picklable (it crosses process boundaries)."""

    __slots__ = ("attempts", "map_states", "message", "result", "traceback")

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        attempts: int = 1,
        traceback: str | None = None,
        map_states: list[State] | None = None,
    ) -> None:
        self.message = message
        self.result = result
        self.attempts = attempts
        self.traceback = traceback
        self.map_states = map_states

    @property
    def name(self) -> str:
        """The state's name as shown to users, e.g. ``"TriggerFailed"``."""
        return type(self).__name__

    def is_successful(self) -> bool:
        return isinstance(self, Success)

    def is_failed(self) -> bool:
        return isinstance(self, Failed)

    def is_mapped(self) -> bool:
        return self.map_states is not None

    def __repr__(self) -> str:
        return f"<{self.name}: {self.message!r}>" if self.message else f"<{self.name}>"

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in State.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot, value in state.items():
            setattr(self, slot, value)


class Success(State):
    """Finished and returned ``result``."""

    __slots__ = ()


class Mapped(Success):
    """A mapped task whose children all succeeded; ``result`` is the list of their results."""

    __slots__ = ()


class Failed(State):
    """Finished with an error; ``result`` holds the exception when there was one."""

    __slots__ = ()


class TriggerFailed(Failed):
    """Did not run because an upstream task did not succeed."""

    __slots__ = ()


class TimedOut(Failed):
    """Ran longer than the task's ``timeout`` on its last attempt."""

    __slots__ = ()
