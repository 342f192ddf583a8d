"""Every ```python block in README.md and docs/*.md runs as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks() -> list[tuple[str, str]]:
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = []
    for document in documents:
        for number, match in enumerate(BLOCK.finditer(document.read_text()), start=1):
            blocks.append((f"{document.relative_to(ROOT)}#{number}", match.group(1)))
    return blocks


def test_the_docs_have_examples() -> None:
    assert len(python_blocks()) >= 8


@pytest.mark.parametrize(("where", "code"), python_blocks(), ids=[w for w, _ in python_blocks()])
def test_doc_example_runs(where: str, code: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        exec(compile(code, where, "exec"), {"__name__": f"doc_example_{where}"})


def test_every_picture_the_docs_show_is_there() -> None:
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", document.read_text()):
            assert (document.parent / path).is_file(), f"{document.name} shows {path}: missing"
