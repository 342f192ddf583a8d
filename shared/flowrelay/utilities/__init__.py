"""The seeds' engine's ``prefect.utilities`` paths that flows import, renamed (public path)."""
