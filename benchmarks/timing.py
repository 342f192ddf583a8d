"""Wall-clock sampling: interleaved repeats, best and median."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar


@dataclass
class Samples:
    """Wall times of repeated runs, in seconds."""

    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def as_dict(self) -> dict[str, object]:
        return {"best_s": self.best, "median_s": self.median, "samples_s": self.seconds}


T = TypeVar("T")
U = TypeVar("U")


def time_once(fn: Callable[[], T], check: Callable[[T], None] | None = None) -> float:
    """Seconds one call of ``fn`` takes, starting from a freshly collected heap. ``check``
    validates the returned value after the clock has stopped."""
    gc.collect()
    start = time.perf_counter()
    value = fn()
    elapsed = time.perf_counter() - start
    if check is not None:
        check(value)
    return elapsed


def measure(fn: Callable[[], T], repeats: int, check: Callable[[T], None] | None = None) -> Samples:
    samples = Samples()
    for _ in range(repeats):
        samples.seconds.append(time_once(fn, check))
    return samples


def measure_pair(
    ours: Callable[[], T],
    baseline: Callable[[], U],
    repeats: int,
    *,
    check_ours: Callable[[T], None] | None = None,
    check_baseline: Callable[[U], None] | None = None,
    baseline_calls_per_repeat: int = 1,
) -> tuple[Samples, Samples]:
    """Time ``ours`` and ``baseline`` alternately, so slow drifts of the machine hit both.

    ``baseline_calls_per_repeat`` > 1 times a cheap baseline several times per repeat (each call
    is a separate sample) so its best is not dominated by timer noise.
    """
    ours_samples, baseline_samples = Samples(), Samples()
    for _ in range(repeats):
        ours_samples.seconds.append(time_once(ours, check_ours))
        for _ in range(baseline_calls_per_repeat):
            baseline_samples.seconds.append(time_once(baseline, check_baseline))
    return ours_samples, baseline_samples
