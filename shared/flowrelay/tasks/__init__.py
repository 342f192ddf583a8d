"""Ready-made tasks (public path): ``flowrelay.tasks.control_flow`` (case, merge, ifelse,
switch) and ``flowrelay.tasks.secrets`` (secrets from AWS Secrets Manager or SSM)."""
