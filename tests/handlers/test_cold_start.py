"""What a handler module loads when Lambda imports it: nothing heavy, nothing unused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Heavy packages only some runs need, and powertools' parser models, which its batch types load
# for annotations alone when pydantic is imported first.
MUST_NOT_LOAD = (
    "kubernetes",
    "dask",
    "distributed",
    "dask_cloudprovider",
    "yaml",
    "aws_lambda_powertools.utilities.parser",
    # Launchers load on first use (wiring); what flow authors use, the runner, the CLI and the
    # dev stack never load in a function at all.
    "flowrelay.launchers.ecs",
    "flowrelay.launchers.kubernetes",
    "flowrelay.launchers.local",
    "flowrelay.sdk",
    "flowrelay.runner",
    "flowrelay.cli",
    "flowrelay.devstack",
)
#: What only one function needs: the others must not load it.
ONLY_FOR = {"flowrelay.control.dispatch": "dispatch"}


@pytest.mark.parametrize("function", ["dispatch", "record_state", "cancel", "monitor"])
def test_handler_import_loads_nothing_heavy_or_unused(function: str) -> None:
    folder = ROOT / "functions" / function
    code = (
        f"import sys, json; sys.path.insert(0, {str(folder)!r}); import app; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    )
    assert "aws_lambda_powertools.utilities.batch" in loaded  # the check below means something
    forbidden = [
        *MUST_NOT_LOAD,
        *(module for module, owner in ONLY_FOR.items() if owner != function),
    ]
    offenders = [
        name
        for name in loaded
        if any(name == heavy or name.startswith(heavy + ".") for heavy in forbidden)
    ]
    assert offenders == []
