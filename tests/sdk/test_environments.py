"""The deprecated environments (docs/environments.md): every documented argument, the deprecation
warning, the translation into run config + executor, and running flows through them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from flowrelay import Flow, Parameter, task
from flowrelay.core.run_configs import (
    ECSRun,
    KubernetesRun,
    LocalRun,
    UniversalRun,
    parse_run_config,
)
from flowrelay.sdk.environments import (
    DaskCloudProviderEnvironment,
    DaskKubernetesEnvironment,
    Environment,
    FargateTaskEnvironment,
    KubernetesJobEnvironment,
    LocalEnvironment,
    RemoteEnvironment,
    Translation,
    environment_types,
)
from flowrelay.sdk.executors import DaskExecutor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.importing import ImportStringError

E = TypeVar("E", bound=Environment)
FLOW_ENVIRONMENT_DEPRECATED = "flow.environment is deprecated"

SCHEDULER_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: dask-scheduler
spec:
  restartPolicy: Never
  containers:
    - name: scheduler
      image: registry.example.com/etl-flow:0.1.0
      args: [dask-scheduler]
      resources:
        limits: {cpu: "1", memory: 2Gi}
"""

WORKER_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: dask-worker
spec:
  template:
    metadata:
      labels: {app: dask-worker}
    spec:
      serviceAccountName: dask
      containers:
        - name: worker
          image: registry.example.com/etl-flow:0.1.0
          args: [dask-worker, --nthreads, "2"]
"""

FLOW_JOB = """
apiVersion: batch/v1
kind: Job
metadata:
  name: flow-run
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: flow
          image: registry.example.com/etl-flow:0.1.0
"""


def create(cls: type[E], *args: Any, **kwargs: Any) -> E:
    """Create an environment, asserting the DeprecationWarning it must give."""
    with pytest.warns(DeprecationWarning, match=f"{cls.__name__} is deprecated") as record:
        environment = cls(*args, **kwargs)
    # The warning points at the code that created the environment, not at flowrelay.
    assert any(warning.filename == __file__ for warning in record)
    return environment


def hook() -> None:
    pass


def other_hook() -> None:
    pass


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_every_environment_warns_when_created() -> None:
    arguments: dict[str, tuple[Any, ...]] = {"DaskCloudProviderEnvironment": ("x.Cluster",)}
    assert set(environment_types()) == {
        "LocalEnvironment",
        "RemoteEnvironment",
        "DaskKubernetesEnvironment",
        "DaskCloudProviderEnvironment",
        "FargateTaskEnvironment",
        "KubernetesJobEnvironment",
    }
    for name, cls in environment_types().items():
        environment = create(cls, *arguments.get(name, ()))
        assert isinstance(environment.translate(), Translation)


# --- LocalEnvironment -------------------------------------------------------------------------


def test_local_environment_defaults() -> None:
    translation = create(LocalEnvironment).translate()
    assert translation.run_config == LocalRun()
    assert isinstance(translation.executor, LocalExecutor)
    assert translation.on_start is None
    assert translation.on_exit is None
    assert translation.on_execute is None
    assert translation.metadata == {}
    assert translation.notes == []


def test_local_environment_every_argument() -> None:
    executor = LocalDaskExecutor(scheduler="threads", num_workers=2)
    metadata: dict[str, Any] = {"image": "example/flow:1", "owner": {"team": "data"}}
    environment = create(
        LocalEnvironment,
        executor=executor,
        labels=["staging", "dev", "dev"],
        on_start=hook,
        on_exit=other_hook,
        metadata=metadata,
    )
    translation = environment.translate()
    assert translation.run_config == LocalRun(labels=["dev", "staging"])
    assert translation.executor is executor
    assert translation.on_start is hook
    assert translation.on_exit is other_hook
    assert translation.metadata == metadata
    # The translation's metadata is a copy: changing it changes neither the environment's
    # metadata nor the next translation.
    translation.metadata["owner"] = "someone else"
    assert environment.translate().metadata == metadata
    metadata["late"] = True
    assert "late" not in environment.translate().metadata


# --- RemoteEnvironment -------------------------------------------------------------------------


def test_remote_environment_defaults_to_the_local_executor() -> None:
    translation = create(RemoteEnvironment).translate()
    assert translation.run_config == UniversalRun()
    assert isinstance(translation.executor, LocalExecutor)


def test_remote_environment_seed_dask_example() -> None:
    environment = create(
        RemoteEnvironment,
        executor="prefect.engine.executors.DaskExecutor",
        executor_kwargs={"address": "tcp://127.0.0.1:8786"},
        labels=["dask"],
        on_start=hook,
        on_exit=other_hook,
        metadata={"k": "v"},
    )
    translation = environment.translate()
    assert type(translation.executor) is DaskExecutor
    assert translation.executor.address == "tcp://127.0.0.1:8786"
    assert translation.executor.cluster_class is None
    assert translation.run_config == UniversalRun(labels=["dask"])
    assert (translation.on_start, translation.on_exit) == (hook, other_hook)
    assert translation.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("import_string", "executor_type"),
    [
        ("prefect.engine.executors.LocalExecutor", LocalExecutor),
        ("prefect.executors.LocalDaskExecutor", LocalDaskExecutor),
        ("flowrelay.executors.DaskExecutor", DaskExecutor),
        ("flowrelay.executors:LocalExecutor", LocalExecutor),
    ],
)
def test_remote_environment_resolves_executor_import_strings(
    import_string: str, executor_type: type
) -> None:
    environment = create(RemoteEnvironment, executor=import_string)
    assert type(environment.translate().executor) is executor_type


def test_remote_environment_passes_executor_kwargs() -> None:
    environment = create(
        RemoteEnvironment,
        executor="prefect.engine.executors.LocalDaskExecutor",
        executor_kwargs={"scheduler": "synchronous", "num_workers": 3},
    )
    executor = environment.translate().executor
    assert isinstance(executor, LocalDaskExecutor)
    assert (executor.scheduler, executor.num_workers) == ("synchronous", 3)
    # Each translation builds its own executor: runs do not share executor state.
    assert environment.translate().executor is not executor


def test_remote_environment_rejects_a_class_that_is_not_an_executor() -> None:
    with (
        pytest.warns(DeprecationWarning, match="RemoteEnvironment is deprecated"),
        pytest.raises(
            TypeError, match=re.escape("'collections.OrderedDict' is not an executor class")
        ),
    ):
        RemoteEnvironment(executor="collections.OrderedDict")


def test_remote_environment_rejects_an_unimportable_executor() -> None:
    with (
        pytest.warns(DeprecationWarning, match="RemoteEnvironment is deprecated"),
        pytest.raises(ImportStringError, match="flowrelay_nowhere"),
    ):
        RemoteEnvironment(executor="flowrelay_nowhere.Executor")


def test_remote_environment_bad_executor_kwargs_fail_on_translate() -> None:
    environment = create(
        RemoteEnvironment,
        executor="prefect.engine.executors.LocalDaskExecutor",
        executor_kwargs={"scheduler": "gpu"},
    )
    with pytest.raises(ValueError, match="unknown scheduler 'gpu'"):
        environment.translate()


# --- DaskKubernetesEnvironment ------------------------------------------------------------------


def test_dask_kubernetes_environment_defaults() -> None:
    environment = create(DaskKubernetesEnvironment)
    assert (environment.min_workers, environment.max_workers) == (1, 2)
    assert environment.work_stealing is True
    assert environment.scheduler_logs is False
    assert environment.private_registry is False
    assert environment.docker_secret == "DOCKER_REGISTRY_CREDENTIALS"
    assert environment.log_k8s_errors is False
    translation = environment.translate()
    executor = translation.executor
    assert isinstance(executor, DaskExecutor)
    assert executor.address is None
    assert executor.cluster_class == "dask_kubernetes.operator.KubeCluster"
    assert executor.adapt_kwargs == {"minimum": 1, "maximum": 2}
    assert executor.cluster_kwargs["n_workers"] == 1
    assert "custom_cluster_spec" not in executor.cluster_kwargs
    run_config = translation.run_config
    assert isinstance(run_config, KubernetesRun)
    assert run_config.image_pull_secrets is None
    assert run_config.env == {
        "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "True",
        "DASK_LOGGING__DISTRIBUTED": "warning",
    }
    assert executor.cluster_kwargs["env"] == run_config.env
    assert translation.notes == []


def test_dask_kubernetes_environment_every_argument(tmp_path: Path) -> None:
    environment = create(
        DaskKubernetesEnvironment,
        min_workers=2,
        max_workers=5,
        work_stealing=False,
        scheduler_logs=True,
        private_registry=True,
        docker_secret="MY_REGISTRY_CREDS",
        labels=["k8s", "dask"],
        on_start=hook,
        on_exit=other_hook,
        metadata={"image": "registry.example.com/etl-flow:0.1.0"},
        scheduler_spec_file=write(tmp_path, "scheduler.yaml", SCHEDULER_POD),
        worker_spec_file=write(tmp_path, "worker.yaml", WORKER_JOB),
        image_pull_secret="some-secret,other-secret",
        log_k8s_errors=True,
    )
    translation = environment.translate()
    run_config = translation.run_config
    assert isinstance(run_config, KubernetesRun)
    assert run_config.labels == ["dask", "k8s"]
    assert run_config.image_pull_secrets == ["some-secret", "other-secret", "my-registry-creds"]
    assert run_config.env == {
        "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "False",
        "DASK_LOGGING__DISTRIBUTED": "info",
    }
    executor = translation.executor
    assert isinstance(executor, DaskExecutor)
    assert executor.adapt_kwargs == {"minimum": 2, "maximum": 5}
    assert executor.cluster_kwargs["n_workers"] == 2
    assert executor.cluster_kwargs["custom_cluster_spec"]["spec"]["worker"]["replicas"] == 2
    assert (translation.on_start, translation.on_exit) == (hook, other_hook)
    assert translation.metadata == {"image": "registry.example.com/etl-flow:0.1.0"}
    assert any("log_k8s_errors" in note for note in translation.notes)


def test_dask_kubernetes_custom_specs_embed_their_pod_specs(tmp_path: Path) -> None:
    environment = create(
        DaskKubernetesEnvironment,
        scheduler_spec_file=write(tmp_path, "scheduler.yaml", SCHEDULER_POD),
        worker_spec_file=write(tmp_path, "worker.yaml", WORKER_JOB),
    )
    executor = environment.translate().executor
    assert isinstance(executor, DaskExecutor)
    spec = executor.cluster_kwargs["custom_cluster_spec"]
    assert spec["kind"] == "DaskCluster"
    scheduler_pod = yaml.safe_load(SCHEDULER_POD)["spec"]
    worker_pod = yaml.safe_load(WORKER_JOB)["spec"]["template"]["spec"]
    assert spec["spec"]["scheduler"]["spec"] == scheduler_pod
    assert spec["spec"]["worker"]["spec"] == worker_pod
    assert spec["spec"]["worker"]["spec"]["serviceAccountName"] == "dask"


def test_dask_kubernetes_job_manifest_as_scheduler_and_pod_manifest_as_worker(
    tmp_path: Path,
) -> None:
    worker_pod_manifest = SCHEDULER_POD.replace("scheduler", "worker")
    environment = create(
        DaskKubernetesEnvironment,
        scheduler_spec_file=write(tmp_path, "scheduler.yaml", WORKER_JOB),
        worker_spec_file=write(tmp_path, "worker.yaml", worker_pod_manifest),
    )
    executor = environment.translate().executor
    assert isinstance(executor, DaskExecutor)
    spec = executor.cluster_kwargs["custom_cluster_spec"]["spec"]
    assert spec["scheduler"]["spec"] == yaml.safe_load(WORKER_JOB)["spec"]["template"]["spec"]
    assert spec["worker"]["spec"] == yaml.safe_load(worker_pod_manifest)["spec"]


def test_dask_kubernetes_only_a_worker_spec_keeps_a_default_scheduler(tmp_path: Path) -> None:
    environment = create(
        DaskKubernetesEnvironment, worker_spec_file=write(tmp_path, "worker.yaml", WORKER_JOB)
    )
    executor = environment.translate().executor
    assert isinstance(executor, DaskExecutor)
    spec = executor.cluster_kwargs["custom_cluster_spec"]["spec"]
    assert spec["worker"]["spec"]["containers"][0]["args"][0] == "dask-worker"
    assert spec["scheduler"]["spec"]["containers"][0]["args"] == ["dask-scheduler"]


def test_dask_kubernetes_specs_are_read_when_the_environment_is_created(tmp_path: Path) -> None:
    worker = write(tmp_path, "worker.yaml", WORKER_JOB)
    environment = create(DaskKubernetesEnvironment, worker_spec_file=worker)
    Path(worker).unlink()
    executor = environment.translate().executor
    assert isinstance(executor, DaskExecutor)
    assert "custom_cluster_spec" in executor.cluster_kwargs


@pytest.mark.parametrize("argument", ["scheduler_spec_file", "worker_spec_file"])
def test_dask_kubernetes_missing_spec_file_names_the_path(tmp_path: Path, argument: str) -> None:
    missing = str(tmp_path / "specs" / "missing.yaml")
    kwargs: dict[str, Any] = {argument: missing}
    with (
        pytest.warns(DeprecationWarning, match="DaskKubernetesEnvironment is deprecated"),
        pytest.raises(ValueError, match="cannot read spec file") as info,
    ):
        DaskKubernetesEnvironment(**kwargs)
    assert repr(missing) in str(info.value)
    assert "No such file or directory" in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("kind: [Pod", "is not valid YAML"), ("- a\n- b\n", "must hold a mapping")],
)
def test_dask_kubernetes_bad_spec_file(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, "worker.yaml", text)
    with (
        pytest.warns(DeprecationWarning, match="DaskKubernetesEnvironment is deprecated"),
        pytest.raises(ValueError, match=problem) as info,
    ):
        DaskKubernetesEnvironment(worker_spec_file=path)
    assert repr(path) in str(info.value)


@pytest.mark.parametrize(("minimum", "maximum"), [(3, 2), (-1, 2)])
def test_dask_kubernetes_worker_bounds_are_checked(minimum: int, maximum: int) -> None:
    with (
        pytest.warns(DeprecationWarning, match="DaskKubernetesEnvironment is deprecated"),
        pytest.raises(ValueError, match=f"got {minimum} and {maximum}"),
    ):
        DaskKubernetesEnvironment(min_workers=minimum, max_workers=maximum)


def test_dask_kubernetes_image_pull_secret_splits_on_commas() -> None:
    environment = create(DaskKubernetesEnvironment, image_pull_secret="a,b")
    assert environment.translate().run_config == KubernetesRun(
        image_pull_secrets=["a", "b"],
        env={
            "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": "True",
            "DASK_LOGGING__DISTRIBUTED": "warning",
        },
    )
    single = create(DaskKubernetesEnvironment, image_pull_secret="only")
    run_config = single.translate().run_config
    assert isinstance(run_config, KubernetesRun)
    assert run_config.image_pull_secrets == ["only"]


# --- DaskCloudProviderEnvironment ---------------------------------------------------------------


def size_cluster(parameters: dict[str, Any], provider_kwargs: dict[str, Any]) -> None:
    if parameters["small"]:
        provider_kwargs["n_workers"] = 1


def test_dask_cloud_provider_environment_every_argument() -> None:
    from distributed.security import Security

    security = Security()
    environment = create(
        DaskCloudProviderEnvironment,
        "dask_cloudprovider.FargateCluster",
        adaptive_min_workers=2,
        adaptive_max_workers=8,
        security=security,
        executor_kwargs={"client_kwargs": {"set_as_default": False}, "debug": True},
        labels=["aws"],
        on_execute=size_cluster,
        on_start=hook,
        on_exit=other_hook,
        metadata={"owner": "data"},
        n_workers=2,
        image="example/flow:1",
        fargate_use_private_ip=True,
    )
    translation = environment.translate()
    assert translation.run_config == ECSRun(labels=["aws"])
    executor = translation.executor
    assert isinstance(executor, DaskExecutor)
    assert executor.cluster_class == "dask_cloudprovider.FargateCluster"
    assert executor.cluster_kwargs == {
        "n_workers": 2,
        "image": "example/flow:1",
        "fargate_use_private_ip": True,
        "security": security,
    }
    assert executor.adapt_kwargs == {"minimum": 2, "maximum": 8}
    assert executor.client_kwargs == {"set_as_default": False, "security": security}
    assert executor.debug is True
    assert translation.on_execute is size_cluster
    assert (translation.on_start, translation.on_exit) == (hook, other_hook)
    assert translation.metadata == {"owner": "data"}


def test_dask_cloud_provider_translates_the_same_every_time() -> None:
    environment = create(
        DaskCloudProviderEnvironment,
        "distributed.LocalCluster",
        executor_kwargs={"client_kwargs": {"set_as_default": False}, "debug": True},
    )
    first, second = environment.translate().executor, environment.translate().executor
    assert isinstance(first, DaskExecutor)
    assert isinstance(second, DaskExecutor)
    assert first.client_kwargs == second.client_kwargs == {"set_as_default": False}
    assert first.debug is second.debug is True
    assert environment.executor_kwargs == {
        "client_kwargs": {"set_as_default": False},
        "debug": True,
    }


def test_dask_cloud_provider_adaptive_mode_only_with_a_minimum() -> None:
    fixed = create(DaskCloudProviderEnvironment, "distributed.LocalCluster", n_workers=3)
    fixed_executor = fixed.translate().executor
    assert isinstance(fixed_executor, DaskExecutor)
    assert fixed_executor.adapt_kwargs is None
    assert fixed_executor.cluster_kwargs == {"n_workers": 3}
    assert fixed_executor.client_kwargs == {}

    minimum_only = create(
        DaskCloudProviderEnvironment, "distributed.LocalCluster", adaptive_min_workers=1
    )
    minimum_executor = minimum_only.translate().executor
    assert isinstance(minimum_executor, DaskExecutor)
    assert minimum_executor.adapt_kwargs == {"minimum": 1}


def test_dask_cloud_provider_accepts_a_provider_class() -> None:
    from distributed import LocalCluster

    environment = create(DaskCloudProviderEnvironment, LocalCluster)
    executor = environment.translate().executor
    assert isinstance(executor, DaskExecutor)
    assert executor.resolve_cluster_class() is LocalCluster


@task
def count_workers() -> int:
    import distributed

    return len(distributed.get_client().scheduler_info()["workers"])


def cluster_flow(environment: Environment | None = None) -> tuple[Flow, Any]:
    with Flow("sized", environment=environment) as flow:
        flow.add_task(Parameter("small", default=True))
        workers = count_workers()
    return flow, workers


@pytest.mark.slow
def test_on_execute_sizes_the_cluster_of_a_real_run() -> None:
    events: list[str] = []
    environment = create(
        DaskCloudProviderEnvironment,
        provider_class="distributed.LocalCluster",
        n_workers=2,
        processes=False,
        # None would still serve HTTP, on the shared port 8787 of every interface.
        dashboard_address="127.0.0.1:0",
        on_execute=size_cluster,
        on_start=lambda: events.append("start"),
        on_exit=lambda: events.append("exit"),
    )
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        flow, workers = cluster_flow(environment)
    assert flow.environment is environment

    small = flow.run(small=True)
    assert small.is_successful(), small.message
    assert small.result[workers].result == 1
    assert events == ["start", "exit"]

    # Without the on_execute change the cluster has the configured 2 workers: the test above
    # really observed on_execute's sizing.
    large = flow.run(small=False)
    assert large.is_successful(), large.message
    assert large.result[workers].result == 2
    assert events == ["start", "exit", "start", "exit"]
    # on_execute changed a copy: the environment's provider kwargs are untouched.
    assert environment.provider_kwargs["n_workers"] == 2


@pytest.mark.slow
def test_environment_run_runs_the_flow_with_its_hooks() -> None:
    events: list[str] = []
    environment = create(
        DaskCloudProviderEnvironment,
        provider_class="distributed.LocalCluster",
        n_workers=2,
        processes=False,
        # None would still serve HTTP, on the shared port 8787 of every interface.
        dashboard_address="127.0.0.1:0",
        on_execute=size_cluster,
        on_start=lambda: events.append("start"),
        on_exit=lambda: events.append("exit"),
    )
    flow, workers = cluster_flow()
    assert flow.on_start is None
    state = environment.run(flow, parameters={"small": True})
    assert state.is_successful(), state.message
    assert state.result[workers].result == 1
    assert events == ["start", "exit"]
    # The flow's own configuration is restored afterwards.
    assert (flow.on_start, flow.on_exit, flow.on_execute) == (None, None, None)
    assert flow.executor is None
    assert flow.run_config is None


# --- FargateTaskEnvironment ----------------------------------------------------------------------

CONTAINERS = [{"name": "flow", "image": "example/flow:1", "essential": True}]


def test_fargate_environment_defaults() -> None:
    environment = create(FargateTaskEnvironment)
    assert environment.launch_type == "FARGATE"
    translation = environment.translate()
    assert translation.run_config == ECSRun(run_task_kwargs={"launchType": "FARGATE"})
    assert isinstance(translation.executor, LocalExecutor)
    assert translation.notes == []


def test_fargate_environment_every_argument_splits_boto3_kwargs() -> None:
    executor = LocalDaskExecutor()
    placement = [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]
    tags = [{"key": "team", "value": "data"}]
    environment = create(
        FargateTaskEnvironment,
        launch_type="EC2",
        aws_access_key_id="AKIAEXAMPLEKEYID0000",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
        aws_session_token="FwoGZXIvYXdzEXAMPLESESSIONTOKEN",
        region_name="eu-west-1",
        executor=executor,
        labels=["aws", "ecs"],
        on_start=hook,
        on_exit=other_hook,
        metadata={"owner": "data"},
        family="etl-flow",
        taskDefinition="etl-flow",
        cpu="256",
        memory="512",
        networkMode="awsvpc",
        requiresCompatibilities=["EC2"],
        containerDefinitions=CONTAINERS,
        executionRoleArn="arn:aws:iam::123456789012:role/exec",
        placementConstraints=placement,
        tags=tags,
        cluster="flows",
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        overrides={"containerOverrides": []},
        platformVersion="LATEST",
        enableExecuteCommand=True,
    )
    translation = environment.translate()
    run_config = translation.run_config
    assert isinstance(run_config, ECSRun)
    assert run_config.labels == ["aws", "ecs"]
    assert run_config.task_definition == {
        "family": "etl-flow",
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": CONTAINERS,
        "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
        "placementConstraints": placement,
        "tags": tags,
    }
    assert run_config.run_task_kwargs == {
        "launchType": "EC2",
        "taskDefinition": "etl-flow",
        "placementConstraints": placement,
        "tags": tags,
        "cluster": "flows",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        "overrides": {"containerOverrides": []},
        "platformVersion": "LATEST",
        "enableExecuteCommand": True,
    }
    assert translation.executor is executor
    assert (translation.on_start, translation.on_exit) == (hook, other_hook)
    assert translation.metadata == {"owner": "data"}
    assert any("credentials were ignored" in note for note in translation.notes)
    assert any("eu-west-1" in note for note in translation.notes)
    assert parse_run_config(run_config.model_dump_json()) == run_config


def test_fargate_credentials_never_appear_in_the_translation() -> None:
    secrets = {
        "aws_access_key_id": "AKIAEXAMPLEKEYID0000",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
        "aws_session_token": "FwoGZXIvYXdzEXAMPLESESSIONTOKEN",
    }
    environment = create(FargateTaskEnvironment, family="etl", cluster="flows", **secrets)
    translation = environment.translate()
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        flow = Flow("fargate", environment=environment)
    places = [
        repr(translation),
        str(translation.notes),
        translation.run_config.model_dump_json(),
        repr(translation.run_config.model_dump()),
        repr(vars(environment)),
        repr(vars(flow)),
        json.dumps(translation.metadata),
    ]
    for secret in secrets.values():
        for place in places:
            assert secret not in place


def test_fargate_unknown_kwarg_names_it() -> None:
    with (
        pytest.warns(DeprecationWarning, match="FargateTaskEnvironment is deprecated"),
        pytest.raises(TypeError, match="containerDefinition, taskdefinition are not arguments"),
    ):
        FargateTaskEnvironment(family="etl", containerDefinition=[], taskdefinition="etl")


def test_fargate_launch_type_is_checked() -> None:
    with (
        pytest.warns(DeprecationWarning, match="FargateTaskEnvironment is deprecated"),
        pytest.raises(ValueError, match="launch_type must be FARGATE or EC2, got 'LAMBDA'"),
    ):
        FargateTaskEnvironment(launch_type="LAMBDA")


# --- KubernetesJobEnvironment ---------------------------------------------------------------------


def test_kubernetes_job_environment_every_argument(tmp_path: Path) -> None:
    executor = LocalDaskExecutor()
    environment = create(
        KubernetesJobEnvironment,
        job_spec_file=write(tmp_path, "job.yaml", FLOW_JOB),
        unique_job_name=True,
        executor=executor,
        labels=["k8s"],
        on_start=hook,
        on_exit=other_hook,
        metadata={"image": "registry.example.com/etl-flow:0.1.0"},
    )
    assert environment.unique_job_name is True
    translation = environment.translate()
    assert translation.run_config == KubernetesRun(
        labels=["k8s"], job_template=yaml.safe_load(FLOW_JOB)
    )
    assert translation.executor is executor
    assert (translation.on_start, translation.on_exit) == (hook, other_hook)
    assert translation.metadata == {"image": "registry.example.com/etl-flow:0.1.0"}


def test_kubernetes_job_environment_defaults() -> None:
    environment = create(KubernetesJobEnvironment)
    assert environment.unique_job_name is False
    translation = environment.translate()
    assert translation.run_config == KubernetesRun()
    assert isinstance(translation.executor, LocalExecutor)


def test_kubernetes_job_environment_missing_spec_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "job.yaml")
    with (
        pytest.warns(DeprecationWarning, match="KubernetesJobEnvironment is deprecated"),
        pytest.raises(ValueError, match="cannot read spec file") as info,
    ):
        KubernetesJobEnvironment(job_spec_file=missing)
    assert repr(missing) in str(info.value)


# --- flows configured with environments ---------------------------------------------------------


def test_flow_environment_argument_sets_run_config_and_executor() -> None:
    environment = create(LocalEnvironment, labels=["dev"], executor=LocalDaskExecutor())
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        flow = Flow("x", environment=environment)
    assert flow.environment is environment
    assert flow.run_config == LocalRun(labels=["dev"])
    assert flow.executor is environment.executor
    assert flow.labels == {"dev"}


def test_flow_environment_attribute_sets_run_config_and_executor() -> None:
    flow = Flow("x")
    environment = create(
        RemoteEnvironment,
        executor="prefect.engine.executors.DaskExecutor",
        executor_kwargs={"address": "tcp://127.0.0.1:8786"},
        labels=["remote"],
    )
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED) as record:
        flow.environment = environment
    assert record[0].filename == __file__
    assert flow.run_config == UniversalRun(labels=["remote"])
    assert isinstance(flow.executor, DaskExecutor)
    assert flow.executor.address == "tcp://127.0.0.1:8786"


def test_explicit_run_config_and_executor_are_kept() -> None:
    run_config = ECSRun(labels=["explicit"])
    executor = LocalDaskExecutor()
    environment = create(LocalEnvironment, labels=["from-environment"], on_start=hook)
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        flow = Flow("x", run_config=run_config, executor=executor, environment=environment)
    assert flow.run_config is run_config
    assert flow.executor is executor
    assert flow.on_start is hook
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        only_run_config = Flow("y", run_config=run_config, environment=environment)
    assert only_run_config.run_config is run_config
    assert isinstance(only_run_config.executor, LocalExecutor)


def recorder(events: list[str], name: str) -> Any:
    """A task that appends ``name`` to ``events`` when it runs."""

    @task(name=name)
    def record() -> str:
        events.append(name)
        return name

    return record


@task
def explode(value: str) -> str:
    raise RuntimeError(f"cannot handle {value}")


def test_flow_run_calls_the_environment_hooks_around_the_tasks() -> None:
    events: list[str] = []
    environment = create(
        LocalEnvironment,
        on_start=lambda: events.append("on_start"),
        on_exit=lambda: events.append("on_exit"),
    )
    with (
        pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED),
        Flow("hooks", environment=environment) as flow,
    ):
        recorder(events, "task")()
    assert events == []
    state = flow.run()
    assert state.is_successful(), state.message
    assert events == ["on_start", "task", "on_exit"]


def test_on_exit_runs_when_a_task_fails() -> None:
    events: list[str] = []
    environment = create(
        LocalEnvironment,
        on_start=lambda: events.append("on_start"),
        on_exit=lambda: events.append("on_exit"),
    )
    flow = Flow("failing")
    with pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED):
        flow.environment = environment
    with flow:
        explode(recorder(events, "task")())
    state = flow.run()
    assert state.is_failed()
    assert "RuntimeError: cannot handle task" in (state.message or "")
    assert events == ["on_start", "task", "on_exit"]


def test_on_exit_runs_when_on_start_succeeded_and_the_executor_fails_to_start() -> None:
    events: list[str] = []
    environment = create(
        RemoteEnvironment,
        executor="prefect.engine.executors.DaskExecutor",
        executor_kwargs={"cluster_class": "flowrelay_nowhere.Cluster"},
        on_start=lambda: events.append("on_start"),
        on_exit=lambda: events.append("on_exit"),
    )
    with (
        pytest.warns(DeprecationWarning, match=FLOW_ENVIRONMENT_DEPRECATED),
        Flow("broken", environment=environment) as flow,
    ):
        recorder(events, "task")()
    with pytest.raises(ImportStringError, match="flowrelay_nowhere"):
        flow.run()
    assert events == ["on_start", "on_exit"]


def test_environment_run_with_a_local_environment_restores_the_flow() -> None:
    events: list[str] = []
    environment = create(
        LocalEnvironment,
        on_start=lambda: events.append("on_start"),
        on_exit=lambda: events.append("on_exit"),
    )
    with Flow("plain") as flow:
        recorder(events, "task")()
    flow.on_start = hook
    state = environment.run(flow)
    assert state.is_successful(), state.message
    assert events == ["on_start", "task", "on_exit"]
    assert flow.on_start is hook
    assert flow.on_exit is None
