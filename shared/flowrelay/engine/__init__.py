"""The seeds' engine's ``prefect.engine`` paths, renamed (public path):
``flowrelay.engine.signals``, ``.state``, ``.result``, ``.results``, ``.serializers``,
``.cache_validators``. Each re-exports the sdk."""

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    # ``import flowrelay`` then ``flowrelay.<this package>.<module>.NAME``, as the seeds'
    # engine's eagerly imported packages allow; loaded on first use here.
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
