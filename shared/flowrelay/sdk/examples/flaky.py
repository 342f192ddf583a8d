"""Retries: a task that fails on its first attempts and succeeds on a later one."""

from datetime import timedelta
from itertools import count

from flowrelay import Flow, task
from flowrelay.run_configs import UniversalRun

_attempts = count(1)


@task(max_retries=3, retry_delay=timedelta(seconds=0.2))
def sometimes_fails() -> str:
    attempt = next(_attempts)
    if attempt < 3:
        raise ConnectionError(f"upstream service unavailable (attempt {attempt})")
    return f"succeeded on attempt {attempt}"


with Flow("flaky", run_config=UniversalRun()) as flow:
    sometimes_fails()
