"""An ``S3Result`` with a templated ``target``.

Source: Prefect 1.x docs, core/concepts/persistence.md ("There are many different Result
classes aligning with different storage backends ... such as GCSResult and S3Result";
"Targets can be templated") and the ``S3Result(bucket=...)`` API reference; the bucket comes
from the environment (``CORPUS_BUCKET``) so the same flow runs against any stack. Stated
outcome: the first run writes ``{flow_name}/{task_name}-{today}`` to the bucket; the next run
finds it and the task is Cached.
"""

import datetime
import os

from flowrelay import Flow, task
from flowrelay.engine.results import S3Result


@task(
    checkpoint=True,
    result=S3Result(bucket=os.environ.get("CORPUS_BUCKET", "flowrelay-corpus")),
    target="{flow_name}/{task_name}-{today}",
)
def fetch_rates():
    return {"EUR": 1.0, "USD": 1.08}


@task
def convert(rates, amount):
    return round(amount * rates["USD"], 2)


with Flow("corpus-s3-result") as flow:
    rates = fetch_rates()
    converted = convert(rates, 100)

_TODAY = datetime.datetime.now(datetime.UTC).date().isoformat()

EXPECTED = {
    "state": "Success",
    "env": {"FLOWRELAY__FLOWS__CHECKPOINTING": "true"},
    "s3_keys": [f"corpus-s3-result/fetch_rates-{_TODAY}"],
    "tasks": {rates: ("Success", {"EUR": 1.0, "USD": 1.08}), converted: ("Success", 108.0)},
    "variants": [
        {
            "state": "Success",
            "tasks": {
                rates: ("Cached", {"EUR": 1.0, "USD": 1.08}),
                converted: ("Success", 108.0),
            },
        }
    ],
}
