"""The EKS bearer token, as the dev stack's Kubernetes API checks it.

An EKS token is ``k8s-aws-v1.`` and the unpadded base64url of a presigned STS
``GetCallerIdentity`` URL whose signature covers the header ``x-k8s-aws-id: <cluster name>``
(what ``aws eks get-token`` and aws-iam-authenticator make). EKS calls that URL to learn who is
asking. The dev stack has no STS to call, so it checks what can be checked without one: the URL
is STS's, in a region its credential scope agrees with, asks GetCallerIdentity, is signed
(SigV4 query parameters, a signature), signs ``x-k8s-aws-id`` (so it was made for an EKS
cluster: the header's value, the cluster name, is not in the URL, so which cluster cannot be
checked) and is at most 15 minutes old, as EKS accepts it. Anything else is 401 Unauthorized.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit

PREFIX = "k8s-aws-v1."
#: How old a token EKS accepts (its presigned URL's date), in seconds.
MAX_AGE_SECONDS = 15 * 60
#: How far in the future a token's date may be (clock skew).
SKEW_SECONDS = 5 * 60
_HOST = re.compile(r"sts(?:\.([a-z0-9-]+))?\.amazonaws\.com(?:\.cn)?")


def token_problem(authorization: str | None, now: float) -> str | None:
    """Why ``authorization`` (the header's value) is not an EKS token valid at ``now`` (epoch
    seconds); None when it is one."""
    if not authorization or not authorization.startswith("Bearer "):
        return "no bearer token"
    token = authorization.removeprefix("Bearer ").strip()
    if not token.startswith(PREFIX):
        return f"the token does not start with {PREFIX}"
    encoded = token.removeprefix(PREFIX)
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "the token is not base64url"
    parts = urlsplit(url)
    host = _HOST.fullmatch(parts.hostname or "")
    if parts.scheme != "https" or host is None or parts.path not in ("", "/"):
        return f"the token's URL is not STS's: {parts.scheme}://{parts.hostname}{parts.path}"
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    if query.get("Action") != "GetCallerIdentity":
        return "the token's URL does not call GetCallerIdentity"
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not re.fullmatch(
        r"[0-9a-f]{64}", query.get("X-Amz-Signature", "")
    ):
        return "the token's URL is not presigned (SigV4)"
    signed = query.get("X-Amz-SignedHeaders", "").split(";")
    if "x-k8s-aws-id" not in signed:
        return "the token's URL does not sign x-k8s-aws-id (the cluster name)"
    scope = query.get("X-Amz-Credential", "").split("/")
    region = host.group(1) or "us-east-1"
    if len(scope) != 5 or scope[2] != region or scope[3] != "sts":
        return f"the token's credential scope does not match {parts.hostname}"
    try:
        signed_at = dt.datetime.strptime(query.get("X-Amz-Date", ""), "%Y%m%dT%H%M%SZ")
    except ValueError:
        return "the token's URL has no X-Amz-Date"
    age = now - signed_at.replace(tzinfo=dt.UTC).timestamp()
    if age > MAX_AGE_SECONDS:
        return f"the token expired ({age:.0f} s old, at most {MAX_AGE_SECONDS})"
    if age < -SKEW_SECONDS:
        return "the token is dated in the future"
    return None
