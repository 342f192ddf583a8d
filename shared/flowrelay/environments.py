"""The deprecated execution environments (public path): ``from flowrelay.environments import
FargateTaskEnvironment``. Each translates itself to a run config and an executor.

Defined in ``flowrelay.sdk.environments``; see there and docs/environments.md.
"""

from flowrelay.sdk.environments import (
    DaskCloudProviderEnvironment,
    DaskKubernetesEnvironment,
    Environment,
    FargateTaskEnvironment,
    KubernetesJobEnvironment,
    LocalEnvironment,
    RemoteEnvironment,
    Translation,
)

__all__ = [
    "DaskCloudProviderEnvironment",
    "DaskKubernetesEnvironment",
    "Environment",
    "FargateTaskEnvironment",
    "KubernetesJobEnvironment",
    "LocalEnvironment",
    "RemoteEnvironment",
    "Translation",
]
