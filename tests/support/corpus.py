"""Running the acceptance corpus (``tests/corpus``) and checking a run against a module's
``EXPECTED`` (the format is described in ``tests/corpus/__init__.py``).

A run is checked from outside, the same way whichever way it ran: ``flow.run()`` in this
process, ``flowrelay run-local --json`` in another, or a run of the dev stack (whose final state
and message are all it reports; the files and results a flow leaves say the rest).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
#: The placeholder in ``EXPECTED["env"]`` values for the run's own scratch directory.
TMP = "{tmp}"
#: Every run gets a home directory of its own, so a ``LocalResult()`` made at import (whose
#: default directory is read then) never writes into the user's home.
HOME_VARIABLE = "FLOWRELAY__HOME_DIR"


def path_of(name: str) -> Path:
    """The file of corpus module ``name``."""
    return CORPUS / f"{name}.py"


def fresh_module(name: str) -> ModuleType:
    """Corpus module ``name`` imported anew (a module of its own, as ``flowrelay run-local``
    loads a file): module-level state (a counter, a ``LocalResult`` and its directory, read
    from the environment at import) starts over, and no two tests share tasks."""
    unique = f"corpus_{name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(unique, path_of(name))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def base_env(tmp: Path) -> dict[str, str]:
    """The variables every corpus run gets, before the module is imported."""
    return {HOME_VARIABLE: str(tmp / "home")}


def expanded_env(expected: Mapping[str, Any], tmp: Path) -> dict[str, str]:
    """``EXPECTED["env"]`` with ``{tmp}`` replaced by ``tmp``."""
    return {
        name: str(value).replace(TMP, str(tmp))
        for name, value in (expected.get("env") or {}).items()
    }


def runs_in_another_process(variant: Mapping[str, Any]) -> bool:
    """Whether a variant means the same in a new process: not when it sets context (only
    ``flow.run`` in this process takes it) or relies on this process's in-memory cache."""
    return "context" not in variant and not variant.get("same_process", False)


@dataclass
class TaskOutcome:
    """How one task ended, as a run reports it."""

    state: str
    value: Any
    message: str | None


@dataclass
class Outcome:
    """How a run ended, as seen from outside."""

    state: str
    message: str | None
    tasks: dict[str, TaskOutcome] = field(default_factory=dict)
    #: What the run printed and logged.
    output: str = ""
    #: The messages of the log records the run emitted (empty when not known).
    logged: str = ""
    #: Whether task values went through JSON (``run-local --json``): tuples are lists there.
    as_json: bool = False


def outcome_of_state(flow: Any, state: Any, output: str = "", logged: str = "") -> Outcome:
    """The outcome of ``flow.run()``'s final state."""
    tasks: dict[str, TaskOutcome] = {}
    for task, task_state in (state.result or {}).items():
        tasks[slug_of(flow, task)] = TaskOutcome(
            state=task_state.name,
            value=task_state.result,
            message=task_state.message,
        )
    return Outcome(state.name, state.message, tasks, output, logged)


def outcome_of_json(document: Mapping[str, Any], output: str) -> Outcome:
    """The outcome printed by ``flowrelay run-local --json``."""
    tasks = {
        row["task"]: TaskOutcome(row["state"], row["result"], row["message"])
        for row in document["tasks"]
    }
    return Outcome(
        document["state"], document["message"], tasks, output, logged=output, as_json=True
    )


def slug_of(flow: Any, key: Any) -> str:
    """The slug of ``key`` (a task of ``flow``, or already a slug)."""
    if isinstance(key, str):
        return key
    return str(flow.slug(key))


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists); placeholders stay."""
    if isinstance(value, tuple | list):
        return [as_json(item) for item in value]
    if isinstance(value, dict):
        return {key: as_json(item) for key, item in value.items()}
    return value


def value_matches(expected: Any, actual: Any, json_values: bool) -> bool:
    """Whether ``actual`` is what ``expected`` states: a predicate (a function) accepts it, or
    it is equal (``ANY`` equals everything)."""
    if callable(expected) and not isinstance(expected, type):
        try:
            return bool(expected(actual))
        except Exception:
            return False
    if json_values:
        expected = as_json(expected)
    return bool(expected == actual)


def problems(flow: Any, expected: Mapping[str, Any], outcome: Outcome) -> list[str]:
    """Every way ``outcome`` differs from ``expected``, as sentences (empty: it matches)."""
    found: list[str] = []
    if outcome.state != expected["state"]:
        found.append(
            f"flow state {outcome.state} ({outcome.message!r}), expected {expected['state']}"
        )
    wanted_message = expected.get("message")
    if wanted_message and wanted_message not in (outcome.message or ""):
        found.append(f"flow message {outcome.message!r} lacks {wanted_message!r}")
    for key, (state_name, value) in (expected.get("tasks") or {}).items():
        slug = slug_of(flow, key)
        got = outcome.tasks.get(slug)
        if got is None:
            found.append(f"task {slug!r}: no state (tasks: {sorted(outcome.tasks)})")
            continue
        if got.state != state_name:
            found.append(
                f"task {slug!r}: state {got.state} ({got.message!r}), expected {state_name}"
            )
        elif not value_matches(value, got.value, outcome.as_json):
            found.append(f"task {slug!r}: value {got.value!r}, expected {value!r}")
    for key, text in (expected.get("messages") or {}).items():
        slug = slug_of(flow, key)
        got = outcome.tasks.get(slug)
        if got is not None and text not in (got.message or ""):
            found.append(f"task {slug!r}: message {got.message!r} lacks {text!r}")
    for text in expected.get("output") or ():
        if text not in outcome.output + outcome.logged:
            found.append(f"output lacks {text!r}")
    for text in expected.get("logged") or ():
        if text not in outcome.logged:
            found.append(f"no log record says {text!r}")
    return found


def file_problems(expected: Mapping[str, Any], tmp: Path) -> list[str]:
    """Every way the files a run left under ``tmp`` differ from ``expected`` (``written``:
    text files the flow wrote; ``results``: values checkpointed there; ``absent``: files that
    must not be there)."""
    from flowrelay.engine.results import LocalResult

    found: list[str] = []
    for relative, wanted in (expected.get("written") or {}).items():
        path = tmp / relative
        if not path.exists():
            found.append(f"the flow wrote no {relative}")
        elif not value_matches(wanted, path.read_text(), json_values=False):
            found.append(f"{relative} says {path.read_text()!r}")
    for relative, wanted in (expected.get("results") or {}).items():
        path = tmp / relative
        if not path.exists():
            present = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
            found.append(f"no result at {relative} (files: {present})")
            continue
        value = LocalResult(dir=str(tmp), validate_dir=False).read(str(path)).value
        if not value_matches(wanted, value, json_values=False):
            found.append(f"result {relative} holds {value!r}, expected {wanted!r}")
    for relative in expected.get("absent") or ():
        if (tmp / relative).exists():
            found.append(f"{relative} exists, and should not")
    return found


def parameters_args(parameters: Mapping[str, Any] | None) -> list[str]:
    """``--param`` options for ``flowrelay run-local`` giving ``parameters`` (as JSON)."""
    args: list[str] = []
    for name, value in (parameters or {}).items():
        args += ["--param", f"{name}={json.dumps(value)}"]
    return args


def clean_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus ``extra``, without inherited local secrets or
    checkpointing settings (each run says which it needs)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("FLOWRELAY__")}
    env.update(extra)
    return env
