"""Ready-made tasks (public path): ``flowrelay.tasks.control_flow`` (case, merge, ifelse,
switch) and ``flowrelay.tasks.secrets`` (secrets from AWS Secrets Manager or SSM)."""

from flowrelay.sdk.importing import submodules_on_first_use

__getattr__ = submodules_on_first_use(__name__)
