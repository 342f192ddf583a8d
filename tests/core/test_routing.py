"""Choosing a launch target, target settings, and executors as data."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flowrelay.core.registration import ExecutorSpec
from flowrelay.core.routing import Target, choose_target
from flowrelay.core.run_configs import ECSRun, KubernetesRun, LocalRun, UniversalRun
from flowrelay.launchers.ecs.settings import EcsSettings
from flowrelay.launchers.kinds import TargetSettingsError, checked_target, typed_settings
from flowrelay.sdk.executors import DaskExecutor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.executors.spec import build_executor, executor_spec

FARGATE = Target(name="fargate", kind="ecs", labels=["prod"], settings={"cluster": "flows"})
LAPTOP = Target(name="laptop", kind="local")
ML = Target(name="ml", kind="ecs", labels=["ml", "prod"], settings={"cluster": "gpu"})


def test_the_first_fitting_target_by_name() -> None:
    assert choose_target([ML, FARGATE], ["prod"], None).target == FARGATE
    assert choose_target([ML, FARGATE], ["prod", "ml"], ECSRun()).target == ML


def test_a_run_without_labels_goes_only_to_unlabelled_targets() -> None:
    assert choose_target([FARGATE, LAPTOP], [], UniversalRun()).target == LAPTOP
    choice = choose_target([FARGATE], [], None)
    assert choice.target is None
    assert "'fargate': the run has no labels" in choice.reason


def test_the_run_config_kind_must_fit() -> None:
    choice = choose_target([LAPTOP], [], ECSRun())
    assert choice.target is None
    assert choice.reason == "no target fits: 'laptop': an ECSRun cannot run on a local target"
    assert choose_target([LAPTOP], [], {"type": "LocalRun"}).target == LAPTOP
    assert choose_target([FARGATE], ["prod"], KubernetesRun()).target is None
    assert choose_target([LAPTOP], [], LocalRun()).target == LAPTOP


def test_reasons_name_missing_labels_per_target() -> None:
    choice = choose_target([FARGATE, ML], ["gpu"], None)
    assert choice.reason == (
        "no target fits: 'fargate': missing labels: gpu; 'ml': missing labels: gpu"
    )
    assert choose_target([], ["x"], None).reason == "no target fits: there are no targets"


def test_settings_are_checked_against_the_kind() -> None:
    with pytest.raises(TargetSettingsError, match=r"settings\.cluster: Field required"):
        checked_target(Target(name="bad", kind="ecs", settings={}))
    with pytest.raises(TargetSettingsError, match=r"settings\.subnet: Extra inputs"):
        checked_target(Target(name="bad", kind="local", settings={"subnet": "x"}))
    with pytest.raises(ValidationError, match="name"):
        Target(name="no spaces", kind="local")
    assert checked_target(FARGATE).settings["launch_type"] == "FARGATE"
    settings = typed_settings(FARGATE, EcsSettings)
    assert isinstance(settings, EcsSettings)
    assert settings.launch_type == "FARGATE"
    spot = Target(
        name="spot",
        kind="ecs",
        settings={
            "cluster": "c",
            "capacity_provider_strategy": [{"capacityProvider": "FARGATE_SPOT"}],
        },
    )
    assert typed_settings(spot, EcsSettings).launch_type is None


@pytest.mark.parametrize(
    "executor",
    [
        LocalExecutor(),
        LocalDaskExecutor(),
        LocalDaskExecutor(scheduler="processes", num_workers=3, **{"array.chunk-size": "1MiB"}),
        DaskExecutor(),
        DaskExecutor(address="tcp://127.0.0.1:8786"),
        DaskExecutor(
            cluster_class="dask_cloudprovider.aws.FargateCluster",
            cluster_kwargs={"n_workers": 2},
            adapt_kwargs={"minimum": 1, "maximum": 4},
            debug=True,
        ),
    ],
)
def test_executor_specs_rebuild_the_same_executor(executor: object) -> None:
    spec = executor_spec(executor)  # type: ignore[arg-type]
    assert ExecutorSpec.model_validate_json(spec.model_dump_json()) == spec
    rebuilt = build_executor(spec)
    assert type(rebuilt) is type(executor)
    assert executor_spec(rebuilt) == spec


def test_a_cluster_class_is_stored_as_an_import_string() -> None:
    from distributed import LocalCluster

    spec = executor_spec(DaskExecutor(cluster_class=LocalCluster))
    assert spec.kwargs["cluster_class"] == "distributed.deploy.local:LocalCluster"
    rebuilt = build_executor(spec)
    assert isinstance(rebuilt, DaskExecutor)
    assert rebuilt.resolve_cluster_class() is LocalCluster


def test_unstorable_executors_say_why() -> None:
    class Inline:  # defined in a function: the runner could never import it
        pass

    with pytest.raises(ValueError, match="cannot be found by the flow runner"):
        executor_spec(DaskExecutor(cluster_class=Inline))
    with pytest.raises(ValueError, match="not JSON-serializable"):
        executor_spec(DaskExecutor(cluster_kwargs={"security": object()}))
    assert executor_spec(None) == ExecutorSpec()


def test_targets_of_kinds_the_stack_cannot_launch_are_passed_over_saying_so() -> None:
    k8s = Target(name="a-k8s", kind="kubernetes", labels=[])
    ecs = Target(name="b-ecs", kind="ecs", labels=[], settings={"cluster": "c"})
    choice = choose_target([k8s, ecs], run_labels=[], run_config=None, launchable={"ecs"})
    assert choice.target == ecs
    alone = choose_target([k8s], run_labels=[], run_config=None, launchable={"ecs"})
    assert alone.target is None
    assert alone.reason == "no target fits: 'a-k8s': this stack does not launch kubernetes targets"
