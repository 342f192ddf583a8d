"""What a label is: the words that match runs to launch targets (``flowrelay.core.routing``).

A label a target could never carry would leave a run waiting forever, so labels are checked
where they are made (run configs, requests, registrations, targets), not silently trimmed:

>>> check_label("gpu")
'gpu'
>>> check_label(" gpu ")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ValueError: label ' gpu ' has spaces around it; labels are matched exactly, ...
"""

from __future__ import annotations

from typing import Any

MAX_LABEL_CHARS = 128


def check_label(label: Any) -> str:
    """``label`` if it can be a label; ``ValueError`` saying why not."""
    if not isinstance(label, str) or not label:
        raise ValueError(f"each label must be a non-empty string, got {label!r}")
    if label != label.strip():
        raise ValueError(
            f"label {label!r} has spaces around it; labels are matched exactly, so no "
            f"target's label would match it"
        )
    if "," in label:
        raise ValueError(
            f"label {label!r} contains a comma: give each label on its own (--label a --label b)"
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in label):
        raise ValueError(f"label {label!r} contains a control character")
    if len(label) > MAX_LABEL_CHARS:
        raise ValueError(f"label {label[:20]!r}... is longer than {MAX_LABEL_CHARS} characters")
    return label


def check_labels(labels: Any) -> Any:
    """Each of ``labels`` checked (``check_label``); anything but a list is left to the model."""
    if isinstance(labels, list | tuple | set | frozenset):
        for label in labels:
            check_label(label)
    return labels
