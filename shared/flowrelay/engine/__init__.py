"""The seeds' engine's ``prefect.engine`` paths, renamed (public path):
``flowrelay.engine.signals``, ``.state``, ``.result``, ``.results``, ``.serializers``,
``.cache_validators``. Each re-exports the sdk."""
