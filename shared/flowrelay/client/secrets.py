"""``flowrelay.client.secrets`` (public path): the seeds' engine's ``prefect.client.secrets``."""

from flowrelay.sdk.secrets import Secret, SecretError, SecretNotFoundError

__all__ = ["Secret", "SecretError", "SecretNotFoundError"]
