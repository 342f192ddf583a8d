"""The Monitor function, every minute: every active run held to its limits
(``flowrelay.control.monitor``), with a CloudWatch metric per kind of action."""

from __future__ import annotations

from typing import Any, get_args

from aws_lambda_powertools.metrics import MetricUnit

from flowrelay.handlers import wiring


def monitor(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One scheduled pass; its report, and a metric per action (every kind of action the
    monitor has: read from its ``Action``, so a new kind cannot go uncounted)."""
    from flowrelay.control.monitor import Action  # loaded by wiring.monitor() in any case

    report = wiring.monitor().run_once()
    counts: dict[str, int] = {action: report.count(action) for action in get_args(Action)}
    for action, count in counts.items():
        # "RunnersSilent" is alarmed on (template.yaml): alive tasks whose runner cannot report.
        name = "RunnersSilent" if action == "runner_silent" else f"Runs{action.title()}"
        wiring.metrics.add_metric(name=name.replace("_", ""), unit=MetricUnit.Count, value=count)
    wiring.logger.info("Monitor pass", extra={"checked": report.checked, **counts})
    return report.model_dump(mode="json")


@wiring.metrics.log_metrics
@wiring.logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point (``functions/monitor/app.handler``)."""
    return monitor(event, context)
