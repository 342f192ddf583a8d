"""Checkpoint manifests: what a flow run checkpointed, so a later attempt can restart from failure.

A task whose value was checkpointed ends in a ``Success`` whose ``location`` says where its
``Result`` wrote it (``NO_VALUE_WRITTEN``, ``""``, when the value was None: nothing is written
for None). After a run, ``manifest_entries`` lists those locations by task slug and
``write_manifest`` stores them as one JSON document next to the results::

    {"run_id": "...", "flow": "etl", "entries": {"extract": "/abs/extract.pkl", "load[2]": "..."}}

at ``flowrelay-checkpoints/<run_id>.json`` under a ``LocalResult``'s dir or in an ``S3Result``'s
bucket. A retry reads it back (``read_manifest``) and turns the entries into finished states
(``restored_states``) for ``flow.run(restart_from=...)``: those tasks are not run again, as
long as nothing they depend on is.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from flowrelay.sdk.results import LocalResult, Result, S3Result, describe_error, write_atomically
from flowrelay.sdk.states import NO_VALUE_WRITTEN, State, Success

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.tasks import Task

__all__ = [
    "MANIFEST_FOLDER",
    "CheckpointError",
    "manifest_entries",
    "manifest_location",
    "manifest_result",
    "read_manifest",
    "restored_states",
    "write_manifest",
]

MANIFEST_FOLDER = "flowrelay-checkpoints"

_CHILD = re.compile(r"^(?P<slug>.+)\[(?P<index>\d+)\]$")


class CheckpointError(Exception):
    """A manifest could not be written or read; the message names where and why."""


def manifest_entries(flow: Flow, flow_state: State) -> dict[str, str]:
    """Task slug -> location of every successful task state with a checkpoint location in
    ``flow_state.result``; a mapped task's children as ``"slug[i]"`` (each by the same rule, so
    the children that succeeded are kept when others failed). Parameters are left out: a new
    attempt is given its parameters again."""
    from flowrelay.sdk.tasks import Parameter

    states = flow_state.result
    if not isinstance(states, dict):
        return {}
    entries: dict[str, str] = {}
    for task, state in states.items():
        if isinstance(task, Parameter) or not isinstance(state, State):
            continue
        slug = flow.slug(task)
        if state.is_successful() and state.location is not None:
            entries[slug] = state.location
        for index, child in enumerate(state.map_states or ()):
            if child.is_successful() and child.location is not None:
                entries[f"{slug}[{index}]"] = child.location
    return entries


def manifest_result(flow: Flow) -> Result | None:
    """The result whose storage holds the flow's manifest: the flow's ``result=`` when it can
    hold one (a ``LocalResult`` or ``S3Result``), else that of the first checkpointed task (by
    slug) that has one; None when there is none."""
    flow_result = getattr(flow, "result", None)
    if _can_hold_manifest(flow_result):
        return flow_result
    for task in sorted(flow.tasks, key=flow.slug):
        result = getattr(task, "result", None)
        # checkpoint=None means "as configured", which the engine decides; only an explicit
        # False says this task's result is never written.
        if getattr(task, "checkpoint", None) is not False and _can_hold_manifest(result):
            return result
    return None


def _can_hold_manifest(result: object) -> bool:
    return isinstance(result, LocalResult | S3Result)


def manifest_location(run_id: str) -> str:
    """``flowrelay-checkpoints/<run_id>.json`` (characters a key or file name cannot safely
    hold replaced by ``-``)."""
    safe = re.sub(r"[^A-Za-z0-9_.=-]", "-", run_id).lstrip(".") or "run"
    return f"{MANIFEST_FOLDER}/{safe}.json"


def write_manifest(result: Result, run_id: str, flow_name: str, entries: dict[str, str]) -> str:
    """Store the manifest of run ``run_id`` where ``result`` stores values; returns its URI,
    ``file:///abs/path`` or ``s3://bucket/key``."""
    document = json.dumps(
        {"run_id": run_id, "flow": flow_name, "entries": dict(sorted(entries.items()))},
        indent=1,
    ).encode()
    location = manifest_location(run_id)
    if isinstance(result, LocalResult):
        path = os.path.abspath(os.path.join(result.dir, *location.split("/")))
        uri = _file_uri(path)
        try:
            # Renamed into place: a retry never reads a half-written manifest.
            write_atomically(path, document)
        except OSError as exc:
            raise CheckpointError(
                f"cannot write checkpoint manifest {uri}: {exc.strerror or exc}"
            ) from exc
        return uri
    if isinstance(result, S3Result):
        uri = result.uri(location)
        try:
            result.client.put_object(
                Bucket=result.bucket,
                Key=location,
                Body=document,
                ContentType="application/json",
            )
        except Exception as exc:
            raise CheckpointError(
                f"cannot write checkpoint manifest {uri}: {describe_error(exc)}"
            ) from exc
        return uri
    raise CheckpointError(
        f"a {type(result).__name__} cannot hold a checkpoint manifest: give the flow "
        "result=LocalResult(...) or result=S3Result(...)"
    )


def read_manifest(uri: str, client: Any = None) -> dict[str, str]:
    """The entries of the manifest at ``uri`` (``file://`` or ``s3://``); ``client``: the S3
    client for an ``s3://`` URI (one is made from boto3's configuration when not given)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        path = url2pathname(unquote(parsed.path))
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise CheckpointError(
                f"cannot read checkpoint manifest {uri}: {exc.strerror or exc}"
            ) from exc
    elif parsed.scheme == "s3" and parsed.netloc and parsed.path.strip("/"):
        if client is None:
            import boto3

            client = boto3.client("s3")
        try:
            response = client.get_object(Bucket=parsed.netloc, Key=parsed.path[1:])
            data = response["Body"].read()
        except Exception as exc:
            raise CheckpointError(
                f"cannot read checkpoint manifest {uri}: {describe_error(exc)}"
            ) from exc
    else:
        raise CheckpointError(
            f"checkpoint manifest {uri!r} is not a file:///path or s3://bucket/key URI"
        )
    return _entries(uri, data)


def _entries(uri: str, data: bytes) -> dict[str, str]:
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint manifest {uri} is not JSON: {exc}") from exc
    entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in entries.items()
    ):
        raise CheckpointError(
            f"checkpoint manifest {uri} has no 'entries' object of task slug -> location"
        )
    return entries


def restored_states(flow: Flow, entries: dict[str, str]) -> tuple[dict[str, State], list[str]]:
    """Finished states for the entries of a manifest, keyed as the entries are (``"slug"``,
    ``"slug[3]"``): ``Success(result=value, location=location)`` with the value read back through
    the task's ``result`` (or the flow's); a location of ``""`` restores the value None. Entries
    that cannot be restored are left out (their tasks run again) and described, one line each,
    in the returned list."""
    tasks = {flow.slug(task): task for task in flow.tasks}
    states: dict[str, State] = {}
    problems: list[str] = []
    for key, location in sorted(entries.items()):
        task = _task_for(tasks, key)
        if task is None:
            problems.append(f"{key}: flow {flow.name!r} has no task with this slug; it runs again")
            continue
        result = getattr(task, "result", None) or getattr(flow, "result", None)
        if location == NO_VALUE_WRITTEN:
            states[key] = Success(result=None, location=location)
            continue
        if not isinstance(result, Result):
            problems.append(
                f"{key}: neither the task nor the flow has a result= to read {location} with; "
                "it runs again"
            )
            continue
        try:
            value = result.read(location).value
        except Exception as exc:
            problems.append(f"{key}: {describe_error(exc)}; it runs again")
            continue
        states[key] = Success(result=value, location=location)
    return states, problems


def _task_for(tasks: dict[str, Task], key: str) -> Task | None:
    if key in tasks:
        return tasks[key]
    child = _CHILD.match(key)
    return tasks.get(child.group("slug")) if child else None


def _file_uri(path: str) -> str:
    return Path(path).as_uri()
