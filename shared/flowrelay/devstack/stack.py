"""The embedded dev stack: template.yaml created in moto server (a process of its own,
``moto_process``), its functions run in-process, its ECS tasks run as local processes, and a
Kubernetes API on loopback whose Jobs run as local processes too (``devstack/kubernetes``;
docs/devstack.md).

Process-wide effects while a stack runs, because the in-process functions read them as Lambda
functions do: ``os.environ`` holds the stack's AWS settings (loopback endpoint, fake credentials,
region) and the functions' template environment (``FLOWRELAY_TABLE_NAME``, ...); boto3's default
session and the functools caches of ``flowrelay.aws.clients`` and ``flowrelay.handlers.wiring`` are
cleared at start and at stop so no client or setting outlives the stack it was made for. Run one
stack per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from flowrelay.core.runs import FlowRun
from flowrelay.devstack.deploy import create_skipped, create_stack, stack_resources
from flowrelay.devstack.ecs import EcsExecutor
from flowrelay.devstack.event_sources import Scheduler, SqsPoller
from flowrelay.devstack.kubernetes import JobExecutor, KubernetesApi
from flowrelay.devstack.lambda_emulator import Function, load_handler
from flowrelay.devstack.moto_process import SERVER_START_SECONDS, MotoProcess, MotoProcessError
from flowrelay.devstack.processes import MARKER, end_leftovers, make_folder
from flowrelay.devstack.scheduler import SchedulerLoop, VirtualClock
from flowrelay.devstack.template import function_event_sources, functions, load_template
from flowrelay.launchers.base import Launcher
from flowrelay.launchers.ecs.settings import stack_defaults

REGION = "us-east-1"
FAKE_KEY = "testing"
#: How soon a failed SQS message is retried in the dev stack (the template says 360 s).
DEV_RETRY_DELAY = 2
LOCAL_IMAGE = "flowrelay-local"


#: The EKS cluster the dev stack's Kubernetes API plays, and the namespace its target uses.
DEV_EKS_CLUSTER = "flowrelay-dev"
DEV_NAMESPACE = "flowrelay"


def default_template() -> Path:
    """template.yaml of the project in the current directory, else of the source checkout."""
    here = Path.cwd() / "template.yaml"
    if here.exists():
        return here
    checkout = Path(__file__).resolve().parents[3] / "template.yaml"
    return checkout


class DevStackError(RuntimeError):
    """The dev stack cannot start as the template asks; the message says why."""


def _check_free(port: int) -> None:
    """``DevStackError`` when nothing can listen on 127.0.0.1:``port``, saying why."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise DevStackError(
                f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc} (another dev stack? "
                f"leave out --port for a free one)"
            ) from None


def merged_environment(per_function: dict[str, dict[str, str]]) -> dict[str, str]:
    """The functions' environment variables as one environment: the dev stack runs every function
    in one process, so a variable two functions set to different values would silently give
    each the last one. ``DevStackError`` naming it instead.

    >>> merged_environment({"A": {"TABLE": "t", "X": "1"}, "B": {"TABLE": "t"}})
    {'TABLE': 't', 'X': '1'}
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function, variables in per_function.items():
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                raise DevStackError(
                    f"functions {owner[name]} and {function} set {name} to different values "
                    f"({merged[name]!r}, {value!r}): the dev stack runs every function in one "
                    f"process with one environment; give each value its own variable name"
                )
            merged[name] = value
            owner.setdefault(name, function)
    return merged


class DevStack:
    """AWS for one developer, on loopback: see the module docstring and ``flowrelay dev up``.

    >>> with DevStack(schedule_seconds=2) as stack:   # doctest: +SKIP
    ...     print(stack.environment()["AWS_ENDPOINT_URL"])
    """

    def __init__(
        self,
        template: Path | None = None,
        *,
        port: int = 0,
        stack_name: str = "flowrelay-dev",
        schedule_seconds: float | None = None,
        poll_seconds: float = 0.2,
        log: Callable[[str], None] | None = None,
        retry_delay: int = DEV_RETRY_DELAY,
        grace_seconds: float = 5.0,
        parameters: dict[str, str] | None = None,
        clock_speed: float = 1.0,
    ) -> None:
        if not clock_speed > 0:
            raise DevStackError(f"clock speed must be more than 0, not {clock_speed}")
        self.template = Path(template) if template is not None else default_template()
        self.port = port
        self.stack_name = stack_name
        self.schedule_seconds = schedule_seconds
        self.poll_seconds = poll_seconds
        self.retry_delay = retry_delay
        self.grace_seconds = grace_seconds
        # EventBridge Scheduler's time runs this many times faster than real time from start().
        self.clock_speed = clock_speed
        self.clock: VirtualClock | None = None
        self._scheduler_loop: SchedulerLoop | None = None
        # Local targets too: the functions run in this process, which can start local runs.
        self.parameters = {"LauncherKinds": "ecs,kubernetes,local", **(parameters or {})}
        self._log = log or (lambda line: None)
        self.endpoint = ""
        self.outputs: dict[str, str] = {}
        self.resources: dict[str, dict[str, Any]] = {}
        self.functions: dict[str, Function] = {}
        self.function_environment: dict[str, str] = {}
        self.function_variables: dict[str, dict[str, str]] = {}
        self.sam_env_file: Path | None = None
        self.ecs_defaults: dict[str, Any] = {}
        self.executor: EcsExecutor | None = None
        self.kubernetes: KubernetesApi | None = None
        self.kubernetes_url = ""
        self.job_executor: JobExecutor | None = None
        self._kubernetes_launcher: Launcher | None = None
        self.queue_urls: list[str] = []
        self.log_dir: Path | None = None
        self._server: MotoProcess | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._saved_environ: dict[str, str | None] = {}
        self._started = False
        self._function_log: tuple[logging.StreamHandler[Any], Any] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """End what dead dev stacks left behind (``processes.end_leftovers``), start moto on
        127.0.0.1, create the stack, then the pollers and the task executor."""
        if self._started:
            raise RuntimeError("this dev stack is already started")
        self._started = True
        began = time.monotonic()
        self.clock = VirtualClock(self.clock_speed)  # schedules' time starts with the stack
        try:
            end_leftovers(self.say)
            self.log_dir = make_folder()
            self.say(f"stack folder: {self.log_dir}")
            self._start_server()
            self._set_environ(self._aws_environment())
            self._reset_caches()
            session = self._session()
            self._create(session)
            self._set_environ(
                {
                    **self.function_environment,
                    **self.environment(),
                    "AWS_REGION": REGION,
                    # Local runs started by the functions carry the stack's marker, so a later
                    # stack can end them if this one dies (processes.end_leftovers).
                    MARKER: str(self.log_dir),
                    # powertools prints metrics (EMF) to stdout for CloudWatch to collect; here
                    # nothing collects them, and they would mix into the CLI's own output.
                    "POWERTOOLS_METRICS_DISABLED": "true",
                }
            )
            self._reset_caches()
            self._capture_function_logs()
            self.sam_env_file = self._write_sam_env_file()
            self._start_threads(session)
        except BaseException:
            self.stop()
            raise
        self.say(
            f"stack {self.stack_name} ready at {self.endpoint} in {time.monotonic() - began:.1f}s"
        )

    def stop(self) -> None:
        """Stop pollers and the executor (its task processes get SIGTERM, then SIGKILL after the
        grace period), then moto; restore the environment. Safe to call more than once."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        if self.job_executor is not None:
            self.job_executor.shutdown()  # after its thread: processes ended, as for ECS tasks
            self.job_executor = None
        if self.kubernetes is not None:
            with contextlib.suppress(Exception):
                self.kubernetes.stop()
            self.kubernetes = None
            self.kubernetes_url = ""
            self._kubernetes_launcher = None
            self.say("kubernetes API stopped")
        if self.executor is not None:
            self.executor.shutdown()  # the thread never ran or died: still end the processes
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None
            self.say("moto stopped")
        self._restore_environ()
        self._reset_caches()
        if self._function_log is not None:
            handler, stream = self._function_log
            replaced = handler.setStream(stream)
            if replaced is not None:
                replaced.close()
            self._function_log = None
        if self.log_dir is not None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.log_dir = None

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what other processes need ------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        """What a shell or process needs to use this stack (``flowrelay dev up`` prints it)."""
        return {
            **self._aws_environment(),
            "FLOWRELAY_STACK": self.stack_name,
            "FLOWRELAY_TABLE_NAME": self.outputs.get("TableName", ""),
            "FLOWRELAY_BUS_NAME": self.outputs.get("BusName", ""),
        }

    def clients(self) -> Callable[[str], Any]:
        """``client(service)`` for this running stack, made as another process would make
        them: the stack's credentials, region and loopback endpoint, one boto3 session.

        >>> client = stack.clients()                     # doctest: +SKIP
        >>> client("dynamodb").list_tables()             # doctest: +SKIP
        """
        make: Any = self._session().client  # boto3-stubs type each service separately
        return lambda service: make(service, endpoint_url=self.endpoint)

    def export_line(self) -> str:
        """``export NAME=value ...``: the shell line that points another shell at this stack."""
        return "export " + " ".join(
            f"{name}={shlex.quote(value)}" for name, value in self.environment().items()
        )

    @property
    def scheduler_loop(self) -> SchedulerLoop:
        """The loop that fires the stack's EventBridge Scheduler schedules (its virtual clock,
        ``fire_next``, ``redeliver``, the fires so far); ``RuntimeError`` before start."""
        if self._scheduler_loop is None:
            raise RuntimeError("the dev stack is not started: it has no scheduler loop yet")
        return self._scheduler_loop

    def ecs_target_settings(self) -> dict[str, Any]:
        """Settings for a ``Target(kind="ecs")`` that launches on this stack's cluster: what
        ``flowrelay targets put --kind ecs`` fills in from a stack, the local image, and no
        public IP addresses."""
        # Private subnets with a NAT, as a Dask cluster's tasks need (their image is pulled
        # without a public IP); the dev stack's tasks pull nothing either way.
        return {**self.ecs_defaults, "image": LOCAL_IMAGE, "assign_public_ip": False}

    def sam_local_invoke(self, function: str, event: str) -> str:
        """The ``sam local invoke`` command that runs ``function`` (its logical id) in Lambda's
        container against this stack: its variables with this stack's names, the loopback
        endpoint, which a container reaches on the host's network."""
        return (
            f"sam local invoke {function} -e {event} --env-vars {self.sam_env_file} "
            f"--parameter-overrides LocalEndpointUrl={self.endpoint} --docker-network host"
        )

    def _write_sam_env_file(self) -> Path:
        """``sam-env.json`` in the stack folder: each function's variables as this stack
        resolved them (physical names in place of Ref/GetAtt), by logical id, as
        ``sam local invoke --env-vars`` takes them."""
        assert self.log_dir is not None
        path = self.log_dir / "sam-env.json"
        path.write_text(json.dumps(self.function_variables, indent=2, sort_keys=True))
        return path

    def kubernetes_target_settings(self) -> dict[str, Any]:
        """Settings for a ``Target(kind="kubernetes")`` on this stack's Kubernetes API: an EKS
        cluster whose endpoint is named outright (moto's DescribeCluster answers a public
        address, which nothing here may reach), the local image."""
        assert self.kubernetes_url, "the stack is not started"
        return {
            "eks_cluster": DEV_EKS_CLUSTER,
            "api_server": self.kubernetes_url,
            "namespace": DEV_NAMESPACE,
            "image": LOCAL_IMAGE,
        }

    def local_target_settings(self) -> dict[str, Any]:
        """Settings for a ``Target(kind="local")``: runs as processes of this machine, their
        output in the stack's folder."""
        assert self.log_dir is not None, "the stack is not started"
        return {"log_dir": str(self.log_dir / "local-runs")}

    def task_of_run(self, run: FlowRun | None) -> dict[str, Any] | None:
        """The run's ECS task as ECS (moto) describes it now, and whether its process still
        runs here; None when the run has no task recorded."""
        infrastructure = run.infrastructure if run is not None else {}
        if not infrastructure.get("task_arn"):
            return None
        ecs = self._session().client("ecs", endpoint_url=self.endpoint)
        described = ecs.describe_tasks(
            cluster=infrastructure["cluster"], tasks=[infrastructure["task_arn"]]
        ).get("tasks", [])
        task = described[0] if described else {}
        assert run is not None
        process = self.executor is not None and self.executor.pid_of(run.run_id) is not None
        return {
            "last_status": task.get("lastStatus"),
            "desired_status": task.get("desiredStatus"),
            "stopped_reason": task.get("stoppedReason"),
            "process_running": process,
        }

    def job_of_run(self, run: FlowRun | None) -> dict[str, Any] | None:
        """The run's Kubernetes Job as the stack's Kubernetes API has it now, in the words of
        ``task_of_run`` (``last_status`` STOPPED once its pod has ended or nothing of it is
        left), and whether a pod's process still runs here; None when the run has no Job
        recorded."""
        infrastructure = run.infrastructure if run is not None else {}
        if infrastructure.get("kind") != "kubernetes" or self.job_executor is None:
            return None
        if self._kubernetes_launcher is None:  # one per stack: its connection and token
            from flowrelay.launchers.kinds import build_launchers

            self._kubernetes_launcher = build_launchers(
                lambda service: self._session().client(service, endpoint_url=self.endpoint),
                table_name=self.outputs.get("TableName", ""),
                bus_name=self.outputs.get("BusName", ""),
                kinds=("kubernetes",),
            )["kubernetes"]
        status = self._kubernetes_launcher.status(infrastructure)
        namespace = str(infrastructure.get("namespace"))
        process = any(
            self.job_executor.pid_of_pod(key[0], key[1]) is not None
            for key in list(self.job_executor.runs)
            if key[0] == namespace and key[1].startswith(str(infrastructure.get("job_name")))
        )
        return {
            "last_status": "STOPPED" if status.ended else status.state,
            "desired_status": "RUNNING" if status.phase in ("starting", "running") else "STOPPED",
            "stopped_reason": status.message,
            "process_running": process,
        }

    def wait_idle(self, timeout: float) -> bool:
        """True once the event-source queues are empty and no task process runs."""
        sqs = self._session().client("sqs", endpoint_url=self.endpoint)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = self.executor is not None and self.executor.busy
            busy = busy or (self.job_executor is not None and self.job_executor.busy())
            for url in self.queue_urls:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                busy = busy or any(int(value) for value in attributes.values())
            if not busy:
                return True
            time.sleep(self.poll_seconds)
        return False

    def say(self, line: str) -> None:
        with contextlib.suppress(Exception):
            self._log(line)

    # --- internals ----------------------------------------------------------------------------

    def _aws_environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _session(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=REGION
        )

    def _start_server(self) -> None:
        """moto's server in a process of its own (``moto_process``: why), its errors in
        ``server.log`` in the stack's folder; its process carries the stack's marker, so a
        later stack ends it if this one dies and it does not (it ends with this process)."""
        assert self.log_dir is not None
        if not 0 <= self.port <= 65535:
            raise DevStackError(f"port {self.port} is not a TCP port (0 to 65535; 0: a free one)")
        if self.port:
            _check_free(self.port)
        path = self.log_dir / "server.log"
        self._server = MotoProcess(
            port=self.port, log_path=path, env={**os.environ, MARKER: str(self.log_dir)}
        )
        try:
            self.endpoint = self._server.start(SERVER_START_SECONDS)
        except MotoProcessError as exc:
            raise DevStackError(f"{exc} (see {path})") from None
        self.say(f"server log: {path}")
        # Tasks stay RUNNING until StopTask (moto's default walks them to STOPPED by itself).
        self._moto_api(
            "/moto-api/state-manager/set-transition",
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**9}},
        )
        self.say(f"moto listening on {self.endpoint} (process {self._server.pid})")

    def _moto_api(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.endpoint + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _create(self, session: Any) -> None:
        def client(service: str) -> Any:
            return session.client(service, endpoint_url=self.endpoint)

        # AWS answers ListAccountSettings(effectiveSettings=True) with the effective value, and
        # long task ARNs are mandatory since 2021 ("enabled"); moto answers no setting until one
        # is put (and lacks PutAccountSettingDefault), so dask-cloudprovider's RunTask, which
        # reads it first, fails for 60 s and gives up.
        client("ecs").put_account_setting(name="taskLongArnFormat", value="enabled")
        cloudformation = client("cloudformation")
        self.outputs = create_stack(
            self.template,
            self.stack_name,
            s3=client("s3"),
            cloudformation=cloudformation,
            parameters=self.parameters,
        )
        self.resources = stack_resources(cloudformation, self.stack_name)
        create_skipped(self.outputs, client("scheduler"))
        self.say(f"stack {self.stack_name} created from {self.template}")
        self.ecs_defaults = stack_defaults(self.outputs, client("ec2"))
        lambda_ = client("lambda")
        root = self.template.parent
        per_function: dict[str, dict[str, str]] = {}
        for logical_id, spec in functions(load_template(self.template)).items():
            name = self.resources[logical_id]["PhysicalResourceId"]
            configuration = lambda_.get_function_configuration(FunctionName=name)
            # What CloudFormation resolved for Lambda: the template's variables, with the
            # stack's physical names in place of Ref/GetAtt.
            variables = (configuration.get("Environment") or {}).get("Variables", {})
            per_function[logical_id] = {name: str(value) for name, value in variables.items()}
            self.functions[logical_id] = Function(
                logical_id=logical_id,
                name=name,
                arn=configuration["FunctionArn"],
                handler=load_handler(root, spec.handler_path, spec.handler_function, logical_id),
                timeout=spec.timeout,
                memory_size=spec.memory_size,
            )
        self.function_environment = merged_environment(per_function)
        self.function_variables = per_function

    def _start_threads(self, session: Any) -> None:
        def client(service: str) -> Any:
            return session.client(service, endpoint_url=self.endpoint)

        template = load_template(self.template)
        sqs = client("sqs")
        account = self.outputs.get("BusArn", "::::123456789012").split(":")[4]
        for logical_id, sources in function_event_sources(template).items():
            function = self.functions[logical_id]
            for source in sources:
                if not source.enabled:
                    continue
                if source.kind == "sqs" and source.queue is not None:
                    physical = self.resources[source.queue]["PhysicalResourceId"]
                    url = sqs.get_queue_url(QueueName=physical.rsplit("/", 1)[-1])["QueueUrl"]
                    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                        "Attributes"
                    ]["QueueArn"]
                    self.queue_urls.append(url)
                    self._threads.append(
                        SqsPoller(
                            function,
                            source,
                            client("sqs"),
                            url,
                            arn,
                            REGION,
                            self._stopping,
                            self.say,
                            retry_delay=self.retry_delay,
                        )
                    )
                elif source.kind == "schedule":
                    interval = self.schedule_seconds or source.interval_seconds
                    if interval is None:
                        self.say(f"{logical_id}: {source.schedule} is not emulated (rate only)")
                        continue
                    self._threads.append(
                        Scheduler(
                            function, source, interval, REGION, account, self._stopping, self.say
                        )
                    )
        clusters = [
            resource["PhysicalResourceId"]
            for resource in self.resources.values()
            if resource.get("ResourceType") == "AWS::ECS::Cluster"
        ]
        assert self.log_dir is not None
        self.executor = EcsExecutor(
            ecs=client("ecs"),
            events=client("events"),
            logs=client("logs"),
            clusters=clusters,
            stack_env=self.environment,
            log_dir=self.log_dir,
            stopping=self._stopping,
            say=self.say,
            poll_seconds=self.poll_seconds,
            grace_seconds=self.grace_seconds,
        )
        self._threads.append(self.executor)
        assert self.clock is not None
        # moto stores EventBridge Scheduler schedules but never fires them: this loop does.
        self._scheduler_loop = SchedulerLoop(
            client,
            stopping=self._stopping,
            say=self.say,
            clock=self.clock,
            tick_seconds=self.poll_seconds,
        )
        self._threads.append(self._scheduler_loop)
        self._start_kubernetes()
        for thread in self._threads:
            thread.start()

    def _start_kubernetes(self) -> None:
        """The Kubernetes API on loopback and the executor of its Jobs, their pods' output in
        ``<log dir>/kubernetes`` (beside the ECS tasks' logs)."""
        assert self.log_dir is not None
        # An EKS cluster as the functions reach one: every request carries an EKS token made
        # from the stack's (fake) credentials, checked as EKS checks it.
        self.kubernetes = KubernetesApi(host="127.0.0.1", port=0, eks_cluster=DEV_EKS_CLUSTER)
        self.kubernetes_url = self.kubernetes.start()
        log_dir = self.log_dir / "kubernetes"
        log_dir.mkdir(exist_ok=True)
        self.job_executor = JobExecutor(
            url=self.kubernetes_url,
            headers=self.kubernetes.headers(),
            stack_env=self.environment,
            log_dir=log_dir,
            stopping=self._stopping,
            say=self.say,
            poll_seconds=self.poll_seconds,
            shutdown_grace_seconds=self.grace_seconds,
        )
        self.kubernetes.pod_logs = self.job_executor.read_log
        self._threads.append(self.job_executor)
        self.say(f"kubernetes API listening on {self.kubernetes_url}")

    def _capture_function_logs(self) -> None:
        """Send the functions' Powertools log lines (JSON, to stdout by default) to
        ``<log dir>/functions.log``, as Lambda sends them to CloudWatch: stdout belongs to
        whoever runs the stack (``flowrelay demo --json`` prints JSON there)."""
        runtime = sys.modules.get("flowrelay.handlers.wiring")
        handler = getattr(getattr(runtime, "logger", None), "registered_handler", None)
        if not isinstance(handler, logging.StreamHandler) or self.log_dir is None:
            return
        path = self.log_dir / "functions.log"
        previous = handler.setStream(path.open("a", encoding="utf-8"))
        self._function_log = (handler, previous)
        self.say(f"function logs: {path}")

    def _set_environ(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            if name not in self._saved_environ:
                self._saved_environ[name] = os.environ.get(name)
            os.environ[name] = value

    def _restore_environ(self) -> None:
        for name, value in self._saved_environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environ.clear()

    def _reset_caches(self) -> None:
        """Forget clients and settings made for another endpoint or table."""
        from flowrelay.handlers import wiring

        wiring.reset()
