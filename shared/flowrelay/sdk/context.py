"""Which flow's ``with`` block is open (and which ``case`` block): the state flows and tasks share
while a flow is built.

A task called inside ``with Flow(...)`` adds itself to that flow. Keeping the context variable
in its own module lets ``tasks`` read it and ``flow`` set it without either importing the
other for it.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.tasks import Task

_active_flow: ContextVar[Flow | None] = ContextVar("flowrelay_active_flow", default=None)


def active_flow() -> Flow | None:
    """The flow whose ``with`` block is open in this context, if any."""
    return _active_flow.get()


def enter_flow(flow: Flow) -> Token[Flow | None]:
    """Make ``flow`` the active flow; returns the token that restores the previous one."""
    return _active_flow.set(flow)


def leave_flow(token: Token[Flow | None]) -> None:
    """Restore the flow that was active before ``enter_flow`` returned ``token``."""
    _active_flow.reset(token)


class CaseBlock(Protocol):
    """What ``Flow.add_task`` tells an open ``case`` block (``flowrelay.tasks.control_flow``)."""

    def add_task(self, task: Task, flow: Flow) -> None: ...


_active_case: ContextVar[CaseBlock | None] = ContextVar("flowrelay_active_case", default=None)


def active_case() -> CaseBlock | None:
    """The ``case`` block open in this context, if any."""
    return _active_case.get()


def enter_case(block: CaseBlock) -> Token[CaseBlock | None]:
    return _active_case.set(block)


def leave_case(token: Token[CaseBlock | None]) -> None:
    _active_case.reset(token)
