"""Secrets (flowrelay.client.Secret, flowrelay.tasks.secrets) against a moto server over real
HTTP: Secrets Manager and SSM values, local values, errors, caching, and that no value reaches a
log, a state or an error message."""

from __future__ import annotations

import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from flowrelay import Flow, Parameter, task
from flowrelay.client import Secret, SecretError, SecretNotFoundError
from flowrelay.sdk.runcontext import context
from flowrelay.sdk.secrets import RedactSecrets, local_variable, redact
from flowrelay.tasks.secrets import EnvVarSecret, PrefectSecret, SecretBase

VALUE = "pw-8c1e55f0-never-shown"


@pytest.fixture(autouse=True)
def fresh_powertools_providers() -> Iterator[None]:
    """Powertools keeps one provider (and boto3 client, and cache) per process: each test starts
    with none, so its client is made with this test's environment."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    yield
    parameters.clear_caches()


@pytest.fixture
def secretsmanager(aws_env: str) -> Any:
    return boto3.client("secretsmanager")


@pytest.fixture
def ssm(aws_env: str) -> Any:
    return boto3.client("ssm")


def unique(prefix: str = "flowrelay/test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- where values come from ---------------------------------------------------------------------


def test_secrets_manager_text(secretsmanager: Any) -> None:
    name = unique()
    secretsmanager.create_secret(Name=name, SecretString=VALUE)
    assert Secret(name).get() == VALUE


def test_secrets_manager_json_is_decoded(secretsmanager: Any) -> None:
    name = unique()
    secretsmanager.create_secret(Name=name, SecretString='{"user": "app", "password": "x-1"}')
    assert Secret(name).get() == {"user": "app", "password": "x-1"}


def test_secrets_manager_binary_is_bytes(secretsmanager: Any) -> None:
    name = unique()
    secretsmanager.create_secret(Name=name, SecretBinary=b"\x00\xffkey-bytes")
    assert Secret(name).get() == b"\x00\xffkey-bytes"


def test_ssm_secure_string_is_decrypted(ssm: Any) -> None:
    parameter = f"/{unique('team')}/db/password"
    ssm.put_parameter(Name=parameter, Value=VALUE, Type="SecureString")
    assert Secret(f"ssm:{parameter}").get() == VALUE


def test_ssm_json_string_is_decoded(ssm: Any) -> None:
    parameter = unique("team-settings")
    ssm.put_parameter(Name=parameter, Value='{"hosts": ["a", "b"]}', Type="String")
    assert Secret(f"ssm:{parameter}").get() == {"hosts": ["a", "b"]}


def test_a_local_value_wins_over_aws(secretsmanager: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique()
    secretsmanager.create_secret(Name=name, SecretString="from-aws")
    monkeypatch.setenv(local_variable(name), "from-env")
    assert Secret(name).get() == "from-env"
    with context(secrets={name: "from-context"}):
        assert Secret(name).get() == "from-context"


def test_local_values_need_no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__DB", '{"user": "app"}')
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__PORT", "5432")
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__TOKEN", "abc def")
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__ssm__team_db_password", VALUE)
    assert Secret("DB").get() == {"user": "app"}
    assert Secret("PORT").get() == 5432  # JSON when it is JSON, as the seeds' engine did
    assert Secret("TOKEN").get() == "abc def"
    assert Secret("ssm:/team/db/password").get() == VALUE


# --- errors --------------------------------------------------------------------------------------


def test_a_missing_secret_says_where_it_looked(aws_env: str) -> None:
    name = unique()
    variable = local_variable(name)
    with pytest.raises(SecretNotFoundError) as caught:
        Secret(name).get()
    assert str(caught.value) == (
        f"Secret '{name}' not found: not in {variable} and Secrets Manager has no secret "
        f"'{name}' (region us-east-1)"
    )
    assert isinstance(caught.value, ValueError)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_missing_parameter_says_where_it_looked(aws_env: str) -> None:
    with pytest.raises(SecretNotFoundError, match=r"^Secret 'ssm:/no/such' not found: not in "
                       r"FLOWRELAY__CONTEXT__SECRETS__ssm__no_such and SSM Parameter Store has "
                       r"no parameter '/no/such' \(region us-east-1\)$"):  # fmt: skip
        Secret("ssm:/no/such").get()
    assert not Secret("ssm:/no/such").exists()


def test_aws_out_of_reach_is_a_secret_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(SecretError, match="no AWS region is set") as caught:
        Secret("flowrelay/anything").get()
    assert not isinstance(caught.value, SecretNotFoundError)
    assert "\n" not in str(caught.value)


def test_secrets_are_not_read_while_a_flow_is_built() -> None:
    with Flow("building"), pytest.raises(ValueError, match="use PrefectSecret"):
        Secret("DB").get()


# --- caching (Powertools) -------------------------------------------------------------------------


def test_a_second_read_within_max_age_asks_aws_nothing(secretsmanager: Any) -> None:
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    name = unique()
    secretsmanager.create_secret(Name=name, SecretString="first")
    assert Secret(name).get() == "first"
    calls: list[str] = []
    client = DEFAULT_PROVIDERS["secrets"].client
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **kwargs: calls.append("call")
    )
    secretsmanager.put_secret_value(SecretId=name, SecretString="second")
    assert Secret(name).get() == "first"
    assert calls == []


def test_max_age_zero_reads_every_time(
    secretsmanager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_PARAMETERS_MAX_AGE", "0")
    name = unique()
    secretsmanager.create_secret(Name=name, SecretString="first")
    assert Secret(name).get() == "first"
    secretsmanager.put_secret_value(SecretId=name, SecretString="second")
    assert Secret(name).get() == "second"


def test_importing_secrets_loads_no_aws_library() -> None:
    code = (
        "import sys, flowrelay.sdk.secrets, flowrelay.client, flowrelay.tasks.secrets\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'aws_lambda_powertools') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- tasks ---------------------------------------------------------------------------------------


def test_secret_tasks_are_never_checkpointed() -> None:
    secret = PrefectSecret("DB")
    assert secret.checkpoint is False
    assert secret.secret_name == "DB"
    assert secret.name == "DB"
    assert EnvVarSecret("HOME").checkpoint is False
    with pytest.raises(ValueError, match="not configurable"):
        PrefectSecret("DB", result=object())
    with pytest.raises(ValueError, match="never checkpointed"):
        PrefectSecret("DB", checkpoint=True)
    with pytest.raises(ValueError, match="checkpoint=True is not for secret tasks"):
        secret.copy(checkpoint=True)
    assert PrefectSecret("DB", checkpoint=False).checkpoint is False


def test_prefect_secret_run_takes_a_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__A", "a-value")
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__B", "b-value")
    assert PrefectSecret("A").run() == "a-value"
    assert PrefectSecret("A").run(name="B") == "b-value"
    with pytest.raises(ValueError, match="A secret name must be provided"):
        PrefectSecret().run()


def test_a_custom_secret_store_subclasses_secret_base() -> None:
    class VaultSecret(SecretBase):
        def run(self, path: str) -> str:
            return f"value of {path}"

    vault = VaultSecret(name="vault", max_retries=1, retry_delay=1)
    assert vault.checkpoint is False
    assert vault.run("kv/db") == "value of kv/db"


def test_env_var_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_PORT", "8080")
    monkeypatch.delenv("APP_MISSING", raising=False)
    assert EnvVarSecret("APP_PORT").run() == "8080"
    assert EnvVarSecret("APP_PORT", cast=int).run() == 8080
    assert EnvVarSecret(env_var="APP_PORT", name="port task").run() == "8080"
    assert EnvVarSecret(env_var="APP_PORT", name="port task").name == "port task"
    assert EnvVarSecret("APP_MISSING").run() is None
    with pytest.raises(SecretNotFoundError, match="environment variable APP_MISSING is not set"):
        EnvVarSecret("APP_MISSING", raise_if_missing=True).run()


def test_a_failing_cast_does_not_repeat_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", VALUE)
    with pytest.raises(SecretError) as caught:
        EnvVarSecret("APP_TOKEN", cast=int).run()
    assert str(caught.value) == (
        "Secret 'APP_TOKEN': cast int refused the value of environment variable APP_TOKEN "
        "(ValueError)"
    )
    assert VALUE not in str(caught.value)
    assert caught.value.__suppress_context__


# --- never shown ---------------------------------------------------------------------------------


@task
def connect(password: str, user: str) -> None:
    # What a driver says when a login fails: the user and host, never the password.
    raise ConnectionError(f"could not log in as {user} to db.internal:5432")


def test_no_value_in_logs_or_states_when_a_task_using_it_fails(
    secretsmanager: Any, ssm: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique()
    secretsmanager.create_secret(Name=name, SecretString=VALUE)
    parameter = f"/{unique('team')}/token"
    ssm.put_parameter(Name=parameter, Value=VALUE + "-ssm", Type="SecureString")
    caplog.set_level(logging.DEBUG)  # botocore logs response bodies at DEBUG
    with Flow("uses a secret") as flow:
        connect(PrefectSecret(name), user="app")
        connect(PrefectSecret(f"ssm:{parameter}"), user="ops")
    state = flow.run()
    assert state.is_failed()
    assert "could not log in as app" in (state.message or "")
    shown = [caplog.text, repr(state), state.message or ""]
    for task_state in state.result.values():
        shown += [repr(task_state), task_state.message or "", task_state.traceback or ""]
    for text in shown:
        assert VALUE not in text
    # The values were read and used: the secret tasks succeeded.
    secret_states = [s for t, s in state.result.items() if isinstance(t, PrefectSecret)]
    assert sorted(s.result for s in secret_states) == [VALUE, VALUE + "-ssm"]


def test_a_secret_named_by_a_parameter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__PROD_DB", '{"user": "app"}')

    @task
    def user_of(credentials: dict[str, str]) -> str:
        return credentials["user"]

    with Flow("parameter to secret") as flow:
        which = Parameter("which", default="PROD_DB")
        user = user_of(PrefectSecret()(name=which))
    state = flow.run()
    assert state.is_successful(), state.message
    assert state.result[user].result == "app"


def test_redact_masks_values_read_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRELAY__CONTEXT__SECRETS__REDACTED", f'{{"password": "{VALUE}"}}')
    Secret("REDACTED").get()
    message = f"invalid literal for int() with base 10: '{VALUE}'"
    assert redact(message) == "invalid literal for int() with base 10: '***'"
    record = logging.LogRecord("flow", logging.ERROR, __file__, 1, "bad %s", (VALUE,), None)
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "bad ***"
    assert redact("ok") == "ok"


def test_task_args_cannot_make_a_secret_checkpointed(tmp_path: Any) -> None:
    from flowrelay.engine.results import LocalResult

    secret = PrefectSecret("TOKEN")
    for bad in ({"checkpoint": True}, {"checkpoint": None}, {"target": "x"}):
        with Flow("no way"), pytest.raises(ValueError, match="not for secret tasks"):
            secret(task_args=bad)
    with Flow("written?", result=LocalResult(dir=str(tmp_path))) as flow:
        token = secret(task_args={"checkpoint": False})
    values = {"secrets": {"TOKEN": "hunter2-do-not-write"}, "checkpointing": True}
    state = flow.run(context=values)
    assert state.result[token].location is None
    assert not list(tmp_path.rglob("*"))


def test_a_secret_in_a_signal_or_handler_message_is_masked() -> None:
    from flowrelay.engine import signals

    @task
    def refuse(password: str) -> None:
        raise signals.FAIL(f"login refused for {password}")

    def loud(task: Any, old: Any, new: Any) -> None:
        if new.is_failed():
            raise RuntimeError(f"could not page with {new.message}")

    with Flow("masked") as flow:
        password = PrefectSecret("PASSWORD")
        refused = refuse(password)
        paged = refuse(password, task_args={"state_handlers": [loud]})
    state = flow.run(context={"secrets": {"PASSWORD": "hunter2-very-secret"}})
    for task_ in (refused, paged):
        assert "hunter2" not in str(state.result[task_].message)
        assert "***" in str(state.result[task_].message)
    assert "hunter2" not in str(state.message)
