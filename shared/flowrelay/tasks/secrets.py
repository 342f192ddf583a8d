"""``flowrelay.tasks.secrets`` (public path): the seeds' engine's ``prefect.tasks.secrets``,
tasks that return a secret and are never checkpointed (``flowrelay.sdk.secrets``)."""

from flowrelay.sdk.secrets import (
    EnvVarSecret,
    PrefectSecret,
    SecretBase,
    SecretError,
    SecretNotFoundError,
)

__all__ = ["EnvVarSecret", "PrefectSecret", "SecretBase", "SecretError", "SecretNotFoundError"]
