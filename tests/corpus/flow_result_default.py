"""A flow-level ``result=``: every task checkpoints to it unless it says otherwise.

Source: Prefect 1.x docs, core/idioms/targets.md ("A Result can be set on the flow object and
then all tasks will use that Result type") and core/concepts/results.md ("Flow-level result:
``Flow(..., result=...)`` ... Task-level results will always be used over Flow-level results;
neither will be used if a task's ``checkpoint`` kwarg is set to False"), with checkpointing on
as persistence.md says for local runs. Stated outcome: ``extract`` and ``transform`` are
written under the flow's ``LocalResult`` location; ``secret_step`` (``checkpoint=False``) is
not.
"""

from flowrelay import Flow, task
from flowrelay.engine.results import LocalResult


@task
def extract():
    return [1, 2, 3]


@task
def transform(data):
    return [x * 10 for x in data]


@task(checkpoint=False)
def secret_step(data):
    return "not written anywhere"


with Flow(
    "corpus-flow-result",
    result=LocalResult(location="{flow_name}/{task_name}.pkl"),
) as flow:
    data = extract()
    transformed = transform(data)
    hidden = secret_step(transformed)

EXPECTED = {
    "state": "Success",
    "env": {"FLOWRELAY__FLOWS__CHECKPOINTING": "true", "FLOWRELAY__HOME_DIR": "{tmp}/home"},
    "tasks": {
        data: ("Success", [1, 2, 3]),
        transformed: ("Success", [10, 20, 30]),
        hidden: ("Success", "not written anywhere"),
    },
    "results": {
        "home/results/corpus-flow-result/extract.pkl": [1, 2, 3],
        "home/results/corpus-flow-result/transform.pkl": [10, 20, 30],
    },
    "absent": ["home/results/corpus-flow-result/secret_step.pkl"],
}
