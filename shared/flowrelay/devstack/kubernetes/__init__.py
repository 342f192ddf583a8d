"""Kubernetes for the dev stack, with no Docker and no cluster: an API server on loopback
(``api``), the controllers and kubelet that run its Jobs as local processes (``jobs``), and the
Dask operator, emulated, for dask-kubernetes's KubeCluster (``dask_operator``)."""

from flowrelay.devstack.kubernetes.api import KubernetesApi, RecordedRequest
from flowrelay.devstack.kubernetes.dask_operator import DaskOperator
from flowrelay.devstack.kubernetes.jobs import JobExecutor

__all__ = ["DaskOperator", "JobExecutor", "KubernetesApi", "RecordedRequest"]
