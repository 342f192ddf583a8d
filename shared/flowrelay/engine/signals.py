"""Signals (public path): ``from flowrelay.engine.signals import SKIP, FAIL, LOOP``, as the seeds'
engine's ``prefect.engine.signals``. Defined in ``flowrelay.sdk.signals``."""

from flowrelay.sdk.signals import (
    ENDRUN,
    FAIL,
    LOOP,
    PAUSE,
    RETRY,
    SKIP,
    SUCCESS,
    TRIGGERFAIL,
    VALIDATIONFAIL,
    FlowrelaySignal,
    PrefectSignal,
    PrefectStateSignal,
    StateSignal,
)

__all__ = [
    "ENDRUN",
    "FAIL",
    "LOOP",
    "PAUSE",
    "RETRY",
    "SKIP",
    "SUCCESS",
    "TRIGGERFAIL",
    "VALIDATIONFAIL",
    "FlowrelaySignal",
    "PrefectSignal",
    "PrefectStateSignal",
    "StateSignal",
]
