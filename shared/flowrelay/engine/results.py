"""Results (public path, the seeds' engine's ``prefect.engine.results``):
``from flowrelay.engine.results import LocalResult, S3Result, PrefectResult``.

Defined in ``flowrelay.sdk.results``; see there and docs/flows.md.
"""

from flowrelay.sdk.results import (
    LocalResult,
    LocationTemplateError,
    PrefectResult,
    Result,
    ResultError,
    S3Result,
)

__all__ = [
    "LocalResult",
    "LocationTemplateError",
    "PrefectResult",
    "Result",
    "ResultError",
    "S3Result",
]
