"""Run configurations (public path): ``from flowrelay.run_configs import ECSRun``.

Defined in ``flowrelay.core.run_configs``; see there and docs/run-configs.md.
"""

from flowrelay.core.run_configs import (
    DockerRun,
    ECSRun,
    KubernetesRun,
    LocalRun,
    RunConfig,
    UniversalRun,
    parse_run_config,
    run_config_json_schema,
)

__all__ = [
    "DockerRun",
    "ECSRun",
    "KubernetesRun",
    "LocalRun",
    "RunConfig",
    "UniversalRun",
    "parse_run_config",
    "run_config_json_schema",
]
