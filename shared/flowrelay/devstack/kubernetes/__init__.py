"""Kubernetes for the dev stack, with no Docker and no cluster: an API server on loopback
(``api``) and the controllers and kubelet that run its Jobs as local processes (``jobs``)."""

from flowrelay.devstack.kubernetes.api import KubernetesApi, RecordedRequest
from flowrelay.devstack.kubernetes.jobs import JobExecutor

__all__ = ["JobExecutor", "KubernetesApi", "RecordedRequest"]
