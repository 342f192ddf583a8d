"""How flowrelay names and marks what it creates on Kubernetes.

A run id may be 64 characters of any case with ``_`` and ``.``; a Job name must be a DNS-1123
label of at most 63 characters (the Job controller copies it into a label of its pods), and a
label value at most 63 characters of ``[A-Za-z0-9._-]``. So names and label values are a
readable prefix of the run id, cleaned, plus a hash of the whole id: deterministic (the same
run and attempt always give the same Job name, which is what makes a create idempotent) and
distinct for distinct ids. The exact run id and flow name ride in annotations, which take any
text.

>>> job_name("Run_ABC.1", 2)
'fr-run-abc-1-5170e3f67f-2'
>>> run_key("Run_ABC.1")
'Run_ABC.1-5170e3f67f5a'
>>> len(run_key("x" * 64))
63
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

#: The label every object flowrelay creates carries (the recommended Kubernetes label).
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "flowrelay"
RUN_KEY_LABEL = "flowrelay.dev/run-key"
ATTEMPT_LABEL = "flowrelay.dev/attempt"
FLOW_LABEL = "flowrelay.dev/flow"
RUN_ID_ANNOTATION = "flowrelay.dev/run-id"
FLOW_NAME_ANNOTATION = "flowrelay.dev/flow-name"
#: The container that runs the flow, unless a job template names its own containers (then the
#: one named so, else the first).
CONTAINER_NAME = "flow"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_DNS = re.compile(r"[^a-z0-9]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_LABEL = 63


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def job_name(run_id: str, attempt: int) -> str:
    """The Job of attempt ``attempt`` of run ``run_id``: ``fr-<prefix>-<10 hex of the id's
    sha256>-<attempt>``, a DNS-1123 label of at most 63 characters."""
    prefix = _NOT_DNS.sub("-", run_id.lower()).strip("-")[:32].strip("-")
    parts = ["fr", prefix, _digest(run_id, 10), str(attempt)]
    return "-".join(part for part in parts if part)


def run_key(run_id: str) -> str:
    """The run's label value: a cleaned prefix of the id and a hash of the whole id, always
    (were a valid id used as it is, another id could be chosen to equal some id's key)."""
    prefix = label_value(run_id, keep=_MAX_LABEL - 13)
    return f"{prefix}-{_digest(run_id, 12)}" if prefix else _digest(run_id, 12)


def label_value(text: str, keep: int = _MAX_LABEL) -> str:
    """``text`` cleaned into a label value (what labels can say of a flow name: the exact name
    is in an annotation). Empty when nothing of it is usable."""
    cleaned = _NOT_LABEL.sub("-", text)[:keep]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def run_labels(run_id: str, attempt: int, flow_name: str | None) -> dict[str, str]:
    """The labels of a run's Job and pod: who manages it, which run, which attempt, which flow."""
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY,
        RUN_KEY_LABEL: run_key(run_id),
        ATTEMPT_LABEL: str(attempt),
    }
    flow = label_value(flow_name or "")
    if flow:
        labels[FLOW_LABEL] = flow
    return labels


def run_selector(run_id: str, attempt: int | None = None) -> str:
    """A label selector for the Jobs (or pods) of run ``run_id`` (of one attempt, when given)."""
    parts = [f"{MANAGED_BY_LABEL}={MANAGED_BY}", f"{RUN_KEY_LABEL}={run_key(run_id)}"]
    if attempt is not None:
        parts.append(f"{ATTEMPT_LABEL}={attempt}")
    return ",".join(parts)


def run_annotations(run_id: str, flow_name: str | None) -> dict[str, str]:
    """The annotations of a run's Job and pod: the exact run id (and flow name)."""
    annotations = {RUN_ID_ANNOTATION: run_id}
    if flow_name:
        annotations[FLOW_NAME_ANNOTATION] = flow_name
    return annotations


def belongs_to(metadata: Mapping[str, object], run_id: str, attempt: int) -> bool:
    """Whether an object's metadata says it is attempt ``attempt`` of run ``run_id``."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    if not isinstance(labels, Mapping) or not isinstance(annotations, Mapping):
        return False
    return (
        labels.get(MANAGED_BY_LABEL) == MANAGED_BY
        and labels.get(ATTEMPT_LABEL) == str(attempt)
        and annotations.get(RUN_ID_ANNOTATION) == run_id
    )


def run_id_of(metadata: Mapping[str, object]) -> str | None:
    """The run id an object's annotations carry, if it is a flowrelay run's."""
    annotations = metadata.get("annotations") or {}
    if isinstance(annotations, Mapping):
        value = annotations.get(RUN_ID_ANNOTATION)
        return value if isinstance(value, str) else None
    return None
