"""What a value must be to travel as JSON and be stored on a run unchanged.

JSON has no NaN or Infinity, and text must be valid Unicode; an object names each key once.
Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e999`` (as ``inf``), and pydantic writes
non-finite floats back as ``null``: accepted, such a value would arrive changed. Text with a
lone surrogate (what Python makes of bytes that are not UTF-8 in a command line or a file name)
cannot be sent at all; of a key given twice, one value would be dropped. All are refused
here, wherever a user's value enters: the CLI's ``--param``, a request's parameters, an event
read from the bus.

>>> loads('{"rows": 10}')
{'rows': 10}
>>> loads("NaN")
Traceback (most recent call last):
...
flowrelay.core.jsonvalues.JsonValueError: NaN is not a JSON number (JSON has no NaN or Infinity)
>>> check({"ratio": float("inf")}, "parameters")
Traceback (most recent call last):
...
flowrelay.core.jsonvalues.JsonValueError: parameters.ratio: inf is not a JSON number ...
"""

from __future__ import annotations

import json
import math
from typing import Any

#: How deep a value may nest. Far beyond any real parameters, and well inside what pydantic can
#: write back (255 levels): what parses can always be stored on its run.
MAX_NESTING = 64
_NOT_A_NUMBER = "is not a JSON number (JSON has no NaN or Infinity)"


class JsonValueError(ValueError):
    """A value JSON cannot carry unchanged; the message names where it is and what it is."""


def loads(text: str | bytes, whole: str = "value") -> Any:
    """``text`` as JSON, refusing what JSON has not (``NaN``, ``Infinity``, numbers too large for
    a float) and what could not be stored unchanged (see ``check``). ``json.JSONDecodeError``
    when it is not JSON at all."""
    value = json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_finite_float,
        object_pairs_hook=_unique_keys,
    )
    check(value, whole=whole)
    return value


def check(value: Any, where: str = "", whole: str = "value") -> None:
    """Raise ``JsonValueError`` naming the first place in ``value`` that JSON cannot carry
    unchanged: a non-finite float, text that is not valid Unicode, nesting deeper than
    ``MAX_NESTING``. Places are named from ``where`` (``parameters.rows``); ``whole`` names
    the value itself. Iterative, so no input can exhaust the stack."""

    def named(path: tuple[str, ...]) -> str:
        return ".".join(path) or whole

    def check_text(text: str, path: tuple[str, ...]) -> None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise JsonValueError(
                f"{named(path)}: {_shown(text)} is not valid Unicode text (character "
                f"{exc.start + 1} came from bytes that are not UTF-8)"
            ) from None

    pending: list[tuple[Any, tuple[str, ...]]] = [(value, (where,) if where else ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise JsonValueError(f"{named(path)}: {item} {_NOT_A_NUMBER}")
        if isinstance(item, str):
            check_text(item, path)
        elif isinstance(item, dict | list | tuple):
            if len(path) >= MAX_NESTING:
                raise JsonValueError(f"{named(path[:4])}: nested deeper than {MAX_NESTING} levels")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        check_text(key, path)
                entries: Any = item.items()
            else:
                entries = enumerate(item)
            pending.extend((child, (*path, field_label(key))) for key, child in entries)


def field_label(part: int | str) -> str:
    """A location part as a reader can tell it apart: odd names (empty, with dots or spaces)
    quoted. ``field_label("flow") == "flow"``; ``field_label("") == "''"``."""
    text = str(part)
    return text if text and text.replace("_", "").replace("-", "").isalnum() else repr(text)


def _shown(text: str, limit: int = 40) -> str:
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are each given once: JSON readers disagree on which of two values
    for one key wins, so one would be dropped without a word."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise JsonValueError(f"the key {key!r} is given twice in one object")
        found[key] = value
    return found


def _reject_constant(name: str) -> Any:
    raise JsonValueError(f"{name} {_NOT_A_NUMBER}")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonValueError(f"{text} is too large for a JSON number (a 64-bit float)")
    return number
