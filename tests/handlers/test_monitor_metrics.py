"""The Monitor function counts every kind of action its pass can take, as a CloudWatch metric
each (a kind added to the monitor must not go uncounted: one was once missed)."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from flowrelay.control.monitor import Action, MonitorAction, MonitorReport
from flowrelay.core.lifecycle import RunState
from flowrelay.handlers import monitor as monitor_handler
from flowrelay.handlers import wiring


class OnePass:
    """The control plane's monitor, as the handler sees it (the one boundary stubbed): a pass
    that took one action of each kind."""

    def run_once(self) -> MonitorReport:
        return MonitorReport(
            actions=[
                MonitorAction(run_id=f"r-{kind}", action=kind, state=RunState.RUNNING, message="")
                for kind in get_args(Action)
            ],
            checked=len(get_args(Action)),
        )


def test_every_action_has_its_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    added: dict[str, float] = {}

    def add_metric(name: str, unit: Any, value: float) -> None:
        added[name] = value

    monkeypatch.setattr(wiring, "monitor", OnePass)
    monkeypatch.setattr(wiring.metrics, "add_metric", add_metric)
    monitor_handler.monitor({}, None)
    assert added["RunsWoken"] == 1
    assert added["RunsSlotReleased"] == 1
    assert added["RunnersSilent"] == 1
    assert len(added) == len(get_args(Action))
    assert set(added.values()) == {1}
