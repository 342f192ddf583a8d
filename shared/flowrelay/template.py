"""Reading template.yaml, the one definition of flowrelay's AWS resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ...)
    as ``{"Ref": ...}`` / ``{"Fn::GetAtt": ...}`` instead of refusing them."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """template.yaml as a dict, intrinsic functions in their long form."""
    loaded = yaml.load(Path(path).read_text(), Loader=_CloudFormationLoader)
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise ValueError(f"{path} is not a CloudFormation/SAM template (no Resources)")
    return loaded


def resource_properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The ``Properties`` of one resource, by logical id."""
    try:
        resource = template["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"template has no resource {logical_id!r}") from None
    return dict(resource.get("Properties", {}))
