"""The dev stack's Kubernetes API server: real HTTP on a loopback port, spoken to by the real
``kubernetes`` client and by kr8s, for the resources flowrelay's Kubernetes launcher, the dev
stack's job executor and dask-kubernetes's ``KubeCluster`` use: batch/v1 jobs (and their
status), v1 pods (status, log, binding, portforward over a WebSocket), services, events,
secrets, configmaps, serviceaccounts (and their TokenRequest, ``token``), namespaces, and the
Dask operator's custom resources (``kubernetes.dask.org/v1`` daskclusters, daskworkergroups,
daskautoscalers, as if its CRDs were installed; ``dask_operator.py`` plays the operator).

It is built on kmock 0.8's ``KubernetesEmulator``: kmock serves the HTTP (its handler parses
each request and keeps it in ``requests``), the discovery documents (``/api``, ``/apis``,
``/version``) and renders errors. What kmock 0.8 does with objects differs from Kubernetes
wherever flowrelay looks, so the subclass here answers every request for the resources above
itself (``store.py`` holds the objects and their semantics). kmock 0.8, and so what was fixed
(``tests/devstack/test_kubernetes_api.py`` shows each against kmock and against this server):

- a name already taken answers 409 with reason ``Object Already Exists`` and a traceback in its
  details, where Kubernetes says ``AlreadyExists`` and ``jobs.batch "x" already exists``; a
  missing object 404 ``Object Not Found``, not ``NotFound`` / ``jobs.batch "x" not found``;
- no uid, resourceVersion, creationTimestamp or generation on create, no Job or pod defaults
  (selector, job-name labels, backoffLimit), a list's resourceVersion is ``"..."``;
- no validation at all (names, labels), no namespace check (an object may be created in a
  namespace that does not exist);
- ``labelSelector`` and ``fieldSelector`` are ignored: a list returns everything;
- a patch is a deep merge whatever its content type, and the status subresource is the object
  itself (a status patch can change the spec, a main patch the status);
- a delete removes the object at once and answers the object, ignoring propagationPolicy, the
  Job's dependents (pods) and the grace of a pod;
- ``/api/v1/namespaces/NAME`` is read as "namespace NAME", not as the Namespace object, and
  ``pods/NAME/log`` answers the pod's JSON, not its output.

Watch requests are answered 405 (not supported: flowrelay polls, and so do KubeCluster and the
emulated Dask operator). ``/version`` answers an EKS version kr8s supports (kmock's is older
than kr8s's oldest). Fault injection for tests:
``fail_next`` answers an error instead of doing the call, ``drop_after`` does the call and
closes the connection unanswered. With ``eks_cluster`` every request must carry an EKS token
(``eks.py``) or a service account token the API issued (TokenRequest, bound to a pod: what the
kubelet gives pods, so that code in a pod reaches the API as in a cluster); the executor's own
requests carry ``system_token`` instead, as a cluster's controllers and kubelets have their own
credentials.

kmock's ``Server`` is not used to listen: it replaces aiohttp's host resolution for the whole
process while it runs (and refuses to stop out of order), so the server here is aiohttp's own,
on the handler kmock provides, in an event loop of its own thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import aiohttp.web
from kmock import KubernetesEmulator, KubernetesScaffold, Request, ResourceInfo

from flowrelay.core.network import is_loopback_host
from flowrelay.devstack.kubernetes.eks import token_problem
from flowrelay.devstack.kubernetes.objects import KINDS, ApiError, Kind, bad_request
from flowrelay.devstack.kubernetes.store import Store, timestamp

#: What reads a container's output for ``pods/NAME/log``: (namespace, pod, container) to the
#: bytes written so far, None when the container has not started.
LogReader = Callable[[str, str, str], bytes | None]
_GROUPS = "|".join(sorted({re.escape(kind.group) for kind in KINDS.values() if kind.group}))
DISCOVERY = re.compile(rf"/|/version|/api|/apis|/api/v1|/apis/(?:{_GROUPS})(?:/v1)?")
#: What ``/version`` answers: a version of EKS's (kmock's own, 1.26, is one kr8s warns about).
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.5-eks-flowrelay-dev",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-10-01T00:00:00Z",
    "goVersion": "go1.24.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
#: How long a service account token the kubelet asks for is valid when it names no expiry.
TOKEN_SECONDS = 3600
_PATH = re.compile(
    r"/(?:api/v1|apis/(?P<group>[a-z0-9.-]+)/v1)"
    r"(?:/namespaces/(?P<namespace>[^/]+)(?=/[^/]+))?"
    r"/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?"
)
UNAUTHORIZED = ApiError(401, "Unauthorized", "Unauthorized")
_PORTFORWARD = re.compile(
    r"/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<name>[^/]+)/portforward"
)
#: The WebSocket subprotocols of port forwarding; a client that asks for none gets the first
#: framing too (kr8s asks for none).
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: str
    authorization: str | None


@dataclass(frozen=True)
class _IssuedToken:
    namespace: str
    service_account: str
    pod: tuple[str, str] | None
    """(name, uid) of the pod it is bound to."""
    expires: float


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    times: int
    status: int | None = None
    """None: do the call, then drop the connection."""
    message: str = ""


REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class _Emulator(KubernetesEmulator):
    """kmock's emulator with every request for a served resource answered by the store."""

    def __init__(self, api: KubernetesApi) -> None:
        super().__init__()
        self.api = api
        for kind in KINDS.values():
            verbs = {"create", "delete", "get", "list", "patch", "update"}
            subresources = {"status"} if kind.status else set()
            if kind.plural == "pods":
                subresources |= {"log", "binding", "portforward"}
            if kind.plural == "serviceaccounts":
                subresources |= {"token"}
            self.resources[f"{kind.group}/v1/{kind.plural}"] = ResourceInfo(
                kind=kind.kind,
                singular=kind.kind.lower(),
                namespaced=kind.namespaced,
                verbs=verbs,
                subresources=subresources,
            )

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock parses every request before handling it, and its parser fails on some paths
        # Kubernetes serves (``/api/v1/namespaces``): only discovery reaches kmock, and not
        # ``/version`` (its version is one kr8s warns about).
        if raw.method == "GET" and raw.path.rstrip("/") == "/version":
            return aiohttp.web.json_response(VERSION)
        if raw.method == "GET" and raw.path != "/" and DISCOVERY.fullmatch(raw.path.rstrip("/")):
            # The API server answers discovery with or without a trailing slash (kr8s asks for
            # ``/version/``); kmock only without.
            if raw.path.endswith("/"):
                raw = raw.clone(rel_url=raw.rel_url.with_path(raw.path.rstrip("/")))
            return await super().__call__(raw)
        if raw.method == "GET" and raw.path == "/":
            return await super().__call__(raw)
        return await self.api._answer(raw)

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        # Discovery only: kmock's scaffold, without the emulator's object tracking.
        return await KubernetesScaffold._handle(self, request)


class KubernetesApi:
    """A Kubernetes API server on ``host`` (loopback), for the dev stack and tests (see the
    module docstring).

    >>> api = KubernetesApi()          # doctest: +SKIP
    >>> url = api.start()              # doctest: +SKIP
    >>> api.stop()                     # doctest: +SKIP
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        eks_cluster: str | None = None,
        namespaces: tuple[str, ...] = ("default", "flowrelay"),
    ) -> None:
        self.host = host
        self.port = port
        self.eks_cluster = eks_cluster
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self.pod_logs: LogReader | None = None
        #: What the dev stack's own controllers authenticate with (never an EKS token).
        self.system_token = secrets.token_urlsafe(24)
        self.clock_offset = 0.0
        self.store = Store(time.time)
        self._faults: list[_Fault] = []
        self._tokens: dict[str, _IssuedToken] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._web: aiohttp.web.Server | None = None
        self._emulator: _Emulator | None = None
        for namespace in namespaces:
            self.store.create(KINDS[("", "namespaces")], None, {"metadata": {"name": namespace}})
            self.store.create(
                KINDS[("", "serviceaccounts")], namespace, {"metadata": {"name": "default"}}
            )

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Listen on ``host:port`` (0: a free port) in a daemon thread; returns the URL."""
        if self._thread is not None:
            raise RuntimeError("this Kubernetes API is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="devstack-kubernetes-api", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(), loop).result(timeout=30)
        return self.url

    def stop(self) -> None:
        """Stop listening and end the thread. Safe to call more than once."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()
            self._loop = self._thread = None

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    async def _open(self) -> None:
        self._emulator = _Emulator(self)
        await self._emulator.__aenter__()
        self._web = aiohttp.web.Server(self._emulator)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._web, self.host, self.port)
        port = self._server.sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{port}"

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._web is not None:
            await self._web.shutdown(1.0)
        if self._server is not None:
            await self._server.wait_closed()
        if self._emulator is not None:
            await self._emulator.__aexit__(None, None, None)
        self._server = self._web = self._emulator = None

    # --- for tests ---------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        message: str = "injected failure",
    ) -> None:
        """Answer the next ``times`` requests of ``method`` whose path matches ``path_regex``
        (``re.search``) with a ``Status`` error ``status`` (429 carries ``Retry-After: 1``)
        instead of doing them."""
        with self._lock:
            self._faults.append(
                _Fault(method.upper(), re.compile(path_regex), times, status, message)
            )

    def drop_after(self, method: str, path_regex: str, times: int = 1) -> None:
        """Do the next ``times`` matching requests, then close their connections without an
        answer (the client cannot know whether they were done)."""
        with self._lock:
            self._faults.append(_Fault(method.upper(), re.compile(path_regex), times))

    def advance(self, seconds: float) -> None:
        """Move the clock by which EKS tokens age ``seconds`` ahead."""
        self.clock_offset += seconds

    def now(self) -> float:
        return time.time() + self.clock_offset

    def headers(self) -> dict[str, str]:
        """What the dev stack's own controllers send: the system token."""
        return {"Authorization": f"Bearer {self.system_token}"}

    # --- serving -----------------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _service_account_of(self, authorization: str | None) -> tuple[str, str] | None:
        """The (namespace, name) of the service account whose token ``authorization`` carries,
        while it is valid: unexpired, and its pod (a bound token's) still there."""
        token = (authorization or "").removeprefix("Bearer ").strip()
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None or self.now() >= issued.expires:
            return None
        if issued.pod is not None:
            found = self.store.objects.get(("pods", issued.namespace, issued.pod[0]))
            if found is None or found["metadata"]["uid"] != issued.pod[1]:
                return None
        return (issued.namespace, issued.service_account)

    async def _answer(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        method, path = request.method, request.path
        authorization = request.headers.get("Authorization")
        self.requests.append(RecordedRequest(method, path, request.query_string, authorization))
        body = await request.read()
        fault = (
            self._fault(method, path) if authorization != self.headers()["Authorization"] else None
        )
        try:
            system = authorization == self.headers()["Authorization"]
            if (
                self.eks_cluster
                and not system
                and self._service_account_of(authorization) is None
                and token_problem(authorization, self.now())
            ):
                raise UNAUTHORIZED
            if fault is not None and fault.status is not None:
                raise ApiError(
                    fault.status,
                    REASONS.get(fault.status, "InternalError"),
                    fault.message,
                    {"retryAfterSeconds": 1} if fault.status == 429 else None,
                    {"Retry-After": "1"} if fault.status == 429 else None,
                )
            forward = _PORTFORWARD.fullmatch(path)
            if forward is not None:
                return await self._portforward(request, forward["namespace"], forward["name"])
            response = self._dispatch(request, body)
        except ApiError as error:
            response = aiohttp.web.json_response(
                error.status(), status=error.code, headers=error.headers
            )
        except Exception as exc:  # a bug here: answered as the API server answers its own
            failure = ApiError(500, "InternalError", f"Internal error occurred: {exc!r}")
            response = aiohttp.web.json_response(failure.status(), status=500)
        if fault is not None and fault.status is None and request.transport is not None:
            request.transport.abort()
        return response

    def _dispatch(
        self, request: aiohttp.web.BaseRequest, raw_body: bytes
    ) -> aiohttp.web.StreamResponse:
        method, path = request.method, request.path
        match = _PATH.fullmatch(path)
        if match and match.group("plural") == "bindings" and not match.group("name"):
            if method != "POST" or not match.group("namespace"):
                raise _not_allowed(method)
            body = _parse_body(raw_body)
            target = str(((body or {}).get("metadata") or {}).get("name") or "")
            self.store.pod(match.group("namespace"), target)
            return _json(self.store.bind(match.group("namespace"), target, body), 201)
        kind = KINDS.get((match.group("group") or "", match.group("plural"))) if match else None
        if match is None or kind is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        query = {key: values[-1] for key, values in parse_qs(request.query_string).items()}
        namespace, name, sub = match.group("namespace"), match.group("name"), match.group("sub")
        if kind.namespaced is False and namespace is not None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub is not None and not (
            (sub == "status" and kind.status)
            or (kind.plural == "pods" and sub in ("log", "binding"))
            or (kind.plural == "serviceaccounts" and sub == "token")
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        body = _parse_body(raw_body)
        store = self.store
        if method == "GET" and query.get("watch") in ("true", "1"):
            raise ApiError(
                405, "MethodNotAllowed", "watch is not supported by the dev stack's Kubernetes API"
            )
        if name is None:
            if method == "GET":
                listed = store.list_of(
                    kind, namespace, query.get("labelSelector"), query.get("fieldSelector")
                )
                return _json(listed)
            if method == "POST":
                return _json(store.create(kind, namespace, body), 201)
            raise _not_allowed(method)
        if kind.namespaced and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub == "log":
            if method != "GET":
                raise _not_allowed(method)
            return self._log(namespace or "", name, query)
        if sub == "binding":
            if method != "POST":
                raise _not_allowed(method)
            store.pod(namespace or "", name)
            return _json(store.bind(namespace or "", name, body), 201)
        if sub == "token":
            if method != "POST":
                raise _not_allowed(method)
            return _json(self._token_request(namespace or "", name, body), 201)
        if method == "GET":
            obj = store.get(kind, namespace, name)
            return _json(obj)
        if method == "PATCH":
            content_type = request.headers.get("Content-Type", "")
            return _json(store.patch(kind, namespace, name, body, content_type, sub))
        if method == "PUT":
            return _json(store.replace(kind, namespace, name, body, sub))
        if method == "DELETE" and sub is None:
            options = body if isinstance(body, dict) else {}
            propagation = query.get("propagationPolicy") or options.get("propagationPolicy")
            grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
            uid = (options.get("preconditions") or {}).get("uid")
            try:
                grace_seconds = None if grace is None else int(grace)
            except ValueError:
                raise bad_request(f"invalid gracePeriodSeconds: {grace}") from None
            answer = store.delete(kind, namespace, name, propagation, grace_seconds, uid)
            return _json(answer)
        raise _not_allowed(method)

    def _token_request(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """``serviceaccounts/NAME/token`` (TokenRequest): a token of the service account, bound
        to a pod when the request names one (invalid once that pod is gone), as the kubelet
        asks for the token it mounts in a pod. Opaque, not a JWT: only this API reads it."""
        self.store.get(KINDS[("", "serviceaccounts")], namespace, name)
        request = body if isinstance(body, dict) else {}
        spec = request.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or TOKEN_SECONDS)
        bound = spec.get("boundObjectRef") or {}
        pod: tuple[str, str] | None = None
        if bound.get("kind") == "Pod":
            found = self.store.pod(namespace, str(bound.get("name")))
            if bound.get("uid") and bound["uid"] != found["metadata"]["uid"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f"the UID in the bound object reference ({bound['uid']}) does not match the "
                    f"UID in record. The object might have been deleted and then recreated",
                )
            pod = (str(found["metadata"]["name"]), str(found["metadata"]["uid"]))
        token = "flowrelay-dev-sa." + secrets.token_urlsafe(32)
        expires = self.now() + seconds
        with self._lock:
            self._tokens[token] = _IssuedToken(namespace, name, pod, expires)
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {**spec, "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": timestamp(expires)},
        }

    async def _portforward(
        self, request: aiohttp.web.BaseRequest, namespace: str, name: str
    ) -> aiohttp.web.StreamResponse:
        """``pods/NAME/portforward`` over a WebSocket, as kubectl and kr8s speak it: every
        frame starts with its channel (0: data of the port, 1: its errors), and the first frame
        of each channel is the port, two bytes little-endian. One port per connection. The
        connection is made to the pod's IP, always a loopback address here (the kubelet's)."""
        query = {key: values[-1] for key, values in parse_qs(request.query_string).items()}
        pod = self.store.pod(namespace, name)
        phase = (pod.get("status") or {}).get("phase")
        if phase != "Running":
            raise bad_request(
                f"unable to forward port because pod is not running. Current status={phase}"
            )
        try:
            port = int(query.get("ports", "").split(",")[0])
        except ValueError:
            raise bad_request(f"invalid port: {query.get('ports')!r}") from None
        address = str((pod.get("status") or {}).get("podIP") or "")
        if not is_loopback_host(address):  # never anywhere but this machine
            raise ApiError(500, "InternalError", f"pod {name} has no loopback address: {address}")
        socket = aiohttp.web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS)
        await socket.prepare(request)
        prefix = port.to_bytes(2, "little")
        await socket.send_bytes(b"\x00" + prefix)
        await socket.send_bytes(b"\x01" + prefix)
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            message = (
                f"error forwarding port {port} to pod {name}, uid : failed to connect to "
                f"{address}:{port}: {exc}"
            )
            await socket.send_bytes(b"\x01" + message.encode())
            await socket.close()
            return socket

        async def inward() -> None:
            async for message in socket:
                if message.type != aiohttp.WSMsgType.BINARY:
                    break
                data = bytes(message.data)
                if data[:1] == b"\x00" and len(data) > 1:
                    writer.write(data[1:])
                    await writer.drain()
            writer.close()

        async def outward() -> None:
            while data := await reader.read(256 * 1024):
                await socket.send_bytes(b"\x00" + data)
            await socket.close()

        tasks = [asyncio.ensure_future(inward()), asyncio.ensure_future(outward())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()
            if not socket.closed:
                await socket.close()
        return socket

    def _log(self, namespace: str, name: str, query: dict[str, str]) -> aiohttp.web.StreamResponse:
        pod = self.store.pod(namespace, name)
        containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        container = query.get("container")
        if container is None:
            if len(containers) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(map(str, containers))}]"
                )
            container = str(containers[0])
        elif container not in containers:
            raise bad_request(f"container {container} is not valid for pod {name}")
        output = self.pod_logs(namespace, name, container) if self.pod_logs else None
        if output is None:
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            waiting = next(
                (
                    (s.get("state") or {}).get("waiting") or {}
                    for s in statuses
                    if s.get("name") == container
                ),
                {},
            )
            reason = waiting.get("reason") or "ContainerCreating"
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                reason = "trying and failing to pull image"
            raise bad_request(
                f'container "{container}" in pod "{name}" is waiting to start: {reason}'
            )
        tail = query.get("tailLines")
        if tail is not None:
            try:
                lines = int(tail)
            except ValueError:
                raise bad_request(f"invalid tailLines: {tail}") from None
            kept = output.splitlines(keepends=True)
            output = b"".join(kept[-lines:]) if lines > 0 else b""
        limit = query.get("limitBytes")
        if limit is not None and limit.isdigit():
            output = output[: int(limit)]
        return aiohttp.web.Response(body=output, content_type="text/plain", charset="utf-8")


def _parse_body(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise bad_request("the body of the request is not JSON") from None


def _json(obj: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.json_response(obj, status=status)


def _not_allowed(method: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"the server does not allow this method on the requested resource ({method})",
    )


__all__ = ["Kind", "KubernetesApi", "LogReader", "RecordedRequest"]
