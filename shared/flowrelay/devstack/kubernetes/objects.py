"""What the dev stack's Kubernetes API knows of objects, in the API server's own words: the
resources it serves, its ``Status`` errors, the validation of names and labels, and label and
field selectors.

Messages are those of the real API server (``k8s.io/apimachinery``), because flowrelay's
launcher reads some of them and shows others to users as they are: a test that passes here
should pass against a cluster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One served resource: where it lives in the API and what the API server calls it."""

    group: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False
    """Whether it has a ``status`` subresource: the main resource then ignores status changes."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/v1" if self.group else "v1"

    @property
    def qualified(self) -> str:
        """``jobs.batch``, ``pods``: how NotFound and AlreadyExists name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """``Job.batch``, ``Pod``: how Invalid names the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


#: The API group of the Dask operator's custom resources (dask-kubernetes).
DASK_GROUP = "kubernetes.dask.org"
KINDS: dict[tuple[str, str], Kind] = {
    (kind.group, kind.plural): kind
    for kind in (
        Kind("batch", "jobs", "Job", status=True),
        Kind("", "pods", "Pod", status=True),
        Kind("", "events", "Event"),
        Kind("", "secrets", "Secret"),
        Kind("", "configmaps", "ConfigMap"),
        Kind("", "serviceaccounts", "ServiceAccount"),
        Kind("", "namespaces", "Namespace", namespaced=False, status=True),
        Kind("", "services", "Service", status=True),
        # The Dask operator's custom resources (dask-kubernetes's CRDs, as if installed): no
        # status subresource, as those CRDs declare none (the operator patches the object).
        Kind(DASK_GROUP, "daskclusters", "DaskCluster"),
        Kind(DASK_GROUP, "daskworkergroups", "DaskWorkerGroup"),
        Kind(DASK_GROUP, "daskautoscalers", "DaskAutoscaler"),
    )
}


class ApiError(Exception):
    """An answer of the API server other than success: rendered as a ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})
        self.headers = dict(headers or {})

    def status(self) -> dict[str, Any]:
        """The ``Status`` body, as the API server writes it (``details`` only when known)."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _details(kind: Kind, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind.plural}
    if kind.group:
        details["group"] = kind.group
    return details


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def already_exists(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409, "AlreadyExists", f'{kind.qualified} "{name}" already exists', _details(kind, name)
    )


def conflict(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(kind, name),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


@dataclass(frozen=True)
class FieldError:
    """One validation error: ``field: Invalid value: "x": detail`` and the like."""

    field: str
    kind: str  # "Invalid value", "Required value", "Unsupported value", "Too long"
    detail: str
    value: str | None = None

    @property
    def reason(self) -> str:
        return {
            "Invalid value": "FieldValueInvalid",
            "Required value": "FieldValueRequired",
            "Unsupported value": "FieldValueNotSupported",
        }.get(self.kind, "FieldValueInvalid")

    def text(self) -> str:
        """What follows the field name in the API server's message."""
        if self.value is None:
            return f"{self.kind}: {self.detail}" if self.detail else self.kind
        return f'{self.kind}: "{self.value}": {self.detail}'


def invalid(kind: Kind, name: str, errors: list[FieldError]) -> ApiError:
    """422 Invalid, worded as the API server words it (one error, or a bracketed list)."""
    parts = [f"{error.field}: {error.text()}" for error in errors]
    listed = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = {
        "name": name,
        "kind": kind.kind,
        "causes": [
            {"reason": error.reason, "message": error.text(), "field": error.field}
            for error in errors
        ],
    }
    if kind.group:
        details["group"] = kind.group
    return ApiError(422, "Invalid", f'{kind.qualified_kind} "{name}" is invalid: {listed}', details)


# --- names and labels (k8s.io/apimachinery/pkg/util/validation) --------------------------------

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{DNS1123_SUBDOMAIN}')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    f"validation is '{QUALIFIED_NAME}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{LABEL_VALUE}')"
)
#: The longest label value, and so the longest Job name (its pods carry it as ``job-name``).
LABEL_MAX = 63


def subdomain_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 subdomain (empty when it is one)."""
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not re.fullmatch(DNS1123_SUBDOMAIN, value):
        problems.append(SUBDOMAIN_MESSAGE)
    return problems


def name_errors(kind: Kind, name: str) -> list[FieldError]:
    """The errors of ``metadata.name``: a DNS-1123 subdomain, and for a Job at most 63
    characters, because its pods carry it as the value of their ``job-name`` label."""
    errors = [
        FieldError("metadata.name", "Invalid value", p, name) for p in subdomain_problems(name)
    ]
    if kind.plural == "jobs" and len(name) > LABEL_MAX:
        errors.append(
            FieldError(
                "metadata.name",
                "Invalid value",
                f"must be no more than {LABEL_MAX} characters",
                name,
            )
        )
    return errors


def label_errors(labels: Any, field: str) -> list[FieldError]:
    """The errors of a label map: qualified-name keys (an optional DNS subdomain prefix and a
    name of at most 63 characters) and values of at most 63 characters."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError(field, "Invalid value", "must be a map of strings", str(labels))]
    errors = []
    for raw_key, value in labels.items():
        key = str(raw_key)
        prefix, _, name = key.rpartition("/")
        if prefix or "/" in key:
            if not prefix:
                errors.append(
                    FieldError(field, "Invalid value", "prefix part must be non-empty", key)
                )
            for problem in subdomain_problems(prefix) if prefix else []:
                errors.append(FieldError(field, "Invalid value", f"prefix part {problem}", key))
        if not name:
            errors.append(FieldError(field, "Invalid value", "name part must be non-empty", key))
        elif len(name) > LABEL_MAX:
            errors.append(
                FieldError(
                    field, "Invalid value", "name part must be no more than 63 characters", key
                )
            )
        if name and not re.fullmatch(QUALIFIED_NAME, name):
            errors.append(FieldError(field, "Invalid value", QUALIFIED_NAME_MESSAGE, key))
        if not isinstance(value, str):
            errors.append(FieldError(field, "Invalid value", "must be a string", str(value)))
            continue
        if len(value) > LABEL_MAX:
            errors.append(
                FieldError(
                    field, "Invalid value", f"must be no more than {LABEL_MAX} characters", value
                )
            )
        if not re.fullmatch(LABEL_VALUE, value):
            errors.append(FieldError(field, "Invalid value", LABEL_VALUE_MESSAGE, value))
    return errors


# --- selectors ---------------------------------------------------------------------------------

Requirement = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*(!?)\s*([^\s=!(),]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_COMPARE = re.compile(r"^\s*([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)\s*$")


def _split(selector: str) -> list[str]:
    """The requirements of a selector: commas, except those inside ``in (a, b)``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def label_selector(selector: str) -> Requirement:
    """A predicate on labels for ``labelSelector``: ``k=v``, ``k==v``, ``k!=v``,
    ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists), ``!k`` (does not exist).
    ``ApiError`` 400 for anything else.

    >>> label_selector("app in (a, b),!gone,tier!=web")({"app": "b", "tier": "db"})
    True
    """
    requirements: list[Requirement] = []
    for part in _split(selector):
        compare = _COMPARE.match(part)
        if compare:
            key, op, value = compare.groups()
            requirements.append(_requirement(key, "!=" if op == "!=" else "=", {value}))
            continue
        match = _SET.match(part)
        if not match:
            raise bad_request(f"unable to parse requirement: found '{part.strip()}'")
        negated, key, op, values = match.groups()
        if op is None:
            requirements.append(_requirement(key, "!" if negated else "exists", set()))
            continue
        if negated:
            raise bad_request(f"unable to parse requirement: found '{part.strip()}'")
        chosen = {value.strip() for value in values.split(",") if value.strip()}
        requirements.append(_requirement(key, op, chosen))

    def selected(labels: Mapping[str, str]) -> bool:
        return all(requirement(labels) for requirement in requirements)

    return selected


def _requirement(key: str, op: str, values: set[str]) -> Requirement:
    """One requirement of a label selector (``op``: =, !=, in, notin, exists, !)."""

    def check(labels: Mapping[str, str]) -> bool:
        present, value = key in labels, labels.get(key)
        if op == "exists":
            return present
        if op == "!":
            return not present
        if op in ("=", "in"):
            return present and value in values
        return value not in values  # != and notin: also true without the label

    return check


#: The fields each resource can be selected by (besides metadata.name and metadata.namespace).
SELECTABLE_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("status.phase", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName"),
    "events": (
        "involvedObject.kind",
        "involvedObject.name",
        "involvedObject.namespace",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.fieldPath",
        "reason",
        "source",
        "type",
    ),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "jobs": ("status.successful",),
    "services": ("spec.clusterIP", "spec.type"),
}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value of a selectable field, as a string ("" when absent)."""
    if path == "status.successful":
        return str((obj.get("status") or {}).get("succeeded") or 0)
    if path == "source":
        return str((obj.get("source") or {}).get("component") or "")
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_selector(selector: str, plural: str) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate on objects for ``fieldSelector`` (``=``, ``==``, ``!=`` on the fields the
    API server lets select ``plural``). 400 ``field label not supported`` for any other field."""
    allowed = ("metadata.name", "metadata.namespace", *SELECTABLE_FIELDS.get(plural, ()))
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for part in _split(selector):
        match = _COMPARE.match(part)
        if not match:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part.strip()}'")
        path, op, value = match.groups()
        if path not in allowed:
            raise bad_request(f"field label not supported: {path}")
        checks.append(_field_check(path, op == "!=", value))

    def selected(obj: Mapping[str, Any]) -> bool:
        return all(check(obj) for check in checks)

    return selected


def _field_check(path: str, negated: bool, value: str) -> Callable[[Mapping[str, Any]], bool]:
    def check(obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, path) == value) != negated

    return check
