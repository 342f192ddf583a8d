"""Secrets passed between tasks with a ``PrefectSecret`` task, and read with ``Secret().get()``.

Source: Prefect 1.x docs, core/idioms/secrets.md ("Setting Secrets": ``export
PREFECT__CONTEXT__SECRETS__MY_SECRET=api_key``, here ``FLOWRELAY__CONTEXT__SECRETS__MY_SECRET``;
"Passing Secrets between tasks" with ``PrefectSecret("MY_SECRET")``; "Using Secrets directly"
with ``Secret("MY_SECRET").get()``), the tasks returning what they would use instead of
printing it. Stated outcome: both tasks receive the secret's value.
"""

from flowrelay import Flow, task
from flowrelay.client.secrets import Secret
from flowrelay.tasks.secrets import PrefectSecret


@task
def access_secret(secret_value):
    # Access your secret and now you can use it however you would like
    return len(secret_value)


@task
def access_secret_directly():
    # Access your secret and now you can use it however you would like
    return Secret("MY_SECRET").get() == "api_key"


with Flow("corpus-secret-retrieval") as flow:
    secret = PrefectSecret("MY_SECRET")
    length = access_secret(secret)
    direct = access_secret_directly()

EXPECTED = {
    "state": "Success",
    "env": {"FLOWRELAY__CONTEXT__SECRETS__MY_SECRET": "api_key"},
    "tasks": {length: ("Success", 7), direct: ("Success", True)},
}
