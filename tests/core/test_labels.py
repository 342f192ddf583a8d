"""The label rule (docs/run-configs.md): a target takes a run when its labels are a superset of
the run's; a run with no labels goes only to targets with no labels."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowrelay.core.routing import LabelMatch, match_labels


def test_seed_example_superset_matches() -> None:
    match = match_labels(target_labels=["dev", "staging", "ml"], run_labels=["dev", "ml"])
    assert match.matches is True
    assert bool(match) is True
    assert match.missing == frozenset()
    assert match.reason == "labels match"


def test_seed_example_missing_label_does_not_match() -> None:
    match = match_labels(target_labels=["dev", "staging"], run_labels=["dev", "ml"])
    assert match.matches is False
    assert bool(match) is False
    assert match.missing == frozenset({"ml"})
    assert match.reason == "missing labels: ml"


def test_run_without_labels_does_not_go_to_a_labeled_target() -> None:
    match = match_labels(target_labels=["dev", "gpu"], run_labels=[])
    assert not match
    assert match.missing == frozenset()
    assert "no labels" in match.reason
    assert "dev, gpu" in match.reason


def test_run_without_labels_goes_to_a_target_without_labels() -> None:
    match = match_labels(target_labels=[], run_labels=[])
    assert match
    assert match.reason == "labels match"


def test_labeled_run_does_not_go_to_an_unlabeled_target_and_all_missing_labels_are_listed() -> None:
    match = match_labels(target_labels=[], run_labels=["zeta", "alpha", "mid"])
    assert not match
    assert match.missing == frozenset({"alpha", "mid", "zeta"})
    assert match.reason == "missing labels: alpha, mid, zeta"


def test_equal_label_sets_match() -> None:
    assert match_labels(["a", "b"], ["b", "a"]).matches


def test_duplicates_and_any_iterable_are_accepted() -> None:
    assert match_labels(iter(["dev", "ml"]), ("ml", "ml", "dev")).matches
    assert match_labels({"dev"}, ["dev", "dev"]).matches


def test_a_label_match_is_immutable() -> None:
    match = match_labels(["a"], ["a"])
    assert isinstance(match, LabelMatch)
    with pytest.raises(AttributeError):
        match.matches = False  # type: ignore[misc]


_label_sets = st.frozensets(st.sampled_from(["dev", "prod", "ml", "gpu", "eu", "us"]), max_size=6)


@settings(max_examples=200)
@given(run=_label_sets, target=_label_sets)
def test_matches_exactly_when_the_label_rule_holds(
    run: frozenset[str], target: frozenset[str]
) -> None:
    match = match_labels(target_labels=sorted(target), run_labels=sorted(run))
    expected = run <= target and (bool(run) or not target)
    assert match.matches is expected
    assert bool(match) is expected
    if expected:
        assert match.missing == frozenset()
        assert match.reason == "labels match"
    elif run:
        assert match.missing == run - target
        assert match.reason == "missing labels: " + ", ".join(sorted(run - target))
    else:
        assert "no labels" in match.reason
