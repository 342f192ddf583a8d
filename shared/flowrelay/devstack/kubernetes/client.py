"""How the dev stack's own controllers (the job executor, the Dask operator's emulation) speak
to its Kubernetes API: JSON over HTTP with their system token, no proxy and no kubeconfig, as a
cluster's controllers use their own credentials and never a user's."""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


class KubernetesCallError(RuntimeError):
    """An API call answered with an error status."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"{status}: {body[:300]}")
        self.status = status


class ApiClient:
    """JSON over HTTP to the API, with no proxy and no kubeconfig: http.client only."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.headers = dict(headers)
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One request; the answer's JSON, ``KubernetesCallError`` for an error status."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {**self.headers, "Accept": "application/json"}
            if data is not None:
                headers["Content-Type"] = content_type
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        if response.status >= 400:
            raise KubernetesCallError(response.status, text)
        return json.loads(text) if text else None

    def merge_patch(self, path: str, patch: Mapping[str, Any]) -> Any:
        """A JSON merge patch of the object at ``path``."""
        return self.call("PATCH", path, patch, "application/merge-patch+json")

    def patch_status(self, path: str, status: Mapping[str, Any]) -> Any:
        """A merge patch of the ``status`` subresource of the object at ``path``."""
        return self.merge_patch(f"{path}/status", {"status": status})
