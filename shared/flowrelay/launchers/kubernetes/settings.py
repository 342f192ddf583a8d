"""What a Kubernetes target says about where its runs start (``Target.settings``)."""

from __future__ import annotations

from pydantic import ConfigDict

from flowrelay.core.modeling import Model


class KubernetesSettings(Model):
    model_config = ConfigDict(extra="forbid")

    namespace: str = "default"
    image: str | None = None
    service_account_name: str | None = None
    kubeconfig: str | None = None
    eks_cluster: str | None = None
