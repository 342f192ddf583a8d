"""``flowrelay.client.Secret`` (public path): the seeds' engine's ``prefect.client.Secret``,
reading AWS Secrets Manager or SSM Parameter Store (``flowrelay.sdk.secrets``)."""

from flowrelay.client.secrets import Secret, SecretError, SecretNotFoundError

__all__ = ["Secret", "SecretError", "SecretNotFoundError"]
