"""The seeds' engine's ``prefect.engine`` paths, renamed (public path):
``flowrelay.engine.signals``, ``.state``, ``.result``, ``.results``, ``.serializers``,
``.cache_validators``. Each re-exports the sdk."""

from flowrelay.sdk.importing import submodules_on_first_use

__getattr__ = submodules_on_first_use(__name__)
