"""Task-run and flow-run states as seen by flow authors (the seeds' engine's
``prefect.engine.state``).

A state says how a task (or a whole flow) ended, carries its ``result`` and a ``message`` that a
person can act on. The flow-run state's ``result`` maps each task to its own state::

    state = flow.run()
    if state.is_failed():
        print(state.message)             # "Task 'divide' failed: ZeroDivisionError: ..."
    print(state.result[total].result)    # the value the task `total` returned

The hierarchy is the seeds' engine's: ``Skipped``, ``Cached`` and ``Mapped`` are kinds of
``Success`` (a skipped reference task does not fail its flow run); ``TriggerFailed`` and
``TimedOut`` are kinds of ``Failed``. State handlers see ``Pending``, ``Running``, ``Retrying`` and
``Looped`` on the way.

These are in-process objects. The durable lifecycle of a flow run in the control plane
(Submitted, Running, Crashed, ...) is wider than how its tasks ended and is modelled separately.
"""

from __future__ import annotations

from typing import Any

#: ``State.location`` of a task whose result would have been checkpointed but was None: the
#: seeds' engine writes nothing for None, and a restart needs to know the value all the same.
NO_VALUE_WRITTEN = ""


class State:
    """Base class of every state. Cheap to create and picklable (it crosses process boundaries).

    ``location`` says where the result was checkpointed (``NO_VALUE_WRITTEN`` when it was None,
    None when it was not checkpointed); ``context`` holds extras such as ``task_loop_count``.
    """

    __slots__ = ("attempts", "context", "location", "map_states", "message", "result", "traceback")

    def __init__(
        self,
        message: str | None = None,
        result: Any = None,
        *,
        attempts: int = 1,
        traceback: str | None = None,
        map_states: list[State] | None = None,
        location: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.result = result
        self.attempts = attempts
        self.traceback = traceback
        self.map_states = map_states
        self.location = location
        self.context = context

    @property
    def name(self) -> str:
        """The state's name as shown to users, e.g. ``"TriggerFailed"``."""
        return type(self).__name__

    def is_pending(self) -> bool:
        return isinstance(self, Pending)

    def is_running(self) -> bool:
        return isinstance(self, Running)

    def is_finished(self) -> bool:
        return isinstance(self, Finished)

    def is_successful(self) -> bool:
        return isinstance(self, Success)

    def is_failed(self) -> bool:
        return isinstance(self, Failed)

    def is_skipped(self) -> bool:
        return isinstance(self, Skipped)

    def is_cached(self) -> bool:
        return isinstance(self, Cached)

    def is_retrying(self) -> bool:
        return isinstance(self, Retrying)

    def is_looped(self) -> bool:
        return isinstance(self, Looped)

    def is_mapped(self) -> bool:
        return self.map_states is not None

    def __repr__(self) -> str:
        return f"<{self.name}: {self.message!r}>" if self.message else f"<{self.name}>"

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in State.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot in State.__slots__:
            setattr(self, slot, state.get(slot))
        self.attempts = state.get("attempts") or 1  # pickled before the slot was kept


class Pending(State):
    """Not started yet (what a state handler sees as the old state of a first run)."""

    __slots__ = ()


class Scheduled(Pending):
    """Waiting to start (what a flow's state handlers see as the old state of its run)."""

    __slots__ = ()


class Running(State):
    """Running now."""

    __slots__ = ()


class Retrying(Pending):
    """Failed, and will run again after its retry delay."""

    __slots__ = ()


class Finished(State):
    """Done, one way or another."""

    __slots__ = ()


class Looped(Finished):
    """Finished one iteration of a loop (``raise LOOP(result=...)``) and runs again."""

    __slots__ = ()


class Success(Finished):
    """Finished and returned ``result``."""

    __slots__ = ()


class Mapped(Success):
    """A mapped task whose children all succeeded; ``result`` is the list of their results."""

    __slots__ = ()


class Skipped(Success):
    """Did not run, on purpose (``raise SKIP``, a ``case`` not taken, an upstream skipped).
    A kind of success, as in the seeds' engine: a skipped reference task does not fail a run."""

    __slots__ = ()


class Cached(Success):
    """Not run again: its result came from a cache (``cache_for``) or an existing ``target``.
    What cache validators compare is in ``context``: ``cached_inputs``,
    ``cached_parameters``, ``cached_result_expiration``."""

    __slots__ = ()

    @property
    def cached_inputs(self) -> dict[str, Any] | None:
        return (self.context or {}).get("cached_inputs")

    @property
    def cached_parameters(self) -> dict[str, Any] | None:
        return (self.context or {}).get("cached_parameters")

    @property
    def cached_result_expiration(self) -> Any:
        return (self.context or {}).get("cached_result_expiration")


class Failed(Finished):
    """Finished with an error; ``result`` holds the exception when there was one."""

    __slots__ = ()


class TriggerFailed(Failed):
    """Did not run because its trigger said no (by default: an upstream task did not succeed)."""

    __slots__ = ()


class TimedOut(Failed):
    """Ran longer than the task's ``timeout`` on its last attempt."""

    __slots__ = ()


class ValidationFailed(Failed):
    """A result failed validation."""

    __slots__ = ()
