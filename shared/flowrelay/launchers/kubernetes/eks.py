"""Reaching an EKS cluster from Lambda with no kubeconfig: the cluster's endpoint and CA from
``eks:DescribeCluster``, and a bearer token made from the functions' own IAM credentials.

The token is what ``aws eks get-token`` prints: ``k8s-aws-v1.`` and the URL-safe base64 (no
padding) of a presigned STS ``GetCallerIdentity`` URL whose signature covers an
``x-k8s-aws-id: <cluster name>`` header. EKS calls that URL to learn who is asking. Presigning
happens here, with botocore's ``RequestSigner``: nothing is sent to STS. EKS honours a token for
15 minutes, so one is reused for ``TOKEN_REUSE_SECONDS`` (14 minutes) and minted again on a 401.

>>> token = bearer_token("flows", "eu-west-1", _example_credentials())
>>> token.startswith("k8s-aws-v1.") and "=" not in token
True
>>> "x-k8s-aws-id" in presigned_url(token)
True
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from typing import Any

from flowrelay.core.modeling import Model
from flowrelay.launchers.aws_errors import call

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
#: EKS accepts a token for 15 minutes; a minute is kept in hand.
TOKEN_REUSE_SECONDS = 14 * 60
#: How long the presigned URL inside a token says it is valid (EKS itself allows 15 minutes).
_URL_EXPIRES_SECONDS = 60


class ClusterFacts(Model):
    """What DescribeCluster says about how to reach a cluster."""

    name: str
    endpoint: str
    ca_data: str | None = None


def bearer_token(cluster: str, region: str, credentials: Any) -> str:
    """A token for EKS cluster ``cluster`` in ``region``, signed with ``credentials`` (botocore
    credentials); see the module docstring."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest

    url = f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15"
    request = AWSRequest(method="GET", url=url, headers={CLUSTER_ID_HEADER: cluster})
    # SigV4QueryAuth is what RequestSigner.generate_presigned_url uses for "v4-query" signing;
    # called directly it needs no STS client (nor its endpoint resolution: the dev stack's
    # AWS_ENDPOINT_URL must not leak into a token meant for EKS).
    SigV4QueryAuth(
        credentials.get_frozen_credentials(), "sts", region, _URL_EXPIRES_SECONDS
    ).add_auth(request)
    signed = str(request.url)
    encoded = base64.urlsafe_b64encode(signed.encode("utf-8")).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + encoded


def presigned_url(token: str) -> str:
    """The presigned STS URL inside a token (what EKS would call)."""
    encoded = token.removeprefix(TOKEN_PREFIX)
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")


class EksAccess:
    """Cluster facts (cached for the life of the container) and tokens (reused for 14 minutes)
    for the EKS clusters one launcher reaches. ``session`` is a boto3 session (its credentials
    sign tokens, its EKS client describes clusters); ``clock`` is for tests. Thread-safe."""

    def __init__(self, session: Any = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._session = session
        self._clock = clock
        self._facts: dict[tuple[str, str], ClusterFacts] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def session(self) -> Any:
        with self._lock:
            if self._session is None:
                import boto3

                self._session = boto3.session.Session()
            return self._session

    def region(self, region: str | None) -> str:
        """``region``, else the session's; ``LaunchError``-free: EKS names its own errors."""
        chosen = region or self.session().region_name
        if not chosen:
            raise ValueError("no region for the EKS cluster: set the target's region")
        return str(chosen)

    def cluster(self, name: str, region: str | None) -> ClusterFacts:
        """The cluster's endpoint and CA (``LaunchError`` when DescribeCluster refuses)."""
        key = (name, self.region(region))
        with self._lock:
            known = self._facts.get(key)
        if known is not None:
            return known
        client = self.session().client("eks", region_name=key[1])
        described = call(f"DescribeCluster {name}", client.describe_cluster, name=name)["cluster"]
        facts = ClusterFacts(
            name=name,
            endpoint=str(described.get("endpoint") or ""),
            ca_data=(described.get("certificateAuthority") or {}).get("data"),
        )
        with self._lock:
            self._facts[key] = facts
        return facts

    def token(self, name: str, region: str | None, *, fresh: bool = False) -> str:
        """A token for the cluster: the one minted in the last 14 minutes unless ``fresh``."""
        key = (name, self.region(region))
        now = self._clock()
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and not fresh and now - cached[1] < TOKEN_REUSE_SECONDS:
                return cached[0]
        credentials = self.session().get_credentials()
        if credentials is None:
            raise ValueError(f"no AWS credentials to sign a token for EKS cluster {name}")
        token = bearer_token(name, key[1], credentials)
        with self._lock:
            self._tokens[key] = (token, now)
        return token


def _example_credentials() -> Any:
    from botocore.credentials import Credentials

    return Credentials("AKIDEXAMPLE", "example-not-a-secret")
