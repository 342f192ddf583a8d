"""The tasks that operators on tasks build (the seeds' engine's ``prefect.tasks.core.operators``):
``total + 1`` is an ``Add`` task fed by ``total`` and ``1``; ``row["id"]`` a ``GetItem``."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar

from flowrelay.sdk.tasks import Task


class GetItem(Task):
    """``task_result[index]``: an item of what the upstream task returned."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("name", "GetItem")
        super().__init__(**kwargs)

    def run(self, task_result: Any, key: Any) -> Any:
        return task_result[key]


class _Binary(Task):
    apply: ClassVar[Callable[..., Any]]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("name", type(self).__name__)
        super().__init__(**kwargs)

    def run(self, x: Any, y: Any) -> Any:
        return type(self).apply(x, y)


class Add(_Binary):
    apply = staticmethod(operator.add)


class Sub(_Binary):
    apply = staticmethod(operator.sub)


class Mul(_Binary):
    apply = staticmethod(operator.mul)


class Div(_Binary):
    apply = staticmethod(operator.truediv)


class FloorDiv(_Binary):
    apply = staticmethod(operator.floordiv)


class Pow(_Binary):
    apply = staticmethod(operator.pow)


class Mod(_Binary):
    apply = staticmethod(operator.mod)


class And(_Binary):
    apply = staticmethod(lambda x, y: x and y)


class Or(_Binary):
    apply = staticmethod(lambda x, y: x or y)


class Equal(_Binary):
    apply = staticmethod(operator.eq)


class NotEqual(_Binary):
    apply = staticmethod(operator.ne)


class GreaterThan(_Binary):
    apply = staticmethod(operator.gt)


class GreaterThanOrEqual(_Binary):
    apply = staticmethod(operator.ge)


class LessThan(_Binary):
    apply = staticmethod(operator.lt)


class LessThanOrEqual(_Binary):
    apply = staticmethod(operator.le)


class Not(Task):
    """``not x``."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("name", "Not")
        super().__init__(**kwargs)

    def run(self, x: Any) -> Any:
        return not x
