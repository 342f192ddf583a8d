"""DEPRECATED execution environments (docs/environments.md), kept so existing flow code runs
unchanged.

Each environment accepts every documented argument, warns ``DeprecationWarning`` when created,
and ``translate()``s itself into the run config + executor (+ hooks) that do the same thing.
``Flow(environment=...)`` and ``flow.environment = ...`` apply the translation. The mapping is
documented in docs/environments.md.

>>> import warnings
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore", DeprecationWarning)
...     translation = LocalEnvironment(labels=["dev"]).translate()
>>> translation.run_config
LocalRun(env=None, labels=['dev'], type='LocalRun', working_dir=None)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flowrelay.core.run_configs import ECSRun, KubernetesRun, LocalRun, RunConfig, UniversalRun
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalExecutor
from flowrelay.sdk.importing import import_object

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.states import State

Hook = Callable[[], None]
OnExecute = Callable[[dict[str, Any], dict[str, Any]], None]

# boto3 register_task_definition / run_task argument names, to split FargateTaskEnvironment's
# **kwargs the way Prefect 1.x describes (a few names belong to both calls).
_TASK_DEFINITION_ARGS = frozenset(
    {
        "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions",
        "volumes", "placementConstraints", "requiresCompatibilities", "cpu", "memory", "tags",
        "pidMode", "ipcMode", "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage",
        "runtimePlatform",
    }
)  # fmt: skip
_RUN_TASK_ARGS = frozenset(
    {
        "cluster", "count", "group", "networkConfiguration", "overrides", "placementConstraints",
        "placementStrategy", "platformVersion", "propagateTags", "referenceId", "startedBy",
        "tags", "enableECSManagedTags", "capacityProviderStrategy", "enableExecuteCommand",
        "taskDefinition", "clientToken", "volumeConfigurations",
    }
)  # fmt: skip


@dataclass
class Translation:
    """What an environment means in today's terms."""

    run_config: RunConfig
    executor: Executor
    on_start: Hook | None = None
    on_exit: Hook | None = None
    on_execute: OnExecute | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Environment:
    """Base of the deprecated environments."""

    def __init__(
        self,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        warnings.warn(
            f"{type(self).__name__} is deprecated: set flow.run_config and flow.executor instead "
            f"(see docs/environments.md for the equivalent)",
            DeprecationWarning,
            stacklevel=3,
        )
        self.labels: set[str] = set(labels or ())
        self.on_start = on_start
        self.on_exit = on_exit
        self.metadata: dict[str, Any] = dict(metadata or {})

    def translate(self) -> Translation:
        """The run config, executor and hooks equivalent to this environment."""
        raise NotImplementedError

    def run(self, flow: Flow, parameters: Mapping[str, Any] | None = None) -> State:
        """Run ``flow`` in this process the way this environment would (hooks included)."""
        translation = self.translate()
        saved = (flow.on_start, flow.on_exit, flow.on_execute)
        flow.on_start, flow.on_exit, flow.on_execute = (
            translation.on_start,
            translation.on_exit,
            translation.on_execute,
        )
        try:
            return flow.run(parameters=parameters, executor=translation.executor)
        finally:
            flow.on_start, flow.on_exit, flow.on_execute = saved

    def _translation(self, run_config: RunConfig, executor: Executor, **extra: Any) -> Translation:
        return Translation(
            run_config=run_config,
            executor=executor,
            on_start=self.on_start,
            on_exit=self.on_exit,
            metadata=dict(self.metadata),
            **extra,
        )

    def _labels(self) -> list[str]:
        return sorted(self.labels)


class LocalEnvironment(Environment):
    """Runs the flow in the local process with ``executor`` -> ``LocalRun`` + that executor."""

    def __init__(
        self,
        executor: Executor | None = None,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        self.executor = executor or LocalExecutor()

    def translate(self) -> Translation:
        return self._translation(LocalRun(labels=self._labels()), self.executor)


class RemoteEnvironment(Environment):
    """Runs the flow in place with an executor named by import string -> ``UniversalRun`` + that
    executor built with ``executor_kwargs``. Seed names such as
    ``"prefect.engine.executors.DaskExecutor"`` resolve to flowrelay's executors."""

    def __init__(
        self,
        executor: str | None = None,
        executor_kwargs: Mapping[str, Any] | None = None,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        self.executor = executor or "flowrelay.sdk.executors.LocalExecutor"
        self.executor_kwargs: dict[str, Any] = dict(executor_kwargs or {})
        executor_class = import_object(self.executor)
        if not (isinstance(executor_class, type) and issubclass(executor_class, Executor)):
            raise TypeError(f"RemoteEnvironment: {self.executor!r} is not an executor class")
        self._executor_class: type[Executor] = executor_class

    def translate(self) -> Translation:
        executor = self._executor_class(**self.executor_kwargs)
        return self._translation(UniversalRun(labels=self._labels()), executor)


class DaskKubernetesEnvironment(Environment):
    """A temporary Dask cluster on Kubernetes per run -> ``KubernetesRun`` + ``DaskExecutor`` with
    ``dask_kubernetes.operator.KubeCluster``, adaptive between min_workers and max_workers.

    Custom scheduler/worker specs are read when the environment is created, as Prefect 1.x did, and
    become the ``custom_cluster_spec`` of the KubeCluster.
    """

    def __init__(
        self,
        min_workers: int = 1,
        max_workers: int = 2,
        work_stealing: bool = True,
        scheduler_logs: bool = False,
        private_registry: bool = False,
        docker_secret: str | None = None,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
        scheduler_spec_file: str | None = None,
        worker_spec_file: str | None = None,
        image_pull_secret: str | None = None,
        log_k8s_errors: bool = False,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        if min_workers < 0 or max_workers < min_workers:
            raise ValueError(
                f"DaskKubernetesEnvironment: need 0 <= min_workers <= max_workers, "
                f"got {min_workers} and {max_workers}"
            )
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.work_stealing = work_stealing
        self.scheduler_logs = scheduler_logs
        self.private_registry = private_registry
        self.docker_secret = docker_secret or "DOCKER_REGISTRY_CREDENTIALS"
        self.scheduler_spec_file = scheduler_spec_file
        self.worker_spec_file = worker_spec_file
        self.image_pull_secret = image_pull_secret
        self.log_k8s_errors = log_k8s_errors
        self.scheduler_spec = _load_yaml(scheduler_spec_file) if scheduler_spec_file else None
        self.worker_spec = _load_yaml(worker_spec_file) if worker_spec_file else None

    def _pull_secrets(self) -> list[str] | None:
        secrets = [name for name in (self.image_pull_secret or "").split(",") if name]
        if self.private_registry:
            # flowrelay never holds registry credentials: the named secret must exist in the
            # cluster already, under a Kubernetes-valid form of the docker_secret name.
            secrets.append(self.docker_secret.lower().replace("_", "-"))
        return secrets or None

    def translate(self) -> Translation:
        env = {
            "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING": str(self.work_stealing),
            "DASK_LOGGING__DISTRIBUTED": "info" if self.scheduler_logs else "warning",
        }
        cluster_kwargs: dict[str, Any] = {"n_workers": self.min_workers, "env": dict(env)}
        if self.scheduler_spec or self.worker_spec:
            cluster_kwargs["custom_cluster_spec"] = _dask_cluster_spec(
                self.scheduler_spec, self.worker_spec, self.min_workers
            )
        run_config = KubernetesRun(
            labels=self._labels(), env=env, image_pull_secrets=self._pull_secrets()
        )
        executor = DaskExecutor(
            cluster_class="dask_kubernetes.operator.KubeCluster",
            cluster_kwargs=cluster_kwargs,
            adapt_kwargs={"minimum": self.min_workers, "maximum": self.max_workers},
        )
        notes = []
        if self.log_k8s_errors:
            notes.append("log_k8s_errors: Kubernetes errors are always recorded on the run")
        return self._translation(run_config, executor, notes=notes)


class DaskCloudProviderEnvironment(Environment):
    """A temporary Dask Cloud Provider cluster per run -> ``ECSRun`` + ``DaskExecutor`` with
    ``cluster_class=provider_class``, ``cluster_kwargs=**kwargs``, adaptive when
    ``adaptive_min_workers`` is set; ``on_execute(parameters, provider_kwargs)`` may size it."""

    def __init__(
        self,
        provider_class: type | str,
        adaptive_min_workers: int | None = None,
        adaptive_max_workers: int | None = None,
        security: Any = None,
        executor_kwargs: Mapping[str, Any] | None = None,
        labels: list[str] | None = None,
        on_execute: OnExecute | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        self.provider_class = provider_class
        self.adaptive_min_workers = adaptive_min_workers
        self.adaptive_max_workers = adaptive_max_workers
        self.security = security
        self.executor_kwargs: dict[str, Any] = dict(executor_kwargs or {})
        self.on_execute = on_execute
        self.provider_kwargs: dict[str, Any] = kwargs

    def translate(self) -> Translation:
        cluster_kwargs = dict(self.provider_kwargs)
        executor_kwargs = dict(self.executor_kwargs)
        client_kwargs = dict(executor_kwargs.pop("client_kwargs", None) or {})
        if self.security is not None:
            cluster_kwargs["security"] = self.security
            client_kwargs["security"] = self.security
        adapt_kwargs = None
        if self.adaptive_min_workers is not None:
            adapt_kwargs = {"minimum": self.adaptive_min_workers}
            if self.adaptive_max_workers is not None:
                adapt_kwargs["maximum"] = self.adaptive_max_workers
        executor = DaskExecutor(
            cluster_class=self.provider_class,
            cluster_kwargs=cluster_kwargs,
            adapt_kwargs=adapt_kwargs,
            client_kwargs=client_kwargs,
            **executor_kwargs,
        )
        return self._translation(
            ECSRun(labels=self._labels()), executor, on_execute=self.on_execute
        )


class FargateTaskEnvironment(Environment):
    """The flow as a Fargate task -> ``ECSRun`` whose ``task_definition`` holds the
    register_task_definition arguments among ``**kwargs`` and whose ``run_task_kwargs`` hold the
    run_task ones (plus ``launchType``), with ``executor`` inside the task.

    AWS credentials given here are accepted for compatibility and never stored or sent: the
    launcher uses its own role, and the task its task role.
    """

    def __init__(
        self,
        launch_type: str = "FARGATE",
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        region_name: str | None = None,
        executor: Executor | None = None,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        if launch_type not in ("FARGATE", "EC2"):
            raise ValueError(
                f"FargateTaskEnvironment: launch_type must be FARGATE or EC2, got {launch_type!r}"
            )
        unknown = sorted(set(kwargs) - _TASK_DEFINITION_ARGS - _RUN_TASK_ARGS)
        if unknown:
            raise TypeError(
                f"FargateTaskEnvironment: {', '.join(unknown)} are not arguments of "
                f"register_task_definition or run_task"
            )
        self.launch_type = launch_type
        self.region_name = region_name
        self.executor = executor or LocalExecutor()
        self.has_explicit_credentials = any(
            (aws_access_key_id, aws_secret_access_key, aws_session_token)
        )
        self.task_definition_kwargs = {
            k: v for k, v in kwargs.items() if k in _TASK_DEFINITION_ARGS
        }
        self.task_run_kwargs = {k: v for k, v in kwargs.items() if k in _RUN_TASK_ARGS}

    def translate(self) -> Translation:
        run_task_kwargs = {"launchType": self.launch_type, **self.task_run_kwargs}
        run_config = ECSRun(
            labels=self._labels(),
            task_definition=self.task_definition_kwargs or None,
            run_task_kwargs=run_task_kwargs,
        )
        notes = []
        if self.has_explicit_credentials:
            notes.append("AWS credentials were ignored: the launcher and the task use IAM roles")
        if self.region_name:
            notes.append(f"region_name {self.region_name!r}: runs go to the target's region")
        return self._translation(run_config, self.executor, notes=notes)


class KubernetesJobEnvironment(Environment):
    """The flow as a Kubernetes Job from a custom job spec -> ``KubernetesRun(job_template=...)``
    with ``executor`` inside the job. Jobs are always named from the run id, hence unique."""

    def __init__(
        self,
        job_spec_file: str | None = None,
        unique_job_name: bool = False,
        executor: Executor | None = None,
        labels: list[str] | None = None,
        on_start: Hook | None = None,
        on_exit: Hook | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(labels=labels, on_start=on_start, on_exit=on_exit, metadata=metadata)
        self.job_spec_file = job_spec_file
        self.unique_job_name = unique_job_name
        self.executor = executor or LocalExecutor()
        self.job_spec = _load_yaml(job_spec_file) if job_spec_file else None

    def translate(self) -> Translation:
        run_config = KubernetesRun(labels=self._labels(), job_template=self.job_spec)
        return self._translation(run_config, self.executor)


def _load_yaml(path: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read spec file {path!r}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"spec file {path!r} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"spec file {path!r} must hold a mapping (a Kubernetes manifest)")
    return loaded


def _pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside a Pod or Job manifest (or a bare pod spec)."""
    spec = manifest.get("spec", manifest)
    template = spec.get("template")
    if isinstance(template, dict):
        return dict(template.get("spec", {}))
    return dict(spec)


def _dask_cluster_spec(
    scheduler: dict[str, Any] | None, worker: dict[str, Any] | None, replicas: int
) -> dict[str, Any]:
    """A ``DaskCluster`` resource for the dask-kubernetes operator from custom pod specs (the
    operator's default containers stand in for a spec that is not given)."""
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": {"name": "flowrelay-run"},
        "spec": {
            "worker": {
                "replicas": replicas,
                "spec": _pod_spec(worker) if worker else _default_pod_spec("worker"),
            },
            "scheduler": {
                "spec": _pod_spec(scheduler) if scheduler else _default_pod_spec("scheduler"),
                "service": {
                    "type": "ClusterIP",
                    "selector": {
                        "dask.org/cluster-name": "flowrelay-run",
                        "dask.org/component": "scheduler",
                    },
                    "ports": [
                        {
                            "name": "tcp-comm",
                            "protocol": "TCP",
                            "port": 8786,
                            "targetPort": "tcp-comm",
                        },
                        {
                            "name": "http-dashboard",
                            "protocol": "TCP",
                            "port": 8787,
                            "targetPort": "http-dashboard",
                        },
                    ],
                },
            },
        },
    }


def environment_types() -> dict[str, type[Environment]]:
    """Every deprecated environment class by name."""
    return {
        cls.__name__: cls
        for cls in (
            LocalEnvironment,
            RemoteEnvironment,
            DaskKubernetesEnvironment,
            DaskCloudProviderEnvironment,
            FargateTaskEnvironment,
            KubernetesJobEnvironment,
        )
    }


def _default_pod_spec(component: str) -> dict[str, Any]:
    command = (
        ["dask-worker", "--name", "$(DASK_WORKER_NAME)"]
        if component == "worker"
        else ["dask-scheduler"]
    )
    ports = (
        [{"name": "http-dashboard", "containerPort": 8788, "protocol": "TCP"}]
        if component == "worker"
        else [
            {"name": "tcp-comm", "containerPort": 8786, "protocol": "TCP"},
            {"name": "http-dashboard", "containerPort": 8787, "protocol": "TCP"},
        ]
    )
    return {
        "containers": [
            {
                "name": component,
                "image": "ghcr.io/dask/dask:latest",
                "args": command,
                "ports": ports,
            }
        ]
    }
