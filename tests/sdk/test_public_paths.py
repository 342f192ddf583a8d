"""The import paths flow authors write (README.md, docs/flows.md, Prefect 1.x code with the
package renamed) keep working, and name the same objects the layers define."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "flowrelay": ("flowrelay.sdk.flow", ["Flow"], "flowrelay.sdk.tasks", ["task", "Parameter"]),
    "flowrelay.executors": (
        "flowrelay.sdk.executors",
        ["LocalExecutor", "LocalDaskExecutor", "DaskExecutor", "Executor"],
    ),
    "flowrelay.run_configs": (
        "flowrelay.core.run_configs",
        ["UniversalRun", "LocalRun", "DockerRun", "KubernetesRun", "ECSRun", "parse_run_config"],
    ),
    "flowrelay.storage": ("flowrelay.core.storage", ["Module", "Local", "S3", "parse_storage"]),
    "flowrelay.environments": (
        "flowrelay.sdk.environments",
        [
            "LocalEnvironment",
            "RemoteEnvironment",
            "DaskKubernetesEnvironment",
            "DaskCloudProviderEnvironment",
            "FargateTaskEnvironment",
            "KubernetesJobEnvironment",
        ],
    ),
    "flowrelay.schedules": (
        "flowrelay.sdk.schedules",
        ["Schedule", "IntervalSchedule", "CronSchedule"],
    ),
    "flowrelay.schedules.clocks": (
        "flowrelay.sdk.schedules.clocks",
        ["Clock", "IntervalClock", "CronClock", "DatesClock"],
    ),
    "flowrelay.triggers": (
        "flowrelay.sdk.triggers",
        ["all_successful", "all_failed", "any_successful", "manual_only", "some_successful"],
    ),
    "flowrelay.engine.signals": (
        "flowrelay.sdk.signals",
        ["SUCCESS", "FAIL", "SKIP", "RETRY", "LOOP", "ENDRUN", "TRIGGERFAIL"],
    ),
    "flowrelay.engine.state": (
        "flowrelay.sdk.states",
        ["State", "Success", "Failed", "Skipped", "Cached", "Looped", "Retrying", "Mapped"],
    ),
    "flowrelay.engine.results": (
        "flowrelay.sdk.results",
        ["Result", "LocalResult", "S3Result", "PrefectResult"],
    ),
    "flowrelay.engine.result": ("flowrelay.sdk.results", ["Result"]),
    "flowrelay.engine.serializers": (
        "flowrelay.sdk.serializers",
        ["PickleSerializer", "JSONSerializer"],
    ),
    "flowrelay.engine.cache_validators": (
        "flowrelay.sdk.cache_validators",
        ["duration_only", "all_inputs", "all_parameters", "never_use"],
    ),
    "flowrelay.tasks.control_flow": (
        "flowrelay.sdk.control_flow",
        ["case", "merge", "ifelse", "switch", "FilterTask"],
    ),
    "flowrelay.tasks.secrets": (
        "flowrelay.sdk.secrets",
        ["PrefectSecret", "SecretBase", "EnvVarSecret"],
    ),
    "flowrelay.client": ("flowrelay.sdk.secrets", ["Secret"]),
    "flowrelay.utilities.tasks": (
        "flowrelay.sdk.tasks",
        ["task", "tags", "defaults_from_attrs"],
        "flowrelay.sdk.apply_map",
        ["apply_map"],
    ),
    "flowrelay.utilities.edges": ("flowrelay.sdk.tasks", ["mapped", "unmapped", "flatten"]),
}


def test_a_submodule_named_as_the_seeds_engine_does_not_hide_its_class() -> None:
    importlib.import_module("flowrelay.tasks.control_flow.case")  # as a flow may import it
    from flowrelay.sdk.control_flow import case as defined
    from flowrelay.tasks.control_flow import case

    assert case is defined


def test_the_top_level_names_of_the_seeds_engine() -> None:
    import flowrelay
    import flowrelay.context
    from flowrelay import apply_map, case, context, flatten, mapped, tags, triggers, unmapped
    from flowrelay.sdk.runcontext import context as run_context

    assert context is flowrelay.context
    assert triggers is importlib.import_module("flowrelay.triggers")
    assert case is importlib.import_module("flowrelay.sdk.control_flow").case
    assert {apply_map, flatten, mapped, tags, unmapped} <= {
        getattr(flowrelay, name) for name in flowrelay.__all__
    }
    with context(flow_name="outside a run"):
        assert context.get("flow_name") == context.flow_name == run_context.flow_name
        assert "flow_name" in context
        assert context["flow_name"] == "outside a run"
    assert "flow_name" not in context


@pytest.mark.parametrize("public", sorted(PUBLIC))
def test_public_paths_name_the_layers_objects(public: str) -> None:
    module = importlib.import_module(public)
    spec = PUBLIC[public]
    for home, names in zip(spec[::2], spec[1::2], strict=True):
        defined = importlib.import_module(str(home))
        for name in names:
            assert getattr(module, name) is getattr(defined, name), (public, name)


def test_loading_is_on_the_public_storage_path() -> None:
    from flowrelay.sdk.storage import load_flow as defined
    from flowrelay.storage import Module, load_flow

    assert load_flow is defined
    assert load_flow(Module("flowrelay.sdk.examples.hello:flow")).name == "hello"


def test_prefect_style_schedule_imports_work() -> None:
    """``from prefect.schedules import clocks, Schedule`` with the package renamed."""
    from flowrelay.schedules import Schedule, clocks

    schedule = Schedule(clocks=[clocks.CronClock("0 9 * * 1-5")])
    assert schedule.to_spec().clocks[0].expression == "cron(0 9 ? * 2-6 *)"
