"""What a Kubernetes target says about where its runs start (``Target.settings``): the
namespace, one way to reach the API server, and defaults for every run's Job.

Three ways to reach the API server, exactly one per target:

- ``eks_cluster`` (and ``region``): an EKS cluster, reached as the functions' IAM role, with
  no kubeconfig (``flowrelay.launchers.kubernetes.eks``): what a stack on AWS uses;
- ``kubeconfig`` (a path, and optionally ``context``; ``context`` alone reads the default
  kubeconfig): for a machine that has one;
- ``api_server`` (an ``https://`` URL, ``http://`` only on loopback) with ``ca_file`` or
  ``ca_data``: an API server named outright. With ``eks_cluster``, it replaces the cluster's
  own endpoint (a proxy, a private endpoint; the dev stack's emulated cluster) while the token
  is still EKS's.

>>> KubernetesSettings(api_server="http://127.0.0.1:6443").connection().api_server
'http://127.0.0.1:6443'
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator, model_validator

from flowrelay.core.modeling import Model
from flowrelay.core.network import is_loopback_host

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_EKS_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$")


def dns_label(value: str, what: str) -> str:
    """``value`` when it is a DNS-1123 label (what a namespace is), else ``ValueError``."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} {value!r} is not a Kubernetes name (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def dns_subdomain(value: str, what: str) -> str:
    """``value`` when it is a DNS-1123 subdomain (what most object names are), else
    ``ValueError``."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"{what} {value!r} is not a Kubernetes name (lower-case letters, digits, '-' and "
            "'.', starting and ending with a letter or digit, at most 253 characters)"
        )
    return value


class Connection(Model):
    """How to reach a target's API server (what a launch records, so the monitor and a cancel
    reach the same cluster without the target)."""

    model_config = ConfigDict(extra="forbid")

    eks_cluster: str | None = None
    region: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    api_server: str | None = None
    ca_file: str | None = None
    ca_data: str | None = None

    @property
    def label(self) -> str:
        """How messages name the cluster."""
        if self.eks_cluster:
            return f"EKS cluster {self.eks_cluster}"
        if self.api_server:
            return f"API server {self.api_server}"
        where = self.kubeconfig or "the default kubeconfig"
        return f"{where}" + (f" (context {self.context})" if self.context else "")


class KubernetesSettings(Model):
    """A Kubernetes target: where its runs' Jobs are created and what they default to; a run's
    ``KubernetesRun`` fields are merged over these."""

    model_config = ConfigDict(extra="forbid")

    namespace: str = Field(default="default", description="Where Jobs are created.")
    eks_cluster: str | None = Field(
        default=None, description="An EKS cluster's name: reached with the functions' IAM role."
    )
    region: str | None = Field(
        default=None, description="The EKS cluster's region (default: the functions' own)."
    )
    kubeconfig: str | None = Field(default=None, min_length=1, description="A kubeconfig path.")
    context: str | None = Field(
        default=None, min_length=1, description="A kubeconfig context (default: its current)."
    )
    api_server: str | None = Field(
        default=None, description="The API server's URL (https://; http:// only on loopback)."
    )
    ca_file: str | None = Field(
        default=None, min_length=1, description="The API server's CA certificate file (PEM)."
    )
    ca_data: str | None = Field(
        default=None, min_length=1, description="The API server's CA certificate, base64 PEM."
    )
    image: str | None = Field(
        default=None, min_length=1, description="The image of runs that do not name one."
    )
    service_account_name: str | None = Field(
        default=None, description="The service account of runs that do not name one."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Secrets to pull images with, unless a run names its own."
    )
    job_template: dict[str, Any] | None = Field(
        default=None, description="The Job manifest runs start from unless they give their own."
    )
    ttl_seconds_after_finished: int = Field(
        default=3600,
        ge=0,
        description="How long a finished Job (and its pods and logs) stays before Kubernetes "
        "deletes it.",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return dns_label(value, "namespace")

    @field_validator("service_account_name")
    @classmethod
    def _check_service_account(cls, value: str | None) -> str | None:
        return None if value is None else dns_subdomain(value, "service_account_name")

    @field_validator("image_pull_secrets")
    @classmethod
    def _check_pull_secrets(cls, value: list[str]) -> list[str]:
        for name in value:
            dns_subdomain(name, "image pull secret")
        return value

    @field_validator("eks_cluster")
    @classmethod
    def _check_eks_name(cls, value: str | None) -> str | None:
        if value is not None and not _EKS_NAME.match(value):
            raise ValueError(
                f"eks_cluster {value!r} is not an EKS cluster name (letters, digits, '-' and "
                "'_', starting with a letter or digit, at most 100 characters)"
            )
        return value

    @field_validator("api_server")
    @classmethod
    def _check_api_server(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"api_server {value!r} is not an https:// URL")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"api_server {value!r}: plain http is taken only on loopback (127.0.0.1, ::1, "
                "localhost); use https:// with ca_file or ca_data"
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_way_to_the_api_server(self) -> KubernetesSettings:
        kubeconfig = bool(self.kubeconfig or self.context)
        if self.eks_cluster and kubeconfig:
            raise ValueError("give eks_cluster or kubeconfig/context, not both")
        if kubeconfig and self.api_server:
            raise ValueError("give kubeconfig/context or api_server, not both")
        if not (self.eks_cluster or kubeconfig or self.api_server):
            raise ValueError(
                "give one way to reach the API server: eks_cluster (with region), kubeconfig "
                "(and/or context), or api_server (with ca_file or ca_data)"
            )
        if self.region is not None and self.eks_cluster is None:
            raise ValueError("region is for eks_cluster targets only")
        if (self.ca_file or self.ca_data) and self.api_server is None:
            raise ValueError("ca_file and ca_data are for api_server targets only")
        if self.ca_file and self.ca_data:
            raise ValueError("give ca_file or ca_data, not both")
        return self

    def connection(self) -> Connection:
        """How to reach the API server, as a launch records it."""
        return Connection.model_validate(
            self.model_dump(include=set(Connection.model_fields), exclude_none=True)
        )
