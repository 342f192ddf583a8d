"""Kubernetes targets: each attempt of a run as one Kubernetes Job (``launcher``), built from
its ``KubernetesRun`` (``manifest``), named per run and attempt (``names``), reached through the
official client (``client``; EKS with the functions' IAM role: ``eks``), read into the control
plane's words (``status``, ``errors``). docs/kubernetes.md describes it for users.

Nothing here imports the ``kubernetes`` client at import time: only a launch, a status or a
stop on a Kubernetes target loads it."""
