"""Signals: raise one in a task to end it in a chosen state (the seeds' engine's
``prefect.engine.signals``).

>>> from flowrelay import task
>>> @task
... def check(x):
...     if x is None:
...         raise SKIP("nothing to check")      # the task is Skipped, and so is what follows
...     if x < 0:
...         raise FAIL(f"{x} is negative")      # Failed (retried if the task has retries left)
...     raise SUCCESS(result=x * 2)             # Success with result x * 2

``LOOP(result=...)`` runs the task again with ``context.task_loop_result`` set to ``result``;
``RETRY`` runs it again after its ``retry_delay``; ``ENDRUN(state)`` ends it in ``state`` with no
retry.
"""

from __future__ import annotations

from typing import Any

from flowrelay.sdk import states


class FlowrelaySignal(Exception):
    """The base of every signal (an Exception, as in the seeds' engine: a task's bare
    ``except Exception`` catches the signals it raises inside it)."""

    def __init__(self, message: str | None = None, *args: Any) -> None:
        super().__init__(message, *args)
        self.message = message


class ENDRUN(FlowrelaySignal):
    """End the task run now in ``state``: no retry, no state handlers for the signal itself."""

    def __init__(self, state: states.State | None = None) -> None:
        if state is None:
            raise TypeError("ENDRUN needs the state to end in, e.g. ENDRUN(Success(result=1))")
        self.state = state
        super().__init__(state.message)


class StateSignal(FlowrelaySignal):
    """A signal that ends the task in the state ``_state_cls``; ``result=`` gives that state's
    result (else the result is the signal itself, as in the seeds' engine)."""

    _state_cls: type[states.State] = states.State

    def __init__(self, message: str | None = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(message, *args)
        kwargs.setdefault("result", self)
        self.state = self._state_cls(message=message, **kwargs)


class FAIL(StateSignal):
    """The task failed (retried when it has retries left)."""

    _state_cls = states.Failed


class TRIGGERFAIL(FAIL):
    """The task's trigger refused to run it (raised by triggers)."""

    _state_cls = states.TriggerFailed


class VALIDATIONFAIL(FAIL):
    """A result did not validate."""

    _state_cls = states.ValidationFailed


class SUCCESS(StateSignal):
    """The task succeeded (with ``result=`` its result)."""

    _state_cls = states.Success


class SKIP(StateSignal):
    """The task is skipped; tasks downstream are skipped too unless ``skip_on_upstream_skip=False``.
    Its result is None unless ``result=`` is given (not the signal itself: a ``merge`` after a
    skipped branch then sees None, as its documentation says)."""

    _state_cls = states.Skipped

    def __init__(self, message: str | None = None, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("result", None)
        super().__init__(message, *args, **kwargs)


class RETRY(StateSignal):
    """Run the task again after its ``retry_delay`` (even when it has no retries set)."""

    _state_cls = states.Retrying


class LOOP(StateSignal):
    """Run the task again now; the next run reads ``result`` as ``context.task_loop_result``."""

    _state_cls = states.Looped

    def __init__(self, message: str | None = None, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("result", repr(self))
        super().__init__(message, *args, **kwargs)


class PAUSE(StateSignal):
    """Pause for someone to resume: flowrelay runs have no one to resume them, so a task that
    raises PAUSE fails, saying so."""

    _state_cls = states.Failed


#: The seeds' engine's name for the base class.
PrefectStateSignal = StateSignal
PrefectSignal = FlowrelaySignal
