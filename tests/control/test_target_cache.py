"""The dispatcher's cache of launch targets: read once per TTL, fresh when nothing fits.

The store's read is the one boundary replaced here (a list the test changes, counting reads);
the cache's behaviour is what is tested.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowrelay.control.dispatch import TARGETS_TTL_SECONDS, TargetCache
from flowrelay.core.routing import Target


class Stored:
    """What the table holds, and how often it was read."""

    def __init__(self) -> None:
        self.targets: list[Target] = []
        self.reads = 0
        self.now = datetime(2026, 11, 30, tzinfo=UTC)

    def read(self) -> list[Target]:
        self.reads += 1
        return list(self.targets)

    def cache(self) -> TargetCache:
        return TargetCache(self.read, launchable={"ecs", "kubernetes"}, clock=lambda: self.now)


def ecs(name: str, *labels: str) -> Target:
    return Target(name=name, kind="ecs", labels=list(labels))


def test_targets_are_read_once_per_ttl() -> None:
    stored = Stored()
    stored.targets = [ecs("a", "prod")]
    cache = stored.cache()
    for _ in range(5):
        assert cache.choose(["prod"], None).target == ecs("a", "prod")
        stored.now += timedelta(seconds=1)
    assert stored.reads == 1
    stored.now += timedelta(seconds=TARGETS_TTL_SECONDS)
    cache.choose(["prod"], None)
    assert stored.reads == 2


def test_a_target_just_added_is_used_at_once() -> None:
    stored = Stored()
    cache = stored.cache()
    assert cache.choose(["gpu"], None).target is None
    stored.targets = [ecs("gpu-pool", "gpu")]
    stored.now += timedelta(seconds=1)  # well within the TTL
    assert cache.choose(["gpu"], None).target == ecs("gpu-pool", "gpu")
    assert stored.reads == 2


def test_a_removed_target_is_seen_within_the_ttl() -> None:
    stored = Stored()
    stored.targets = [ecs("old", "prod"), ecs("zzz", "prod")]
    cache = stored.cache()
    assert cache.choose(["prod"], None).target == ecs("old", "prod")
    stored.targets = [ecs("zzz", "prod")]
    stored.now += timedelta(seconds=TARGETS_TTL_SECONDS - 1)
    assert cache.choose(["prod"], None).target == ecs("old", "prod"), "cached, as documented"
    stored.now += timedelta(seconds=1)
    assert cache.choose(["prod"], None).target == ecs("zzz", "prod")


def test_a_clock_moved_back_reads_again() -> None:
    stored = Stored()
    stored.targets = [ecs("a")]
    cache = stored.cache()
    cache.choose([], None)
    stored.now -= timedelta(minutes=5)
    cache.choose([], None)
    assert stored.reads == 2
