"""The import rule of docs/architecture.md, as `make test` checks it with import-linter: every
layer is covered by the contracts, and a forbidden import fails with the rule it breaks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "shared" / "flowrelay"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


#: Top-level modules that are not layers: the public paths flow authors import (each bound by the
#: contract that lets them re-export only sdk and core), and the published schemas (data, with
#: the script that writes them).
NOT_LAYERS = {
    module.removeprefix("flowrelay.")
    for module in contracts()["public-paths-are-sdk-and-core"]["source_modules"]
} | {"schemas"}


def test_every_package_is_in_a_layer() -> None:
    layered = {
        module.removeprefix("flowrelay.")
        for layer in contracts()["layers"]["layers"]
        for module in layer.replace(" ", "").split("|")
    }
    packages = {
        path.name if path.is_dir() else path.stem
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }
    assert packages - NOT_LAYERS == layered


def test_control_may_reach_no_launcher_kind() -> None:
    """A new launcher package is forbidden to the control plane from its first commit."""
    forbidden = set(contracts()["control-knows-launchers-by-contract"]["forbidden_modules"])
    kinds = {
        f"flowrelay.launchers.{path.name}"
        for path in (PACKAGE / "launchers").iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }
    assert kinds
    assert kinds <= forbidden
    assert "flowrelay.launchers.base" not in forbidden


@pytest.mark.slow
def test_a_forbidden_import_fails_naming_the_rule(tmp_path: Path) -> None:
    copy = tmp_path / "flowrelay"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "control" / "monitor.py").open("a") as module:
        module.write("\nfrom flowrelay.launchers.ecs import EcsLauncher  # noqa: E402\n")
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert "control knows launchers only through flowrelay.launchers.base" in broken
    assert "flowrelay.control.monitor -> flowrelay.launchers.ecs" in broken
