"""The embedded dev stack (docs/devstack.md): template.yaml in moto server on loopback,
the functions in-process, ECS tasks as local processes. Needs the ``devstack`` extra."""

from flowrelay.devstack.stack import DevStack

__all__ = ["DevStack"]
