"""The label rule (seed 004): which launch targets may take a run.

A target may take a run when the target's labels are a superset of the run's labels. An empty
label set counts as a label of its own: a run with no labels goes only to targets with no labels.

>>> match_labels(target_labels=["dev", "staging", "ml"], run_labels=["dev", "ml"]).matches
True
>>> match_labels(target_labels=["dev", "staging"], run_labels=["dev", "ml"]).reason
'missing labels: ml'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LabelMatch:
    """The outcome of matching one run against one target; ``reason`` says why not."""

    matches: bool
    missing: frozenset[str]
    reason: str

    def __bool__(self) -> bool:
        return self.matches


def match_labels(target_labels: Iterable[str], run_labels: Iterable[str]) -> LabelMatch:
    """Whether a target with ``target_labels`` may take a run with ``run_labels``, and why not."""
    target, run = frozenset(target_labels), frozenset(run_labels)
    if not run and target:
        return LabelMatch(
            matches=False,
            missing=frozenset(),
            reason=(
                "the run has no labels, and a run with no labels only goes to targets with no "
                f"labels (this target has: {', '.join(sorted(target))})"
            ),
        )
    missing = run - target
    if missing:
        return LabelMatch(False, missing, f"missing labels: {', '.join(sorted(missing))}")
    return LabelMatch(True, frozenset(), "labels match")
