"""Names of ephemeral Dask clusters, and how flowrelay's supply meets a flow's cluster_kwargs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flowrelay.core.clusters import MAX_CLUSTER_NAME, ClusterSupply, ClusterSweep, cluster_name
from flowrelay.core.runs import RUN_ID_PATTERN

run_ids = st.from_regex(RUN_ID_PATTERN, fullmatch=True)
#: A DNS-1123 label (Kubernetes), an ECS family part and ``startedBy`` all take this.
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@given(run_ids, st.integers(min_value=1, max_value=999))
def test_a_cluster_name_fits_everywhere_it_is_used(run_id: str, attempt: int) -> None:
    name = cluster_name(run_id, attempt)
    assert len(name) <= MAX_CLUSTER_NAME
    assert NAME.match(name), name
    assert name == cluster_name(run_id, attempt)  # found again from the run alone


@given(run_ids, run_ids, st.integers(min_value=1, max_value=20))
def test_distinct_runs_and_attempts_get_distinct_clusters(a: str, b: str, attempt: int) -> None:
    if a != b:
        assert cluster_name(a, attempt) != cluster_name(b, attempt)
    assert cluster_name(a, attempt) != cluster_name(a, attempt + 1)


def supply(**fields: object) -> ClusterSupply:
    return ClusterSupply(
        classes=["dask_kubernetes.operator.KubeCluster"],
        sweep=ClusterSweep(kind="kubernetes", name="frd-r-1", cluster_class="k"),
        **fields,
    )


def test_a_custom_cluster_spec_file_gets_the_runs_name_and_labels(tmp_path: Path) -> None:
    spec = {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": "mine", "labels": {"team": "data"}},
        "spec": {"worker": {"replicas": 2}},
    }
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(spec))
    given_supply = supply(
        spec_overrides={
            "custom_cluster_spec": {"metadata": {"name": "frd-r-1", "labels": {"run": "r"}}}
        }
    )
    merged, _ = given_supply.merged({"custom_cluster_spec": str(path)})
    assert merged["custom_cluster_spec"] == {
        **spec,
        "metadata": {"name": "frd-r-1", "labels": {"team": "data", "run": "r"}},
    }
    # No spec given: none is made up.
    assert "custom_cluster_spec" not in given_supply.merged({})[0]


def test_an_unreadable_spec_is_named(tmp_path: Path) -> None:
    given_supply = supply(spec_overrides={"custom_cluster_spec": {"metadata": {"name": "n"}}})
    with pytest.raises(ValueError, match="custom_cluster_spec: cannot read"):
        given_supply.merged({"custom_cluster_spec": str(tmp_path / "missing.yaml")})
