"""Launchers: they turn a flow run and its launch target into running infrastructure.

One package per kind of infrastructure (``ecs/``), each implementing the one contract in
``flowrelay.launchers.base``. Nothing outside a kind's package knows a word of that kind, except
the handlers' composition root that wires the launchers, and the dev stack that emulates them.
"""
