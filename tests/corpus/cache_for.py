"""Output caching with ``cache_for`` (and ``cache_validator``) in one process.

Source: Prefect 1.x docs, core/concepts/persistence.md ("Output Caching": ``cache_for`` "a
timedelta indicating how long the output should be cached"; ``cache_validator=
prefect.engine.cache_validators.all_parameters`` keeps it "only if the flow is run with the
same parameters"; "when running Prefect Core locally, your Tasks' cached states will be stored
in memory within prefect.context"). Stated outcome: a second run in the same process within the
hour reuses the output (``Cached``, same value); with other parameters the validated task runs
again while the plain one stays cached.
"""

import datetime
import itertools

import flowrelay
from flowrelay import Flow, Parameter, task

_calls = itertools.count(1)


@task(cache_for=datetime.timedelta(hours=1))
def load_reference_data():
    # which call of this function this is: a cached run does not call it
    return next(_calls)


@task(
    cache_for=datetime.timedelta(hours=1),
    cache_validator=flowrelay.engine.cache_validators.all_parameters,
)
def report(region, data):
    return f"{region}: call {data}"


with Flow("corpus-cache-for") as flow:
    region = Parameter("region", default="eu")
    data = load_reference_data()
    summary = report(region, data)

# A fresh import: the first run calls load_reference_data once (call 1); cached runs do not.
EXPECTED = {
    "state": "Success",
    "tasks": {data: ("Success", 1), summary: ("Success", "eu: call 1")},
    "variants": [
        {
            "same_process": True,
            "state": "Success",
            "tasks": {data: ("Cached", 1), summary: ("Cached", "eu: call 1")},
        },
        {
            "same_process": True,
            "parameters": {"region": "us"},
            "state": "Success",
            "tasks": {data: ("Cached", 1), summary: ("Success", "us: call 1")},
        },
    ],
}
