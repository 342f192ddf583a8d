"""Kubernetes targets. Only their settings exist so far: no launcher starts Jobs yet, so a run
routed to a Kubernetes target fails with "no launcher for kubernetes targets here"."""
