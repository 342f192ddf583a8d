"""The seeds' engine's ``prefect.utilities`` paths that flows import, renamed (public path)."""

from flowrelay.sdk.importing import submodules_on_first_use

__getattr__ = submodules_on_first_use(__name__)
