"""The objects of the dev stack's Kubernetes API and what the API server and its garbage
collector do with them: defaults and metadata on create, validation, selectors, merge patches,
the status subresource, graceful pod deletion and the three propagation policies.

Synchronous and without I/O: ``api.py`` calls it from its event loop, one request at a time, so
each call is atomic as a write to etcd is.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import ipaddress
import secrets
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jsonpatch

from flowrelay.devstack.kubernetes.objects import (
    KINDS,
    ApiError,
    FieldError,
    Kind,
    already_exists,
    bad_request,
    conflict,
    field_selector,
    invalid,
    label_errors,
    label_selector,
    name_errors,
    not_found,
)

Object = dict[str, Any]
#: Where the GC policy of a deletion can be given, and what each kind defaults to: batch/v1 Jobs
#: deleted through the API orphan their pods (the REST strategy's default for that version).
DEFAULT_PROPAGATION = {"jobs": "Orphan"}
PROPAGATION = ("Orphan", "Background", "Foreground")
#: What a pod's deletion waits for when neither the request nor the pod says (Kubernetes: 30).
DEFAULT_GRACE_SECONDS = 30
#: The characters of a generated name suffix (``generateName``), as the API server picks them.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
NODE_NAME_LABEL = "kubernetes.io/metadata.name"
#: Where Services get their cluster IP when their creator names none: loopback, unreachable.
SERVICE_NETWORK = ipaddress.IPv4Network("127.96.0.0/16")
JOB_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "job-name",
)


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes ``metav1.Time``."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` removes, anything else
    (lists included) replaces.

    >>> merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]})
    {'a': {'c': 2}, 'l': [2]}
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class Store:
    """Every object of the emulated cluster, by (resource, namespace, name)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.objects: dict[tuple[str, str, str], Object] = {}
        self.version = 0

    # --- helpers -----------------------------------------------------------------------------

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    def _now(self) -> str:
        return timestamp(self.clock())

    def _find(self, kind: Kind, namespace: str, name: str) -> Object:
        obj = self.objects.get((kind.plural, namespace, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    def _of(self, plural: str, namespace: str | None = None) -> Iterator[Object]:
        for (resource, ns, _), obj in list(self.objects.items()):
            if resource == plural and (namespace is None or ns == namespace):
                yield obj

    def _typed(self, kind: Kind, obj: Object) -> Object:
        return {"kind": kind.kind, "apiVersion": kind.api_version, **copy.deepcopy(obj)}

    def namespace_of(self, kind: Kind, namespace: str | None) -> str:
        """The namespace a request names (``""`` for cluster-wide kinds); 404 when a namespaced
        request names a namespace that does not exist."""
        if not kind.namespaced:
            return ""
        if not namespace:
            raise bad_request("the namespace of the object is required")
        if ("namespaces", "", namespace) not in self.objects:
            raise not_found(KINDS[("", "namespaces")], namespace)
        return namespace

    # --- create ------------------------------------------------------------------------------

    def create(self, kind: Kind, namespace: str | None, body: Any) -> Object:
        if not isinstance(body, dict):
            raise bad_request("the body of the request is not a JSON object")
        obj = copy.deepcopy(body)
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        given = meta.get("namespace")
        if kind.namespaced and given and namespace and given != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        ns = self.namespace_of(kind, namespace or given)
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = str(meta["generateName"]) + "".join(
                secrets.choice(NAME_ALPHABET) for _ in range(5)
            )
        if not name:
            raise invalid(
                kind,
                "",
                [FieldError("metadata.name", "Required value", "name or generateName is required")],
            )
        name = str(name)
        namespace_record = self.objects.get(("namespaces", "", ns)) if ns else None
        if namespace_record and namespace_record.get("metadata", {}).get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{kind.qualified} "{name}" is forbidden: unable to create new content in '
                f"namespace {ns} because it is being terminated",
                {
                    "name": name,
                    "kind": kind.plural,
                    **({"group": kind.group} if kind.group else {}),
                },
            )
        if (kind.plural, ns, name) in self.objects:
            raise already_exists(kind, name)
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = self._now()
        self._default(kind, obj)
        self._validate(kind, obj)
        if kind.plural in ("jobs", "pods"):
            meta["generation"] = 1
        meta["resourceVersion"] = self._next_version()
        self.objects[(kind.plural, ns, name)] = obj
        return self._typed(kind, obj)

    def _default(self, kind: Kind, obj: Object) -> None:
        """What the API server's defaulting and admission fill in."""
        meta = obj["metadata"]
        if kind.plural == "namespaces":
            meta.setdefault("labels", {})[NODE_NAME_LABEL] = meta["name"]
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        elif kind.plural == "secrets":
            obj.setdefault("type", "Opaque")
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {}) if (string_data or "data" in obj) else None
            if data is not None:
                for key, value in data.items():
                    try:
                        base64.b64decode(str(value), validate=True)
                    except (binascii.Error, ValueError):
                        raise bad_request(
                            f"illegal base64 data in secret {meta['name']} key {key}"
                        ) from None
                for key, value in string_data.items():
                    data[key] = base64.b64encode(str(value).encode()).decode()
        elif kind.plural == "pods":
            spec = obj.setdefault("spec", {})
            _default_pod_spec(spec)
            obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}
        elif kind.plural == "services":
            self._default_service(kind, obj)
        elif kind.plural == "jobs":
            spec = obj.setdefault("spec", {})
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            spec.setdefault("manualSelector", None)
            if spec.get("manualSelector") is None:
                spec.pop("manualSelector")
            template = spec.setdefault("template", {})
            labels = template.setdefault("metadata", {}).setdefault("labels", {})
            uid, name = meta["uid"], meta["name"]
            labels.update(dict(zip(JOB_LABELS, (uid, uid, name, name), strict=True)))
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
            _default_pod_spec(template.setdefault("spec", {}))
            obj["status"] = {}

    def _default_service(self, kind: Kind, obj: Object) -> None:
        """A Service's defaults and its cluster IP. The dev stack has no kube-proxy: a cluster
        IP is only reachable where something listens on it, so a creator may name any loopback
        address (the Dask operator's emulation names its scheduler pod's); one not named is
        allocated from ``SERVICE_NETWORK``, where nothing listens."""
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            raise bad_request("spec must be an object")
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        given = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if given and given != "None":
            try:
                address = ipaddress.ip_address(str(given))
            except ValueError:
                address = None
            taken = {(o.get("spec") or {}).get("clusterIP") for o in self._of("services")}
            if address is None or not address.is_loopback or address.version != 4:
                problem = (
                    f"the provided IP ({given}) is not in the valid range. The range of valid "
                    f"IPs is 127.0.0.0/8"
                )
            elif str(address) in taken:
                problem = "provided IP is already allocated"
            else:
                problem = None
            if problem is not None:
                message = f"failed to allocate IP {given}: {problem}"
                error = FieldError("spec.clusterIPs", "Invalid value", message, f'["{given}"]')
                raise invalid(kind, str(obj["metadata"]["name"]), [error])
            chosen = str(address)
        elif given == "None":
            chosen = "None"
        else:
            chosen = self._free_service_ip()
        spec["clusterIP"] = chosen
        spec["clusterIPs"] = [chosen]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        obj["status"] = {"loadBalancer": {}}

    def _free_service_ip(self) -> str:
        taken = {(o.get("spec") or {}).get("clusterIP") for o in self._of("services")}
        for host in SERVICE_NETWORK.hosts():
            if str(host) not in taken:
                return str(host)
        raise ApiError(500, "InternalError", "Internal error occurred: range is full")

    def _validate(self, kind: Kind, obj: Object) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        errors = name_errors(kind, name) if kind.plural != "events" else []
        errors += label_errors(meta.get("labels"), "metadata.labels")
        if kind.plural == "pods":
            errors += _pod_spec_errors(obj.get("spec") or {}, "spec")
        elif kind.plural == "jobs":
            template = (obj.get("spec") or {}).get("template") or {}
            errors += label_errors(
                (template.get("metadata") or {}).get("labels"), "spec.template.labels"
            )
            pod_spec = template.get("spec") or {}
            errors += _pod_spec_errors(pod_spec, "spec.template.spec")
            policy = pod_spec.get("restartPolicy")
            if policy not in ("Never", "OnFailure"):
                errors.append(
                    FieldError(
                        "spec.template.spec.restartPolicy",
                        "Unsupported value",
                        'supported values: "OnFailure", "Never"',
                        str(policy),
                    )
                )
        if errors:
            raise invalid(kind, name, errors)

    # --- read --------------------------------------------------------------------------------

    def get(self, kind: Kind, namespace: str | None, name: str) -> Object:
        ns = namespace or "" if kind.namespaced else ""
        return self._typed(kind, self._find(kind, ns, name))

    def list_of(
        self,
        kind: Kind,
        namespace: str | None,
        labels: str | None = None,
        fields: str | None = None,
    ) -> Object:
        by_labels = label_selector(labels or "")
        by_fields = field_selector(fields or "", kind.plural)
        items = [
            copy.deepcopy(obj)
            for obj in self._of(kind.plural, namespace if kind.namespaced else None)
            if by_labels(obj.get("metadata", {}).get("labels") or {}) and by_fields(obj)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.api_version,
            "metadata": {"resourceVersion": str(self.version)},
            "items": items,
        }

    # --- write -------------------------------------------------------------------------------

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None,
    ) -> Object:
        ns = (namespace or "") if kind.namespaced else ""
        old = self._find(kind, ns, name)
        media = content_type.split(";", maxsplit=1)[0].strip()
        try:
            if media in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(patch, dict):
                    raise bad_request("a merge patch must be a JSON object")
                new = merge_patch(old, patch)
            elif media == "application/json-patch+json":
                new = jsonpatch.apply_patch(old, patch)
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: application/json-patch+json, application/merge-patch+json, "
                    f"application/strategic-merge-patch+json (not {media!r})",
                )
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request: {exc}") from None
        return self._update(kind, old, new, subresource)

    def replace(
        self, kind: Kind, namespace: str | None, name: str, body: Any, subresource: str | None
    ) -> Object:
        ns = (namespace or "") if kind.namespaced else ""
        old = self._find(kind, ns, name)
        if not isinstance(body, dict):
            raise bad_request("the body of the request is not a JSON object")
        body_name = (body.get("metadata") or {}).get("name")
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        new = copy.deepcopy(body)
        new.pop("kind", None)
        new.pop("apiVersion", None)
        return self._update(kind, old, new, subresource)

    def _update(self, kind: Kind, old: Object, new: Object, subresource: str | None) -> Object:
        meta_old = old["metadata"]
        meta = new.setdefault("metadata", {})
        wanted = meta.get("resourceVersion")
        if wanted and wanted != meta_old["resourceVersion"]:
            raise conflict(kind, meta_old["name"])
        if kind.status and subresource == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status", {})
            new = merged
            meta = new["metadata"]
        elif kind.status and "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        for field in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if field in meta_old:
                meta[field] = meta_old[field]
            else:
                meta.pop(field, None)
        if kind.plural == "services":
            old_ip = (old.get("spec") or {}).get("clusterIP")
            spec = new.get("spec")
            if isinstance(spec, dict) and spec.get("clusterIP", old_ip) != old_ip:
                raise invalid(
                    kind,
                    meta_old["name"],
                    [FieldError("spec.clusterIPs[0]", "Invalid value", "may not change once set")],
                )
            if isinstance(spec, dict):
                spec["clusterIP"] = old_ip
                spec["clusterIPs"] = [old_ip]
        self._validate(kind, new)
        if new == old:
            return self._typed(kind, old)  # no change: no new resourceVersion, as the API does
        if "generation" in meta_old and new.get("spec") != old.get("spec"):
            meta["generation"] = meta_old["generation"] + 1
        meta["resourceVersion"] = self._next_version()
        self.objects[(kind.plural, meta_old.get("namespace", ""), meta_old["name"])] = new
        self.collect_garbage()
        return self._typed(kind, new)

    def bind(self, namespace: str, name: str, body: Any) -> Object:
        """``pods/binding``: the scheduler's assignment of a pod to a node."""
        pods = KINDS[("", "pods")]
        pod = self._find(pods, namespace, name)
        target = ((body or {}).get("target") or {}).get("name") if isinstance(body, dict) else None
        if not target:
            raise invalid(
                KINDS[("", "pods")], name, [FieldError("target.name", "Required value", "")]
            )
        spec = pod.setdefault("spec", {})
        if spec.get("nodeName"):
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{name}": pod {name} is already '
                f'assigned to node "{spec["nodeName"]}"',
                {"name": name, "kind": "pods/binding"},
            )
        spec["nodeName"] = str(target)
        pod["metadata"]["resourceVersion"] = self._next_version()
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    # --- delete ------------------------------------------------------------------------------

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        propagation: str | None,
        grace_seconds: int | None,
        precondition_uid: str | None = None,
    ) -> Object:
        ns = (namespace or "") if kind.namespaced else ""
        obj = self._find(kind, ns, name)
        meta = obj["metadata"]
        if precondition_uid and precondition_uid != meta["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {precondition_uid}, UID in object "
                f"meta: {meta['uid']}",
                {"name": name, "kind": kind.plural},
            )
        policy = propagation or DEFAULT_PROPAGATION.get(kind.plural, "Background")
        if policy not in PROPAGATION:
            raise invalid(
                kind,
                name,
                [
                    FieldError(
                        "propagationPolicy",
                        "Unsupported value",
                        'supported values: "Foreground", "Background", "Orphan", "nil"',
                        policy,
                    )
                ],
            )
        if kind.plural == "pods":
            # Graceful: a pod stays until its kubelet has ended it. Either way the API answers
            # the pod itself (its registry returns deleted objects), not a Status.
            self._delete_pod(obj, grace_seconds)
            self.collect_garbage()
            return self._typed(kind, obj)
        uid = meta["uid"]
        if policy == "Orphan":
            for dependent in self._dependents(uid):
                refs = [r for r in dependent["metadata"]["ownerReferences"] if r.get("uid") != uid]
                if refs:
                    dependent["metadata"]["ownerReferences"] = refs
                else:
                    dependent["metadata"].pop("ownerReferences")
                dependent["metadata"]["resourceVersion"] = self._next_version()
        if kind.plural == "namespaces" or policy == "Foreground" or meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = self._now()
                meta["deletionGracePeriodSeconds"] = 0
            if policy == "Foreground":
                finalizers = meta.setdefault("finalizers", [])
                if "foregroundDeletion" not in finalizers:
                    finalizers.append("foregroundDeletion")
            if kind.plural == "namespaces":
                obj.setdefault("status", {})["phase"] = "Terminating"
                for (_, ns_of, _), member in list(self.objects.items()):
                    if ns_of == name:
                        self._delete_member(member)
            else:
                for dependent in self._dependents(uid):
                    self._delete_member(dependent)
            meta["resourceVersion"] = self._next_version()
            self.collect_garbage()
            found = self.objects.get((kind.plural, ns, name))
            return self._typed(kind, found) if found is not None else self._success(kind, obj)
        del self.objects[(kind.plural, ns, name)]
        self.collect_garbage()
        return self._success(kind, obj)

    def _success(self, kind: Kind, obj: Object) -> Object:
        details: dict[str, Any] = {
            "name": obj["metadata"]["name"],
            "kind": kind.plural,
            "uid": obj["metadata"]["uid"],
        }
        if kind.group:
            details["group"] = kind.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _delete_pod(self, pod: Object, grace_seconds: int | None) -> bool:
        """Delete a pod as the API server does; True while it stays, terminating gracefully: a
        pod bound to a node and not yet finished waits for its kubelet (which deletes it again
        with a grace of 0 once its containers have ended)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        grace = grace_seconds
        if grace is None:
            grace = int(spec.get("terminationGracePeriodSeconds") or DEFAULT_GRACE_SECONDS)
        phase = (pod.get("status") or {}).get("phase")
        if grace > 0 and spec.get("nodeName") and phase not in ("Succeeded", "Failed"):
            current = meta.get("deletionGracePeriodSeconds")
            if current is None or grace < current:
                meta["deletionTimestamp"] = timestamp(self.clock() + grace)
                meta["deletionGracePeriodSeconds"] = grace
                meta["resourceVersion"] = self._next_version()
            return True
        if meta.get("finalizers"):
            meta.setdefault("deletionTimestamp", self._now())
            meta["deletionGracePeriodSeconds"] = 0
            meta["resourceVersion"] = self._next_version()
            return True
        self.objects.pop(("pods", meta.get("namespace", ""), meta["name"]), None)
        return False

    def _delete_member(self, obj: Object) -> None:
        """Delete what the garbage collector or the namespace controller deletes: pods
        gracefully, anything else at once (its own dependents in the background)."""
        meta = obj["metadata"]
        key = next((k for k, v in self.objects.items() if v is obj), None)
        if key is None:
            return
        if key[0] == "pods":
            self._delete_pod(obj, None)
        elif meta.get("finalizers"):
            meta.setdefault("deletionTimestamp", self._now())
        else:
            del self.objects[key]

    def _dependents(self, uid: str) -> list[Object]:
        return [
            obj
            for obj in self.objects.values()
            if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])
        ]

    def collect_garbage(self) -> None:
        """What the garbage collector and the namespace controller do, at once: delete
        dependents whose owners are all gone (in the background), remove foreground-deleted
        owners whose dependents are gone, and namespaces being deleted once empty."""
        changed = True
        while changed:
            changed = False
            uids = {obj["metadata"]["uid"] for obj in self.objects.values()}
            for key, obj in list(self.objects.items()):
                meta = obj["metadata"]
                refs = meta.get("ownerReferences") or []
                orphaned = refs and not any(ref.get("uid") in uids for ref in refs)
                if orphaned and not meta.get("deletionTimestamp"):
                    before = len(self.objects)
                    self._delete_member(obj)
                    changed = changed or len(self.objects) != before
                finalizers = meta.get("finalizers") or []
                foreground = "foregroundDeletion" in finalizers
                if (
                    meta.get("deletionTimestamp")
                    and foreground
                    and not self._dependents(meta["uid"])
                ):
                    finalizers.remove("foregroundDeletion")
                    changed = True
                emptied = not any(k[1] == key[2] for k in self.objects)
                if key[0] == "namespaces" and meta.get("deletionTimestamp") and emptied:
                    del self.objects[key]
                    changed = True
                    continue
                pod_waiting = key[0] == "pods" and meta.get("deletionGracePeriodSeconds")
                if (
                    meta.get("deletionTimestamp")
                    and not meta.get("finalizers")
                    and key[0] != "namespaces"
                    and not pod_waiting
                    and key in self.objects
                ):
                    del self.objects[key]
                    changed = True

    # --- logs --------------------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> Object:
        return self._find(KINDS[("", "pods")], namespace, name)


def _default_pod_spec(spec: Object) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("securityContext", {})
    for container in spec.get("containers") or []:
        if not isinstance(container, dict):
            continue
        image = str(container.get("image") or "")
        tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
        latest = not tagged or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


def _pod_spec_errors(spec: Mapping[str, Any], field: str) -> list[FieldError]:
    containers = spec.get("containers")
    if not containers or not isinstance(containers, list):
        return [FieldError(f"{field}.containers", "Required value", "")]
    errors = []
    for index, container in enumerate(containers):
        where = f"{field}.containers[{index}]"
        if not isinstance(container, dict):
            errors.append(FieldError(where, "Invalid value", "must be an object", str(container)))
            continue
        if not container.get("name"):
            errors.append(FieldError(f"{where}.name", "Required value", ""))
        if not container.get("image"):
            errors.append(FieldError(f"{where}.image", "Required value", ""))
    return errors


def _qos_class(spec: Mapping[str, Any]) -> str:
    resources = [
        c.get("resources") or {} for c in spec.get("containers") or [] if isinstance(c, dict)
    ]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(res) is not None
        and (r.get("requests") or {}).get(res, (r.get("limits") or {}).get(res))
        == (r.get("limits") or {}).get(res)
        for r in resources
        for res in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"
