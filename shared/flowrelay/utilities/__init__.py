"""The seeds' engine's ``prefect.utilities`` paths that flows import, renamed (public path)."""

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
