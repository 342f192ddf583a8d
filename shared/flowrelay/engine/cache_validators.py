"""Cache validators (public path), as the seeds' engine's ``prefect.engine.cache_validators``.
Defined in ``flowrelay.sdk.cache_validators``."""

from flowrelay.sdk.cache_validators import (
    all_inputs,
    all_parameters,
    duration_only,
    never_use,
    partial_inputs_only,
    partial_parameters_only,
)

__all__ = [
    "all_inputs",
    "all_parameters",
    "duration_only",
    "never_use",
    "partial_inputs_only",
    "partial_parameters_only",
]
