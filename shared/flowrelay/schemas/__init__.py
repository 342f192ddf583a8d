"""Published JSON Schemas of flowrelay's models, generated from the pydantic models.

``python -m flowrelay.schemas`` (``make schemas``) rewrites the files; a test fails when a file
differs from its model, so the published schema cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

HERE = Path(__file__).parent


def generators() -> dict[str, Callable[[], dict[str, Any]]]:
    """File name -> function producing that schema."""
    from flowrelay.core.events import DETAIL_MODELS
    from flowrelay.core.run_configs import run_config_json_schema
    from flowrelay.core.storage import storage_json_schema
    from flowrelay.launchers.ecs.status import EcsTaskStateChange
    from flowrelay.launchers.kinds import target_json_schema
    from flowrelay.launchers.local.events import LocalProcessStateChange

    generated: dict[str, Callable[[], dict[str, Any]]] = {
        "run-config.schema.json": run_config_json_schema,
        "storage.schema.json": storage_json_schema,
        "target.schema.json": target_json_schema,
    }
    # flowrelay's own events, and the infrastructure events the state queue takes (the fields
    # flowrelay reads of them).
    models: list[type[BaseModel]] = [
        *DETAIL_MODELS.values(),
        EcsTaskStateChange,
        LocalProcessStateChange,
    ]
    for model in models:
        name = model.DETAIL_TYPE.lower().replace(" ", "-")  # type: ignore[attr-defined]
        generated[f"event-{name}.schema.json"] = model.model_json_schema
    return generated


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_all() -> list[Path]:
    written = []
    for name, generate in generators().items():
        path = HERE / name
        path.write_text(render(generate()))
        written.append(path)
    return written
