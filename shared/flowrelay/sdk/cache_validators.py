"""When a result kept with ``cache_for`` may be used again (the seeds' engine's
``prefect.engine.cache_validators``). A validator is ``fn(state, inputs, parameters) -> bool``,
``state`` the ``Cached`` state kept from an earlier run of the task in this process.

>>> from datetime import timedelta
>>> from flowrelay import task
>>> @task(cache_for=timedelta(hours=1), cache_validator=all_inputs)
... def fetch(url): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from flowrelay.sdk.states import Cached

Validator = Callable[[Cached, Mapping[str, Any], Mapping[str, Any]], bool]


def never_use(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Never use a kept result."""
    return False


def duration_only(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Use a kept result until ``cache_for`` has passed (the default)."""
    expiration = state.cached_result_expiration
    return expiration is not None and datetime.now(UTC) < expiration


def all_inputs(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Use a kept result while it is fresh and the task's inputs are the same."""
    return duration_only(state, inputs, parameters) and state.cached_inputs == dict(inputs)


def all_parameters(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
    """Use a kept result while it is fresh and the run's parameters are the same."""
    return duration_only(state, inputs, parameters) and state.cached_parameters == dict(parameters)


def partial_inputs_only(validate_on: Iterable[str] | None = None) -> Validator:
    """A validator comparing only the inputs named in ``validate_on``."""
    names = list(validate_on or ())

    def validator(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
        kept = state.cached_inputs or {}
        return duration_only(state, inputs, parameters) and all(
            kept.get(name) == inputs.get(name) for name in names
        )

    return validator


def partial_parameters_only(validate_on: Iterable[str] | None = None) -> Validator:
    """A validator comparing only the parameters named in ``validate_on``."""
    names = list(validate_on or ())

    def validator(state: Cached, inputs: Mapping[str, Any], parameters: Mapping[str, Any]) -> bool:
        kept = state.cached_parameters or {}
        return duration_only(state, inputs, parameters) and all(
            kept.get(name) == parameters.get(name) for name in names
        )

    return validator
