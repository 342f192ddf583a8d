"""The target kinds: the launcher of each, the settings each takes, and the events each reads.
This is the one place that names concrete launchers (the handlers' composition root and the CLI
build them through ``build_launchers``).

A ``Target`` (``flowrelay.core.routing``) carries its settings as a plain mapping; what they
must hold is the launcher's business, so it is checked here, by the settings model of the
target's kind, when a target is saved (``checked_target``), and by the launcher when it
launches.

>>> checked_target(Target(name="t", kind="ecs", settings={"cluster": "flows"})).settings
{'cluster': 'flows', 'subnets': [], 'security_groups': [], 'assign_public_ip': False, \
'launch_type': 'FARGATE', 'cpu': '256', 'memory': '512'}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from flowrelay.core.routing import Target
from flowrelay.core.wording import with_article
from flowrelay.launchers.base import EventReader, Launcher

S = TypeVar("S", bound=BaseModel)

KINDS = ("ecs", "kubernetes", "local")


class TargetSettingsError(ValueError):
    """A target's settings do not fit its kind; the message names each bad setting as
    ``settings.NAME`` (``problems`` holds just those)."""

    def __init__(self, message: str, problems: str | None = None) -> None:
        super().__init__(message)
        self.problems = problems or message


def settings_model(kind: str) -> type[BaseModel]:
    """The settings model of target kind ``kind``; ``TargetSettingsError`` for an unknown kind."""
    # Imported here, one kind at a time: a kind's package may load heavy clients.
    if kind == "ecs":
        from flowrelay.launchers.ecs.settings import EcsSettings

        return EcsSettings
    if kind == "kubernetes":
        from flowrelay.launchers.kubernetes.settings import KubernetesSettings

        return KubernetesSettings
    if kind == "local":
        from flowrelay.launchers.local.settings import LocalSettings

        return LocalSettings
    raise TargetSettingsError(f"unknown target kind {kind!r} (known: {', '.join(KINDS)})")


def build_launchers(
    make_client: Callable[[str], Any], *, table_name: str, bus_name: str
) -> dict[str, Launcher]:
    """The launcher of each kind this deployment can start, by kind, with clients made by
    ``make_client(service)``; ``table_name`` and ``bus_name`` go to the runners they start."""
    from flowrelay.launchers.ecs import EcsLauncher

    ecs = EcsLauncher(make_client("ecs"), table_name=table_name, bus_name=bus_name)
    return {ecs.kind: ecs}


def event_readers() -> dict[tuple[str, str], EventReader]:
    """The infrastructure events (source, detail-type) record_state takes, and their readers."""
    from flowrelay.launchers.ecs.events import DETAIL_TYPE, SOURCE, read_task_event

    return {(SOURCE, DETAIL_TYPE): read_task_event}


def typed_settings(target: Target, model: type[S]) -> S:
    """``target``'s settings as ``model`` (the launcher's own settings model)."""
    try:
        return model.model_validate(target.settings)
    except ValidationError as exc:
        problems = settings_errors(exc)
        raise TargetSettingsError(
            f"target {target.name!r} has settings {with_article(target.kind)} target cannot use: "
            f"{problems}",
            problems,
        ) from None


def checked_target(target: Target) -> Target:
    """``target`` with its settings checked against its kind and written out in full (defaults
    filled in, unset ones left out); ``TargetSettingsError`` naming each bad setting."""
    settings = typed_settings(target, settings_model(target.kind))
    return target.model_copy(update={"settings": settings.model_dump(exclude_none=True)})


def settings_errors(error: ValidationError) -> str:
    """A settings model's errors as one line, each setting named ``settings.NAME``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"settings.{location}: {item['msg']}" if location else item["msg"])
    return "; ".join(parts)


__all__ = [
    "KINDS",
    "TargetSettingsError",
    "build_launchers",
    "checked_target",
    "event_readers",
    "settings_errors",
    "settings_model",
    "typed_settings",
]
