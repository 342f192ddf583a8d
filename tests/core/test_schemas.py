"""The JSON Schema files shipped in the package match the models (run `make schemas`)."""

from __future__ import annotations

import pytest

from flowrelay.schemas import HERE, generators, render


@pytest.mark.parametrize("name", sorted(generators()))
def test_published_schema_matches_the_model(name: str) -> None:
    published = (HERE / name).read_text()
    assert published == render(generators()[name]()), f"{name} is stale: run `make schemas`"
