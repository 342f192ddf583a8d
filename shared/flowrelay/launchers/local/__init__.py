"""Local targets (processes on the machine hosting the dev stack). Only their settings exist so
far: no launcher starts local processes yet, so a run routed to a local target fails with "no
launcher for local targets here"."""
