"""Concurrency limits: at most ``max_runs`` runs at once that carry a label, are of a flow, or
run on a target (issue 15; the control plane takes and releases their slots).

A run is subject to every limit that applies to it: each label it carries, its flow, and the
target chosen for it. ``max_runs`` 0 pauses what the limit covers.

>>> limit = ConcurrencyLimit(name="warehouse", kind="label", value="warehouse", max_runs=3)
>>> [l.name for l in applicable([limit], labels=["warehouse", "gpu"], flow="etl", target=None)]
['warehouse']
>>> limit.describe()
"label 'warehouse': at most 3 runs at once"
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model

LimitKind = Literal["label", "flow", "target"]


class ConcurrencyLimit(Model):
    """At most ``max_runs`` runs at once among those its ``kind`` and ``value`` select."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: LimitKind
    value: str = Field(min_length=1, max_length=256)
    max_runs: int = Field(ge=0, le=100_000)

    def applies_to(self, labels: Iterable[str], flow: str, target: str | None) -> bool:
        """Whether a run with these labels, of this flow, on this target (None: not chosen
        yet) is subject to this limit."""
        if self.kind == "label":
            return self.value in set(labels)
        if self.kind == "flow":
            return self.value == flow
        return target is not None and self.value == target

    def describe(self) -> str:
        """The limit in words, for messages and listings."""
        if self.max_runs == 0:
            return f"{self.kind} {self.value!r}: paused (at most 0 runs)"
        runs = "run" if self.max_runs == 1 else "runs"
        return f"{self.kind} {self.value!r}: at most {self.max_runs} {runs} at once"


def applicable(
    limits: Iterable[ConcurrencyLimit], labels: Iterable[str], flow: str, target: str | None
) -> list[ConcurrencyLimit]:
    """The limits a run is subject to, by name (the order slots are taken in)."""
    labels = list(labels)
    return sorted(
        (limit for limit in limits if limit.applies_to(labels, flow, target)),
        key=lambda limit: limit.name,
    )
