"""The ECS/Fargate launcher: one flow run becomes one ECS task running ``flowrelay-runner``.

- ``launcher``: ``EcsLauncher`` (the launcher contract) and ``LaunchResult``;
- ``task_definitions``: content-addressed task definitions;
- ``run_task``: the RunTask request and the run's ``run_task_kwargs`` merged over it;
- ``status``: what a task ECS describes means (``InfraStatus``); ``events``: ECS's task events;
- ``errors``: which of ECS's refusals may pass; ``names``: groups, tags, tokens;
- ``settings``: what an ECS target holds.
"""

from flowrelay.launchers.ecs.launcher import EcsLauncher, LaunchResult

__all__ = ["EcsLauncher", "LaunchResult"]
