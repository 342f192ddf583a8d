"""The ECS/Fargate launcher: one flow run becomes one ECS task running ``flowrelay-runner``."""

from flowrelay.launchers.ecs.launcher import (
    ATTEMPT_TAG,
    CONTAINER_NAME,
    FAMILY_PREFIX,
    RUN_ID_TAG,
    STARTED_BY,
    EcsLauncher,
    LaunchError,
    LaunchResult,
    build_task_definition,
    client_token,
    merge_run_task_kwargs,
    task_definition_family,
)

__all__ = [
    "ATTEMPT_TAG",
    "CONTAINER_NAME",
    "FAMILY_PREFIX",
    "RUN_ID_TAG",
    "STARTED_BY",
    "EcsLauncher",
    "LaunchError",
    "LaunchResult",
    "build_task_definition",
    "client_token",
    "merge_run_task_kwargs",
    "task_definition_family",
]
