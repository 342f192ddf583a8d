"""Launchers: they turn a flow run and its launch target into running infrastructure.

One package per kind of infrastructure (``ecs/``), each implementing the one contract in
``flowrelay.launchers.base``; ``kinds`` names them (their launchers, settings and events).
Nothing outside a kind's package knows a word of that kind, except ``kinds`` and the dev stack
that emulates them.
"""
