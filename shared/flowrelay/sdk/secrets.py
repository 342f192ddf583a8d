"""Secrets: values a flow needs but must never store or show (the seeds' engine's
``prefect.client.Secret`` and ``prefect.tasks.secrets``).

>>> from flowrelay.client import Secret
>>> from flowrelay.tasks.secrets import PrefectSecret
>>> with Flow("etl") as flow:                                   # doctest: +SKIP
...     password = PrefectSecret("ssm:/team/db/password")
...     rows = load(password=password)
>>> Secret("flowrelay/api-token").get()                         # doctest: +SKIP

Where ``Secret(name).get()`` finds a value, first match wins:

1. ``context.secrets[name]`` (``with context(secrets={...})``, as in the seeds' engine);
2. the environment variable ``FLOWRELAY__CONTEXT__SECRETS__<name>`` (``local_variable(name)``:
   characters a variable name cannot hold become ``_``): how ``flowrelay run-local`` gets values;
3. AWS: a name starting with ``ssm:`` is an SSM Parameter Store parameter (read with decryption),
   any other name a Secrets Manager secret. Reads go through Powertools' parameters utility,
   which caches each value for ``POWERTOOLS_PARAMETERS_MAX_AGE`` seconds (default 300) per
   process.

Text values are JSON-decoded when they parse as JSON (``'{"user": "app"}'`` is a dict, ``"42"`` is
42), as the seeds' engine did; a Secrets Manager ``SecretBinary`` is returned as bytes.

Secret values are never logged, never part of an error message and never checkpointed (secret
tasks have ``checkpoint=False``). What a flow's own code does with a value is up to it: an
exception whose message contains the value carries it; ``redact`` removes the values read in this
process from a text.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flowrelay.sdk.context import active_flow
from flowrelay.sdk.runcontext import context
from flowrelay.sdk.tasks import Task

log = logging.getLogger("flowrelay.secrets")

#: The environment variable prefix of local secret values (the seeds' engine's
#: ``PREFECT__CONTEXT__SECRETS__``).
LOCAL_PREFIX = "FLOWRELAY__CONTEXT__SECRETS__"
#: Names starting with this read SSM Parameter Store; all others Secrets Manager.
SSM_PREFIX = "ssm:"
#: What ``redact`` puts in place of a secret value.
MASK = "***"

_NOT_A_VARIABLE_CHARACTER = re.compile(r"[^A-Za-z0-9_]")
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "ParameterNotFound"})
# Shorter values would mask ordinary words and numbers everywhere ("1", "true").
_SHORTEST_REDACTED = 4


class SecretError(ValueError):
    """A secret could not be read. The message names the secret and the cause, never a value."""


class SecretNotFoundError(SecretError):
    """No source holds the secret (not in the context, the environment, or AWS)."""


def local_variable(name: str) -> str:
    """The environment variable holding a local value of secret ``name``.

    >>> local_variable("DB_PASSWORD")
    'FLOWRELAY__CONTEXT__SECRETS__DB_PASSWORD'
    >>> local_variable("ssm:/team/db/password")
    'FLOWRELAY__CONTEXT__SECRETS__ssm__team_db_password'
    """
    return LOCAL_PREFIX + _NOT_A_VARIABLE_CHARACTER.sub("_", name)


class Secret:
    """A named secret, read when ``get()`` is called (the seeds' engine's
    ``prefect.client.secrets.Secret``).

    ``Secret("flowrelay/db").get()`` reads Secrets Manager secret ``flowrelay/db``;
    ``Secret("ssm:/team/db/password").get()`` reads SSM parameter ``/team/db/password``. A local
    value (``context.secrets`` or ``FLOWRELAY__CONTEXT__SECRETS__<name>``) wins over AWS.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"A secret's name is a non-empty string, got {name!r}")
        self.name = name

    def get(self) -> Any:
        """The secret's value (JSON-decoded when it is JSON text).

        Raises:
            SecretNotFoundError: no source has it (the message says where it looked).
            SecretError: AWS refused or could not be reached (the message says why).
            ValueError: called while a flow is being built (the value would become part of the
                flow, and so of its storage): read secrets in tasks.
        """
        if active_flow() is not None and context.get("flow_run_id") is None:
            raise ValueError(
                f"Secret {self.name!r}: secrets are read while a flow runs, not while it is "
                f"built (the value would be stored with the flow); use PrefectSecret"
                f"({self.name!r}) as a task instead"
            )
        local_values = context.get("secrets")
        if isinstance(local_values, Mapping) and self.name in local_values:
            value: Any = local_values[self.name]
            source = "context.secrets"
        elif (text := os.environ.get(local_variable(self.name))) is not None:
            value = text
            source = local_variable(self.name)
        elif self.name.startswith(SSM_PREFIX):
            value = _read_ssm(self.name, local_variable(self.name))
            source = "SSM Parameter Store"
        else:
            value = _read_secrets_manager(self.name, local_variable(self.name))
            source = "Secrets Manager"
        value = _json_or_text(value)
        _remember(value)
        log.debug("Secret %r read from %s", self.name, source)
        return value

    def exists(self) -> bool:
        """Whether ``get()`` finds a value (it reads it, so it is cached afterwards).

        Raises SecretError when AWS cannot say (access denied, no credentials)."""
        try:
            self.get()
        except SecretNotFoundError:
            return False
        return True

    def __repr__(self) -> str:
        return f"<Secret: {self.name}>"


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _read_secrets_manager(name: str, variable: str) -> Any:
    from aws_lambda_powertools.utilities.parameters import get_secret

    try:
        with _response_bodies_unlogged():
            return get_secret(name)
    except Exception as exc:
        raise _aws_error(name, variable, "Secrets Manager", f"secret {name!r}", exc) from (
            None if _is_not_found(exc) else _cause(exc)
        )


def _read_ssm(name: str, variable: str) -> Any:
    parameter = name[len(SSM_PREFIX) :]
    if not parameter:
        raise SecretError(f"Secret {name!r} names no parameter: write ssm:/path/to/parameter")
    from aws_lambda_powertools.utilities.parameters import get_parameter

    try:
        with _response_bodies_unlogged():
            return get_parameter(parameter, decrypt=True)
    except Exception as exc:
        raise _aws_error(
            name, variable, "SSM Parameter Store", f"parameter {parameter!r}", exc
        ) from (None if _is_not_found(exc) else _cause(exc))


class _DuringSecretReads(logging.Filter):
    """Drops the records of botocore's response parser made while this thread reads a secret:
    at DEBUG it logs every response body, which holds the value."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_reading, "active", False)


_reading = threading.local()
_unlogged_bodies = _DuringSecretReads()


@contextmanager
def _response_bodies_unlogged() -> Iterator[None]:
    # botocore parses and logs in the calling thread, so a thread-local flag marks the read.
    logging.getLogger("botocore.parsers").addFilter(_unlogged_bodies)  # once: a no-op after
    _reading.active = True
    try:
        yield
    finally:
        _reading.active = False


def _cause(exc: BaseException) -> BaseException:
    """The error AWS or botocore raised: Powertools wraps it in a GetParameterError raised in
    its ``except`` block, so it is that error's context."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    if isinstance(exc, GetParameterError) and exc.__context__ is not None:
        return exc.__context__
    return exc


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _is_not_found(exc: BaseException) -> bool:
    return _error_code(_cause(exc)) in _NOT_FOUND_CODES


def _aws_error(name: str, variable: str, store: str, what: str, exc: BaseException) -> SecretError:
    region = _region()
    if _is_not_found(exc):
        return SecretNotFoundError(
            f"Secret {name!r} not found: not in {variable} and {store} has no {what} "
            f"(region {region})"
        )
    cause = _cause(exc)
    code = _error_code(cause)
    if code is not None:
        error = getattr(cause, "response", {}).get("Error", {})
        reason = f"{code}: {error.get('Message') or cause}"
    elif type(cause).__name__ == "NoRegionError":
        reason = "no AWS region is set (AWS_REGION or AWS_DEFAULT_REGION)"
    else:
        reason = f"{type(cause).__name__}: {cause}"
    return SecretError(
        f"Secret {name!r} could not be read: not in {variable}, and {store} could not give "
        f"{what} (region {region}): {reason}"
    )


def _region() -> str:
    """The region boto3 uses here (only for messages: the error path)."""
    import boto3

    return boto3.session.Session().region_name or "not set"


# --- keeping values out of text -----------------------------------------------------------------

_seen_lock = threading.Lock()
_seen: frozenset[str] = frozenset()


def _remember(value: Any) -> None:
    """Note the texts of a value just read, for ``redact``."""
    global _seen
    texts = set(_texts(value))
    if texts and not texts <= _seen:
        with _seen_lock:
            # Replaced whole (never mutated), so ``redact`` reads it without the lock.
            _seen = _seen | texts


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if len(value) >= _SHORTEST_REDACTED else []
    if isinstance(value, bytes):
        try:
            return _texts(value.decode("utf-8"))
        except UnicodeDecodeError:
            return []
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _texts(item)]
    return []


def redact(text: str) -> str:
    """``text`` with every secret value read in this process replaced by ``***`` (free when
    no secret was read). For messages and tracebacks built from a flow's exceptions.

    >>> redact("connect failed")
    'connect failed'
    """
    seen = _seen
    if not seen:
        return text
    # Longest first, so a value that contains another is masked whole.
    for value in sorted(seen, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactSecrets(logging.Filter):
    """A logging filter (for a handler) that masks secret values read in this process in each
    record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _seen:
            message = record.getMessage()
            masked = redact(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


# --- tasks ---------------------------------------------------------------------------------------

_NOT_FOR_SECRETS = ("result", "target", "checkpoint")


class SecretBase(Task):
    """Base class of tasks that return a secret (the seeds' engine's
    ``prefect.tasks.secrets.SecretBase``): subclass it and implement ``run`` for another secret
    store. Its result is never checkpointed: ``checkpoint`` is always False, and ``result=`` or
    ``target=`` are refused. A restart reads the secret again, and what follows it may still be
    reused (``same_when_rerun``).
    """

    same_when_rerun = True

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("result") is not None:
            raise ValueError("Result types for Secrets are not configurable.")
        if kwargs.get("target") is not None:
            raise ValueError("Secret tasks take no target: their values are never written.")
        if kwargs.get("checkpoint"):
            raise ValueError("Secret tasks are never checkpointed: their values are never written.")
        for setting in _NOT_FOR_SECRETS:
            kwargs.pop(setting, None)
        super().__init__(checkpoint=False, **kwargs)

    def copy(self, **overrides: Any) -> Task:
        """A new task with the same settings; refuses ``task_args`` that would write the value
        (any ``result``/``target``, a ``checkpoint`` other than False)."""
        for setting in _NOT_FOR_SECRETS:
            if setting not in overrides:
                continue
            if setting == "checkpoint" and overrides[setting] is False:
                continue
            if setting != "checkpoint" and overrides[setting] is None:
                continue
            raise ValueError(
                f"Secret task {self.name!r}: {setting}={overrides[setting]!r} is not for secret "
                f"tasks (their values are never written)"
            )
        new = super().copy(**overrides)
        new.checkpoint = False
        return new


class PrefectSecret(SecretBase):
    """A task returning ``Secret(name).get()`` (the seeds' engine's ``PrefectSecret``).

    ``name`` is the secret's name and the task's; a name given to ``run`` (e.g. from a
    Parameter: ``PrefectSecret()(name=secret_name)``) wins over it.
    """

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.secret_name = name
        super().__init__(name=name, **kwargs)

    def run(self, name: str | None = None) -> Any:
        """The secret's value (see ``Secret.get``)."""
        name = name if name is not None else self.secret_name
        if name is None:
            raise ValueError("A secret name must be provided.")
        return Secret(name).get()


class EnvVarSecret(PrefectSecret):
    """A task returning environment variable ``name``, ``cast`` when given (the seeds' engine's
    ``EnvVarSecret``). A missing variable gives None, or SecretNotFoundError when
    ``raise_if_missing``. ``env_var=`` (its earlier releases' name for the variable) is accepted;
    ``name`` is then only the task's name.
    """

    def __init__(
        self,
        name: str | None = None,
        cast: Callable[[str], Any] | None = None,
        raise_if_missing: bool = False,
        *,
        env_var: str | None = None,
        **kwargs: Any,
    ) -> None:
        if cast is not None and not callable(cast):
            raise TypeError(f"EnvVarSecret: cast must be a function, got {cast!r}")
        self.cast = cast
        self.raise_if_missing = raise_if_missing
        super().__init__(name=name or env_var, **kwargs)
        self.secret_name = env_var or name

    def run(self, name: str | None = None) -> Any:
        """The variable's value (cast), or None when it is not set and not required."""
        name = name if name is not None else self.secret_name
        if name is None:
            raise ValueError("A secret name must be provided.")
        value = os.environ.get(name)
        if value is None:
            if self.raise_if_missing:
                raise SecretNotFoundError(
                    f"Secret {name!r} not found: environment variable {name} is not set"
                )
            return None
        _remember(value)
        if self.cast is None:
            return value
        try:
            result = self.cast(value)
        except Exception as exc:
            # Not chained, not quoted: a cast's message usually repeats its input, the value.
            cast_name = getattr(self.cast, "__name__", repr(self.cast))
            raise SecretError(
                f"Secret {name!r}: cast {cast_name} refused the value of environment variable "
                f"{name} ({type(exc).__name__})"
            ) from None
        _remember(result)
        return result
