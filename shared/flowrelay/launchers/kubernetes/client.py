"""The Kubernetes API as the launcher uses it: the official ``kubernetes`` client, one
``ApiClient`` per cluster, raw JSON in and out, every error a ``LaunchError``.

Objects are read with ``_preload_content=False`` and parsed as plain JSON: the launcher reads a
handful of fields, and the client's generated models would refuse (or silently drop) what an
older or newer API server adds. Every call has a timeout (``TIMEOUT``): a hung API server must
not hold a dispatch until Lambda kills it.

Authentication, by how the target reaches its cluster (``settings.Connection``):

- EKS: a bearer token (``flowrelay.launchers.kubernetes.eks``), refreshed by the client's
  ``refresh_api_key_hook`` before it is 14 minutes old, and minted afresh once on a 401 (the
  call is then repeated once);
- a kubeconfig: whatever it says (certificates, tokens, an exec plugin), through the client's
  own loader;
- an API server URL: its CA (``ca_file`` / ``ca_data``) and no credentials of flowrelay's.

A loopback API server is never reached through a proxy from the environment.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flowrelay.core.network import is_loopback_host
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.kubernetes.eks import EksAccess
from flowrelay.launchers.kubernetes.errors import api_error, connection_error
from flowrelay.launchers.kubernetes.settings import Connection

#: (connect, read) seconds for every call.
TIMEOUT = (5.0, 30.0)
Json = dict[str, Any]


class KubernetesApi:
    """The calls the launcher makes, on one cluster. Thread-safe (the client's connection pool
    is). ``eks``: how EKS tokens are made (one shared per launcher)."""

    def __init__(self, connection: Connection, eks: EksAccess | None = None) -> None:
        self.connection = connection
        self.eks = eks or EksAccess()
        from kubernetes import client

        api_client = self._make_client()
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)

    # --- the calls -----------------------------------------------------------------------------

    def create_job(self, namespace: str, manifest: Json) -> tuple[Json | None, Json | None]:
        """Create a Job: ``(created, None)``, or ``(None, existing)`` when a Job of that name
        exists already (409: what an earlier try of the same attempt created, or a stranger)."""
        name = str(manifest["metadata"]["name"])
        operation = f"create Job {namespace}/{name}"
        try:
            created = self._json(
                operation, self._batch.create_namespaced_job, namespace, manifest, creates=True
            )
        except LaunchError as exc:
            if exc.code != "AlreadyExists":
                raise
            existing = self.read_job(namespace, name)
            if existing is None:  # deleted in between: the caller tries again
                raise LaunchError(
                    f"{operation}: a Job of that name existed, then vanished",
                    retryable=True,
                    outcome_unknown=True,
                ) from None
            return None, existing
        return created, None

    def read_job(self, namespace: str, name: str) -> Json | None:
        """The Job, or None when the API server does not know it."""
        job: Json | None = self._json(
            f"read Job {namespace}/{name}",
            self._batch.read_namespaced_job,
            name,
            namespace,
            missing_ok=True,
        )
        return job

    def list_jobs(self, namespace: str, selector: str) -> list[Json]:
        listed = self._json(
            f"list Jobs in {namespace} ({selector})",
            self._batch.list_namespaced_job,
            namespace,
            label_selector=selector,
        )
        return list((listed or {}).get("items") or [])

    def delete_job(self, namespace: str, name: str) -> bool:
        """Delete the Job and, in the background, its pods (the API's default for a Job
        deleted through it is to orphan them); False when there was no such Job."""
        deleted = self._json(
            f"delete Job {namespace}/{name}",
            self._batch.delete_namespaced_job,
            name,
            namespace,
            propagation_policy="Background",
            missing_ok=True,
        )
        return deleted is not None

    def list_pods(self, namespace: str, selector: str) -> list[Json]:
        listed = self._json(
            f"list pods in {namespace} ({selector})",
            self._core.list_namespaced_pod,
            namespace,
            label_selector=selector,
        )
        return list((listed or {}).get("items") or [])

    def delete_pod(self, namespace: str, name: str) -> bool:
        deleted = self._json(
            f"delete pod {namespace}/{name}",
            self._core.delete_namespaced_pod,
            name,
            namespace,
            missing_ok=True,
        )
        return deleted is not None

    def list_services(self, namespace: str, selector: str) -> list[Json]:
        listed = self._json(
            f"list services in {namespace} ({selector})",
            self._core.list_namespaced_service,
            namespace,
            label_selector=selector,
        )
        return list((listed or {}).get("items") or [])

    def delete_service(self, namespace: str, name: str) -> bool:
        deleted = self._json(
            f"delete service {namespace}/{name}",
            self._core.delete_namespaced_service,
            name,
            namespace,
            missing_ok=True,
        )
        return deleted is not None

    def delete_custom(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> bool:
        """Delete a custom object (``plural`` of ``group/version``) and, in the background,
        what it owns; False when there was none (or its resource is not installed)."""
        deleted = self._json(
            f"delete {plural}.{group} {namespace}/{name}",
            self._custom.delete_namespaced_custom_object,
            group,
            version,
            namespace,
            plural,
            name,
            propagation_policy="Background",
            missing_ok=True,
        )
        return deleted is not None

    def pod_log(
        self, namespace: str, name: str, container: str | None, tail_lines: int | None = None
    ) -> str | None:
        """The pod's log (its last ``tail_lines``), or None when the pod is gone."""
        kwargs: dict[str, Any] = {}
        if container:
            kwargs["container"] = container
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        response = self._call(
            f"read the log of pod {namespace}/{name}",
            self._core.read_namespaced_pod_log,
            name,
            namespace,
            missing_ok=True,
            **kwargs,
        )
        if response is None:
            return None
        return bytes(response.data).decode("utf-8", errors="replace")

    # --- plumbing ------------------------------------------------------------------------------

    def _json(self, operation: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        response = self._call(operation, method, *args, **kwargs)
        if response is None:
            return None
        try:
            return json.loads(response.data)
        except ValueError as exc:
            raise LaunchError(
                f"{operation}: the API server's answer is not JSON: {exc}", retryable=True
            ) from None

    def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        *args: Any,
        creates: bool = False,
        missing_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``method(*args, **kwargs)`` unparsed; None for a 404 when ``missing_ok``."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        kwargs.update(_preload_content=False, _request_timeout=TIMEOUT)
        for fresh_token in (False, True):
            try:
                return method(*args, **kwargs)
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 401 and not fresh_token and self.connection.eks_cluster:
                    self._set_token(fresh=True)
                    continue
                if status == 404 and missing_ok:
                    return None
                if status == 0:
                    raise connection_error(operation, exc, creates=creates) from None
                raise api_error(operation, status, exc.body, creates=creates) from None
            except (HTTPError, OSError) as exc:
                raise connection_error(operation, exc, creates=creates) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _make_client(self) -> Any:
        from kubernetes import client

        connection = self.connection
        if connection.kubeconfig or connection.context:
            return self._from_kubeconfig()
        configuration = client.Configuration()
        endpoint = connection.api_server
        ca_data = connection.ca_data
        needs_ca = ca_data is None and connection.ca_file is None
        if connection.eks_cluster and (
            endpoint is None or (needs_ca and urlsplit(endpoint).scheme == "https")
        ):
            # DescribeCluster only for what the target does not say (endpoint, CA).
            cluster = connection.eks_cluster
            facts = self._eks_call(lambda: self.eks.cluster(cluster, connection.region))
            endpoint = endpoint or facts.endpoint
            if needs_ca:
                ca_data = facts.ca_data
        if not endpoint:
            raise LaunchError(f"{connection.label} has no API server endpoint", retryable=False)
        configuration.host = endpoint
        host = urlsplit(endpoint).hostname or ""
        if is_loopback_host(host):
            configuration.proxy = None
        if connection.ca_file:
            configuration.ssl_ca_cert = connection.ca_file
        elif ca_data and urlsplit(endpoint).scheme == "https":
            configuration.ca_cert_data = _pem(ca_data)
        api_client = client.ApiClient(configuration)
        if connection.eks_cluster:
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
            self._configuration = configuration
            self._set_token(fresh=False)
            # The client calls the hook before every request: the token never outlives its use.
            hooked: Any = configuration  # the client types the hook's attribute as None
            hooked.refresh_api_key_hook = lambda _: self._set_token(fresh=False)
        return api_client

    def _set_token(self, *, fresh: bool) -> None:
        token = self._eks_call(
            lambda: self.eks.token(
                self.connection.eks_cluster or "", self.connection.region, fresh=fresh
            )
        )
        self._configuration.api_key = {"BearerToken": token}

    def _eks_call(self, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except ValueError as exc:
            raise LaunchError(str(exc), retryable=False) from None

    def _from_kubeconfig(self) -> Any:
        from kubernetes import config

        connection = self.connection
        try:
            load: Any = config.new_client_from_config
            return load(
                config_file=connection.kubeconfig,
                context=connection.context,
                persist_config=False,
            )
        except (config.ConfigException, OSError, ValueError) as exc:
            raise LaunchError(
                f"cannot load kubeconfig {connection.label}: {exc}", retryable=False
            ) from None


def _pem(ca_data: str) -> str:
    """PEM text from the base64 of a PEM (as EKS and kubeconfigs give a CA), or PEM itself."""
    if "BEGIN CERTIFICATE" in ca_data:
        return ca_data
    try:
        return base64.b64decode(ca_data, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise LaunchError(
            f"ca_data is neither PEM nor base64 of PEM: {exc}", retryable=False
        ) from None


class Clusters:
    """One ``KubernetesApi`` per distinct connection, made when first needed (per container,
    so a warm Lambda reuses its connections and its cluster facts)."""

    def __init__(self, eks: EksAccess | None = None) -> None:
        self.eks = eks or EksAccess()
        self._apis: dict[str, KubernetesApi] = {}
        self._lock = threading.Lock()

    def api(self, connection: Connection) -> KubernetesApi:
        key = connection.model_dump_json(exclude_none=True)
        with self._lock:
            known = self._apis.get(key)
        if known is not None:
            return known
        made = KubernetesApi(connection, self.eks)
        with self._lock:
            return self._apis.setdefault(key, made)
