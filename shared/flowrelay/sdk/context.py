"""Which flow's ``with`` block is open: the one piece of state flows and tasks share.

A task called inside ``with Flow(...)`` adds itself to that flow. Keeping the context variable
in its own module lets ``tasks`` read it and ``flow`` set it without either importing the
other for it.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow

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
