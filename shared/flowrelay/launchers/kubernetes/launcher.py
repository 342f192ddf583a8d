"""The Kubernetes launcher: one attempt of a flow run becomes one Kubernetes Job running
``flowrelay-runner``.

- **One Job per attempt.** The Job's name is a function of (run id, attempt)
  (``names.job_name``), so creating it again meets the first: the API answers 409, and the
  launcher reads that Job and adopts it when its labels and annotation say it is this attempt
  of this run (a Job of that name that is not is refused, never adopted). A resumed attempt
  (its dispatcher died, or the create went unanswered) looks the Job up before creating it.
- **The Job** is the run's ``KubernetesRun`` merged over the target's defaults and a job
  template (``flowrelay.launchers.kubernetes.manifest``).
- **Errors** are classified as ECS's are (``flowrelay.launchers.kubernetes.errors``); the API
  server's message goes on the run.
- **No events.** Kubernetes puts nothing on flowrelay's bus, and nothing of flowrelay's watches
  Jobs: the monitor asks ``status`` (the Job and the attempt's pods) at each pass
  (``reports_events = False``). The runner reports its own states as on ECS.
- **Stopping** deletes the Job with ``propagationPolicy=Background`` (deleting a Job through the
  API orphans its pods otherwise): the pods get SIGTERM and their grace period. The run is
  Cancelled when ``status`` finds neither the Job nor its pods.

The ``kubernetes`` client is imported only when a Kubernetes target is used.

>>> launcher = KubernetesLauncher(table_name="t", bus_name="b")     # doctest: +SKIP
>>> launched = launcher.launch(run, target, attempt=1)              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import Field

from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import InfraStatus, Launched, LaunchError, Swept
from flowrelay.launchers.documents import Documents
from flowrelay.launchers.kinds import typed_settings
from flowrelay.launchers.kubernetes.client import Clusters, KubernetesApi
from flowrelay.launchers.kubernetes.eks import EksAccess
from flowrelay.launchers.kubernetes.manifest import build_job, flow_container, kubernetes_run
from flowrelay.launchers.kubernetes.names import belongs_to, run_id_of, run_selector
from flowrelay.launchers.kubernetes.settings import Connection, KubernetesSettings
from flowrelay.launchers.kubernetes.status import job_status, latest_pod


class KubernetesLaunched(Launched):
    """A run's Job, as its run records it: where it is (the cluster's ``connection``, the
    ``namespace``), what it is (``job_name``, its ``uid``), and how to find its pods
    (``selector``)."""

    kind: Literal["kubernetes"] = "kubernetes"
    namespace: str
    job_name: str
    uid: str | None = None
    selector: str
    container: str | None = None
    connection: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"Kubernetes Job {self.namespace}/{self.job_name}"


def job_ref(namespace: str, name: str) -> str:
    """A Job's ``ref``: ``namespace/name`` (the name says the attempt)."""
    return f"{namespace}/{name}"


class KubernetesLauncher:
    """Launches flow runs as Kubernetes Jobs (the ``Launcher`` contract; see the module
    docstring). ``table_name``, ``bus_name`` and ``region`` go to the runner; ``session`` is
    the boto3 session EKS tokens are signed with (default: a new one). Thread-safe."""

    kind = "kubernetes"
    reports_events = False

    def __init__(
        self,
        *,
        table_name: str,
        bus_name: str,
        region: str | None = None,
        session: Any = None,
        s3_client: Any = None,
    ) -> None:
        self.table_name = table_name
        self.bus_name = bus_name
        self.region = region
        self.clusters = Clusters(EksAccess(session))
        self.documents = Documents(region=region, s3_client=s3_client)

    @staticmethod
    def settings(target: Target) -> KubernetesSettings:
        """The target's settings as a Kubernetes target's; ``LaunchError`` when they do not fit."""
        try:
            return typed_settings(target, KubernetesSettings)
        except ValueError as exc:
            raise LaunchError(str(exc), retryable=False) from None

    # --- launching -----------------------------------------------------------------------------

    def launch(
        self, run: FlowRun, target: Target, *, attempt: int = 1, resume: bool = False
    ) -> KubernetesLaunched:
        """Create the Job of attempt ``attempt`` of ``run`` on ``target`` (or adopt the one an
        earlier try of this attempt created). Raises ``LaunchError``."""
        if target.kind != "kubernetes":
            raise LaunchError(
                f"the Kubernetes launcher cannot launch on {target.kind} target {target.name!r}",
                retryable=False,
            )
        if attempt < 1:
            raise LaunchError(f"attempt must be >= 1, got {attempt}", retryable=False)
        settings = self.settings(target)
        config = kubernetes_run(run)
        template = config.job_template
        if config.job_template_path is not None:
            template = self.documents.read(
                config.job_template_path, "job_template_path", "a Job template"
            )
        manifest = build_job(
            run,
            config,
            settings,
            attempt=attempt,
            table_name=self.table_name,
            bus_name=self.bus_name,
            region=self.region,
            template=template,
        )
        connection = settings.connection()
        api = self.clusters.api(connection)
        namespace, name = settings.namespace, str(manifest["metadata"]["name"])
        container = str(flow_container(manifest["spec"]["template"]["spec"]["containers"])["name"])
        if resume:
            found = api.read_job(namespace, name)
            if found is not None:
                return self._adopted(found, run, attempt, connection, container)
        created, existing = api.create_job(namespace, manifest)
        if existing is not None:
            return self._adopted(existing, run, attempt, connection, container)
        assert created is not None
        return self._launched(created, run, attempt, connection, container)

    @classmethod
    def _adopted(
        cls,
        job: Mapping[str, Any],
        run: FlowRun,
        attempt: int,
        connection: Connection,
        container: str,
    ) -> KubernetesLaunched:
        metadata = job.get("metadata") or {}
        if not belongs_to(metadata, run.run_id, attempt):
            owner = run_id_of(metadata)
            whose = f"run {owner}'s" if owner else "not flowrelay's"
            raise LaunchError(
                f"a Job named {metadata.get('namespace')}/{metadata.get('name')} exists and is "
                f"{whose}, not attempt {attempt} of run {run.run_id}: it was not adopted",
                retryable=False,
                code="AlreadyExists",
            )
        return cls._launched(job, run, attempt, connection, container)

    @staticmethod
    def _launched(
        job: Mapping[str, Any],
        run: FlowRun,
        attempt: int,
        connection: Connection,
        container: str,
    ) -> KubernetesLaunched:
        metadata = job.get("metadata") or {}
        namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
        return KubernetesLaunched(
            ref=job_ref(namespace, name),
            attempt=attempt,
            namespace=namespace,
            job_name=name,
            uid=metadata.get("uid"),
            selector=run_selector(run.run_id, attempt),
            container=container,
            connection=connection.model_dump(exclude_none=True),
        )

    def find_unrecorded(
        self, run: FlowRun, attempt: int, targets: Iterable[Target]
    ) -> KubernetesLaunched | None:
        """The Job attempt ``attempt`` of ``run`` created without the run recording it, looked
        for (by the run's labels) in the namespace of each Kubernetes target."""
        seen: set[str] = set()
        for target in targets:
            if target.kind != "kubernetes":
                continue
            settings = self.settings(target)
            connection = settings.connection()
            key = connection.model_dump_json() + settings.namespace
            if key in seen:
                continue
            seen.add(key)
            api = self.clusters.api(connection)
            for job in api.list_jobs(settings.namespace, run_selector(run.run_id, attempt)):
                if belongs_to(job.get("metadata") or {}, run.run_id, attempt):
                    containers = job["spec"]["template"]["spec"]["containers"]
                    return self._launched(
                        job, run, attempt, connection, str(flow_container(containers)["name"])
                    )
        return None

    # --- observing and stopping ----------------------------------------------------------------

    def _api(self, launched: KubernetesLaunched) -> KubernetesApi:
        return self.clusters.api(Connection.model_validate(launched.connection))

    def status(self, infrastructure: Mapping[str, Any]) -> InfraStatus:
        """The recorded Job and its pods, now (``phase="gone"`` when neither exists)."""
        launched = KubernetesLaunched.model_validate(infrastructure)
        api = self._api(launched)
        job = api.read_job(launched.namespace, launched.job_name)
        uid = ((job or {}).get("metadata") or {}).get("uid")
        if launched.uid and uid is not None and uid != launched.uid:
            job = None  # a later Job of the same name is not the one this run launched
        pods = api.list_pods(launched.namespace, launched.selector)
        return job_status(launched.ref, job, pods, container=launched.container)

    def stop_launched(self, infrastructure: Mapping[str, Any], reason: str) -> None:
        """Delete the recorded Job and its pods (in the background: the pods get SIGTERM and
        their grace period); a Job already gone is not an error. Pods left without their Job
        (an orphaning delete by someone else) are deleted too. ``reason`` is not sent:
        Kubernetes keeps no stop reason on a Job (the run's history has it)."""
        launched = KubernetesLaunched.model_validate(infrastructure)
        api = self._api(launched)
        api.delete_job(launched.namespace, launched.job_name)
        for pod in api.list_pods(launched.namespace, launched.selector):
            metadata = pod.get("metadata") or {}
            if not metadata.get("deletionTimestamp") and not metadata.get("ownerReferences"):
                api.delete_pod(launched.namespace, str(metadata.get("name")))

    def sweep_cluster(self, run: FlowRun, cluster: ClusterSweep) -> Swept:
        """Delete a run's DaskCluster and whatever pods and services of it are left, in the
        namespace of its recorded Job (``flowrelay.launchers.kubernetes.dask_clusters``)."""
        from flowrelay.launchers.kubernetes.dask_clusters import sweep

        launched = KubernetesLaunched.model_validate(run.infrastructure)
        return sweep(self._api(launched), launched.namespace, cluster.name)

    def read_log(
        self, infrastructure: Mapping[str, Any], tail_lines: int | None = None
    ) -> str | None:
        """The log of the attempt's pod (its last ``tail_lines``), None when no pod is left."""
        launched = KubernetesLaunched.model_validate(infrastructure)
        api = self._api(launched)
        newest = latest_pod(api.list_pods(launched.namespace, launched.selector))
        if newest is None:
            return None
        name = str((newest.get("metadata") or {}).get("name"))
        return api.pod_log(launched.namespace, name, launched.container, tail_lines)
