"""Launchers: they turn a flow run and its launch target into running infrastructure.

Each launcher has ``launch(run, target, *, attempt=1)``, returning a model that describes where
the run is (stored on the run as its ``infrastructure``), and raises an error with ``retryable``
and ``reason`` when it cannot, so the dispatcher knows whether to try again later.
"""

from __future__ import annotations

from flowrelay.launchers.ecs import EcsLauncher, LaunchError, LaunchResult

__all__ = ["EcsLauncher", "LaunchError", "LaunchResult"]
