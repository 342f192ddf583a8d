"""Run configs (docs/run-configs.md): fields, defaults, validation, JSON round trip, schema,
target kinds."""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from flowrelay.core.run_configs import (
    RUN_CONFIG_TYPES,
    DockerRun,
    ECSRun,
    KubernetesRun,
    LocalRun,
    UniversalRun,
    parse_run_config,
    run_config_json_schema,
)

TASK_DEFINITION_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/etl-flow:7"
TASK_ROLE_ARN = "arn:aws:iam::123456789012:role/flow-task"
EXECUTION_ROLE_ARN = "arn:aws:iam::123456789012:role/service-role/ecs-execution"
JOB_TEMPLATE = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {"template": {"spec": {"containers": [{"name": "flow"}]}}},
}


def validation_error(factory: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        factory()
    return info.value


def assert_field_error(factory: Callable[[], object], field: str, *problem: str) -> None:
    """Creating fails with exactly one error, located at ``field``, whose message says the
    problem (every fragment of ``problem``)."""
    error = validation_error(factory)
    errors = error.errors()
    assert len(errors) == 1, errors
    assert errors[0]["loc"][0] == field
    assert field in str(error)
    for fragment in problem:
        assert fragment in errors[0]["msg"], errors[0]["msg"]


# --- every field, with Prefect's examples ------------------------------------------------------


def test_universal_run_defaults() -> None:
    config = UniversalRun()
    assert config.env is None
    assert config.labels == []
    assert config.type == "UniversalRun"


def test_universal_run_env_and_labels_from_prefects_example() -> None:
    config = UniversalRun(env={"SOME_VAR": "value"}, labels=["label-1", "label-2"])
    assert config.env == {"SOME_VAR": "value"}
    assert config.labels == ["label-1", "label-2"]


def test_universal_run_has_only_env_and_labels() -> None:
    assert set(UniversalRun.model_fields) == {"env", "labels", "type"}
    assert_field_error(lambda: UniversalRun(image="example/image"), "image", "Extra inputs")  # type: ignore[call-arg]


def test_local_run_fields() -> None:
    assert LocalRun().working_dir is None
    config = LocalRun(
        env={"SOME_VAR": "value"}, labels=["dev"], working_dir="/path/to/working-directory"
    )
    assert config.working_dir == "/path/to/working-directory"
    assert config.env == {"SOME_VAR": "value"}
    assert config.labels == ["dev"]
    assert config.type == "LocalRun"


def test_docker_run_defaults() -> None:
    config = DockerRun()
    assert (config.image, config.ports, config.host_config, config.env) == (None, None, None, None)
    assert config.labels == []
    assert config.type == "DockerRun"


def test_docker_run_fields() -> None:
    config = DockerRun(
        env={"SOME_VAR": "value"},
        labels=["docker"],
        image="example/image-name:with-tag",
        ports=[8080, 8787],
        host_config={"mem_limit": "2g", "cpu_count": 2},
    )
    assert config.image == "example/image-name:with-tag"
    assert config.ports == [8080, 8787]
    assert config.host_config == {"mem_limit": "2g", "cpu_count": 2}


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_docker_run_rejects_ports_out_of_range(port: int) -> None:
    error = validation_error(lambda: DockerRun(ports=[port]))
    assert error.errors()[0]["loc"][0] == "ports"


def test_docker_run_rejects_an_empty_image() -> None:
    assert_field_error(lambda: DockerRun(image=""), "image", "at least 1 character")


def test_kubernetes_run_defaults() -> None:
    config = KubernetesRun()
    for field in (
        "job_template_path",
        "job_template",
        "image",
        "cpu_limit",
        "cpu_request",
        "memory_limit",
        "memory_request",
        "service_account_name",
        "image_pull_secrets",
        "image_pull_policy",
        "env",
    ):
        assert getattr(config, field) is None, field
    assert config.labels == []
    assert config.type == "KubernetesRun"


def test_kubernetes_run_every_field() -> None:
    config = KubernetesRun(
        env={"SOME_VAR": "value"},
        labels=["k8s"],
        job_template=JOB_TEMPLATE,
        image="example/image-name:with-tag",
        cpu_limit="2",
        cpu_request="500m",
        memory_limit="4Gi",
        memory_request="512Mi",
        service_account_name="flow-runner",
        image_pull_secrets=["registry-a", "registry-b"],
        image_pull_policy="Always",
    )
    assert config.job_template == JOB_TEMPLATE
    assert config.image == "example/image-name:with-tag"
    assert (config.cpu_limit, config.cpu_request) == ("2", "500m")
    assert (config.memory_limit, config.memory_request) == ("4Gi", "512Mi")
    assert config.service_account_name == "flow-runner"
    assert config.image_pull_secrets == ["registry-a", "registry-b"]
    assert config.image_pull_policy == "Always"


def test_kubernetes_run_seed_examples() -> None:
    assert KubernetesRun(cpu_request=2, memory_request="2Gi").cpu_request == "2"
    path = "s3://bucket/path/to/spec.yaml"
    assert KubernetesRun(job_template_path=path).job_template_path == path
    for policy in ("Always", "IfNotPresent", "Never"):
        assert KubernetesRun(image_pull_policy=policy).image_pull_policy == policy


def test_ecs_run_defaults() -> None:
    config = ECSRun()
    for field in (
        "task_definition",
        "task_definition_path",
        "task_definition_arn",
        "image",
        "cpu",
        "memory",
        "task_role_arn",
        "execution_role_arn",
        "run_task_kwargs",
        "env",
    ):
        assert getattr(config, field) is None, field
    assert config.labels == []
    assert config.type == "ECSRun"


def test_ecs_run_every_field() -> None:
    task_definition = {"family": "etl", "containerDefinitions": [{"name": "flow"}]}
    config = ECSRun(
        env={"SOME_VAR": "value"},
        labels=["prod"],
        task_definition=task_definition,
        image="example/image-name:with-tag",
        cpu="2 vcpu",
        memory="4 GB",
        task_role_arn=TASK_ROLE_ARN,
        execution_role_arn=EXECUTION_ROLE_ARN,
        run_task_kwargs={"cluster": "flows", "enableExecuteCommand": True},
    )
    assert config.task_definition == task_definition
    assert config.image == "example/image-name:with-tag"
    assert (config.cpu, config.memory) == ("2 vcpu", "4 GB")
    assert config.task_role_arn == TASK_ROLE_ARN
    assert config.execution_role_arn == EXECUTION_ROLE_ARN
    assert config.run_task_kwargs == {"cluster": "flows", "enableExecuteCommand": True}


def test_ecs_run_task_definition_path_and_arn() -> None:
    path = "s3://bucket/path/to/definition.yaml"
    assert ECSRun(task_definition_path=path).task_definition_path == path
    assert (
        ECSRun(task_definition_arn=TASK_DEFINITION_ARN).task_definition_arn == TASK_DEFINITION_ARN
    )
    unversioned = "arn:aws:ecs:eu-west-1:123456789012:task-definition/etl"
    assert ECSRun(task_definition_arn=unversioned).task_definition_arn == unversioned


# --- validation -------------------------------------------------------------------------------

TASK_DEFINITION_SOURCES: dict[str, Any] = {
    "task_definition": {"family": "etl"},
    "task_definition_path": "s3://bucket/definition.yaml",
    "task_definition_arn": TASK_DEFINITION_ARN,
}


@pytest.mark.parametrize(
    "sources",
    [
        ("task_definition", "task_definition_path"),
        ("task_definition", "task_definition_arn"),
        ("task_definition_path", "task_definition_arn"),
        ("task_definition", "task_definition_path", "task_definition_arn"),
    ],
)
def test_ecs_run_rejects_two_task_definition_sources(sources: tuple[str, ...]) -> None:
    kwargs = {name: TASK_DEFINITION_SOURCES[name] for name in sources}
    error = validation_error(lambda: ECSRun(**kwargs))
    message = str(error)
    assert "at most one task definition source" in message
    for name in sources:
        assert name in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu", "2 cores"),
        ("cpu", 0),
        ("cpu", -1),
        ("cpu", True),
        ("cpu", "0"),
        ("cpu", "0 vcpu"),
        ("cpu", "1.5"),
        ("cpu", "vcpu"),
        ("cpu", ""),
        ("cpu", [1024]),
        ("memory", "2 GiB"),
        ("memory", 0),
        ("memory", -1),
        ("memory", True),
        ("memory", "0 GB"),
        ("memory", "2 MB"),
        ("memory", "lots"),
    ],
)
def test_ecs_run_rejects_bad_cpu_and_memory(field: str, value: object) -> None:
    assert_field_error(lambda: ECSRun(**{field: value}), field, field)


def test_ecs_cpu_error_says_what_is_expected() -> None:
    assert_field_error(lambda: ECSRun(cpu="2 cores"), "cpu", "'2 cores'", "1 vcpu", "1024")
    assert_field_error(lambda: ECSRun(memory="2 GiB"), "memory", "'2 GiB'", "2 GB", "2048")


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("cpu", 1024, "1024"),
        ("cpu", "1024", "1024"),
        ("cpu", "1 vcpu", "1 vcpu"),
        ("cpu", "0.5 vCPU", "0.5 vCPU"),
        ("cpu", " 2 vcpu ", "2 vcpu"),
        ("cpu", 256.0, "256"),
        ("memory", "2 GB", "2 GB"),
        ("memory", 2048, "2048"),
        ("memory", "0.5 gb", "0.5 gb"),
    ],
)
def test_ecs_run_accepts_good_cpu_and_memory(field: str, value: object, stored: str) -> None:
    assert getattr(ECSRun(**{field: value}), field) == stored


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:us-east-1:123:task-definition/etl:1",
        "arn:aws:ecs:us-east-1:123456789012:service/etl",
        "etl:1",
        TASK_DEFINITION_ARN + "\n",
    ],
)
def test_ecs_run_rejects_malformed_task_definition_arns(arn: str) -> None:
    assert_field_error(
        lambda: ECSRun(task_definition_arn=arn), "task_definition_arn", "not a task definition ARN"
    )


@pytest.mark.parametrize("field", ["task_role_arn", "execution_role_arn"])
@pytest.mark.parametrize(
    "arn",
    ["flow-task", "arn:aws:iam::123456789012:user/someone", TASK_ROLE_ARN + "\n"],
)
def test_ecs_run_rejects_malformed_role_arns(field: str, arn: str) -> None:
    assert_field_error(lambda: ECSRun(**{field: arn}), field, field, "not an IAM role ARN")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_limit", "2 cores"),
        ("cpu_limit", "-1"),
        ("cpu_limit", -1),
        ("cpu_limit", 0),
        ("cpu_limit", "0"),
        ("cpu_limit", True),
        ("cpu_request", "500 m"),
        ("cpu_request", "1Gi"),
        ("cpu_request", "m"),
        ("memory_limit", "2 GiB"),
        ("memory_limit", "2GB"),
        ("memory_limit", "-512Mi"),
        ("memory_limit", "0Gi"),
        ("memory_request", "lots"),
        ("memory_request", False),
        ("memory_request", {"Mi": 512}),
    ],
)
def test_kubernetes_run_rejects_bad_quantities(field: str, value: object) -> None:
    kind = "CPU" if field.startswith("cpu") else "memory"
    assert_field_error(
        lambda: KubernetesRun(**{field: value}), field, field, f"Kubernetes {kind} quantity"
    )


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("cpu_request", "500m", "500m"),
        ("cpu_limit", 2, "2"),
        ("cpu_limit", "1.5", "1.5"),
        ("cpu_limit", 1.5, "1.5"),
        ("cpu_request", "0.25", "0.25"),
        ("memory_request", "512Mi", "512Mi"),
        ("memory_limit", "2Gi", "2Gi"),
        ("memory_limit", "1G", "1G"),
        ("memory_limit", "128974848", "128974848"),
        ("memory_limit", "129e6", "129e6"),
        ("memory_request", 1073741824, "1073741824"),
    ],
)
def test_kubernetes_run_accepts_good_quantities(field: str, value: object, stored: str) -> None:
    assert getattr(KubernetesRun(**{field: value}), field) == stored


@pytest.mark.parametrize("policy", ["always", "ALWAYS", "Sometimes", ""])
def test_kubernetes_run_rejects_bad_image_pull_policy(policy: str) -> None:
    assert_field_error(
        lambda: KubernetesRun(image_pull_policy=policy),
        "image_pull_policy",
        "'Always', 'IfNotPresent' or 'Never'",
    )


def test_kubernetes_run_rejects_job_template_and_path_together() -> None:
    error = validation_error(
        lambda: KubernetesRun(job_template=JOB_TEMPLATE, job_template_path="job.yaml")
    )
    assert "give job_template or job_template_path, not both" in str(error)


def test_kubernetes_run_parses_a_yaml_job_template() -> None:
    text = """
apiVersion: batch/v1
kind: Job
spec:
  template:
    spec:
      containers:
        - name: flow
"""
    config = KubernetesRun(job_template=text)
    assert config.job_template == JOB_TEMPLATE


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("kind: [Job", "not valid YAML"),
        ("kind: Job\n  spec: x\n bad: indentation", "not valid YAML"),
        ("- a list\n- not a job", "must hold a mapping"),
        ("just a string", "must hold a mapping"),
        ("", "must hold a mapping"),
    ],
)
def test_kubernetes_run_rejects_bad_yaml_job_templates(text: str, problem: str) -> None:
    assert_field_error(
        lambda: KubernetesRun(job_template=text),
        "job_template",
        "job_template",
        problem,
    )


def test_kubernetes_run_image_pull_secrets_must_be_a_list() -> None:
    assert_field_error(
        lambda: KubernetesRun(image_pull_secrets="a,b"),
        "image_pull_secrets",
        "list of secret names",
    )


@pytest.mark.parametrize("config_type", RUN_CONFIG_TYPES)
@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"COUNT": 3}, "'COUNT' must be a string, got int 3"),
        ({"DEBUG": True}, "'DEBUG' must be a string, got bool True"),
        ({"NOTHING": None}, "'NOTHING' must be a string, got NoneType None"),
        ({"": "x"}, "is empty or contains '='"),
        ({"A=B": "x"}, "'A=B' is empty or contains '='"),
    ],
)
def test_env_values_and_names_are_checked(
    config_type: type[BaseModel], env: dict[str, Any], problem: str
) -> None:
    assert_field_error(lambda: config_type(env=env), "env", problem)


@pytest.mark.parametrize("config_type", RUN_CONFIG_TYPES)
def test_labels_given_as_one_string_are_rejected(config_type: type[BaseModel]) -> None:
    assert_field_error(
        lambda: config_type(labels="dev"), "labels", "list of strings", "not the string 'dev'"
    )


@pytest.mark.parametrize("label", ["", 3, None])
def test_each_label_must_be_a_non_empty_string(label: object) -> None:
    assert_field_error(lambda: LocalRun(labels=["ok", label]), "labels", "non-empty string")


@pytest.mark.parametrize(
    ("label", "why"),
    [
        ("   ", "has spaces around it"),
        (" gpu", "has spaces around it"),
        ("a,b", "contains a comma"),
        ("tab\there", "control character"),
    ],
)
def test_a_label_no_target_could_carry_is_refused(label: str, why: str) -> None:
    """Labels are matched exactly: one that no target's label could equal would wait forever."""
    assert_field_error(lambda: LocalRun(labels=[label]), "labels", why)


@pytest.mark.parametrize(
    "name", ["FLOWRELAY_RUN_ID", "FLOWRELAY_TABLE_NAME", "FLOWRELAY_BUS_NAME", "FLOWRELAY_ATTEMPT"]
)
def test_a_run_config_cannot_set_what_ties_the_runner_to_its_run(name: str) -> None:
    assert_field_error(lambda: ECSRun(env={name: "x"}), "env", f"{name} is set by flowrelay")
    # The runner's optional settings are the run's to choose.
    assert ECSRun(env={"FLOWRELAY_LOG_LEVEL": "DEBUG"}).env == {"FLOWRELAY_LOG_LEVEL": "DEBUG"}


def test_duplicated_labels_collapse_keeping_first_order() -> None:
    assert ECSRun(labels=["dev", "ml", "dev", "ml", "gpu"]).labels == ["dev", "ml", "gpu"]


def test_labels_accept_sets_tuples_and_none() -> None:
    assert UniversalRun(labels={"b", "a", "c"}).labels == ["a", "b", "c"]
    assert UniversalRun(labels=("b", "a", "b")).labels == ["b", "a"]
    assert UniversalRun(labels=None).labels == []


@pytest.mark.parametrize("config_type", RUN_CONFIG_TYPES)
def test_unknown_fields_are_rejected(config_type: type[BaseModel]) -> None:
    assert_field_error(lambda: config_type(cpus="2"), "cpus", "Extra inputs are not permitted")


def test_unknown_fields_are_rejected_when_parsing() -> None:
    error = validation_error(lambda: parse_run_config({"type": "LocalRun", "workdir": "/tmp"}))
    assert "workdir" in str(error)
    assert "Extra inputs are not permitted" in str(error)


def test_unknown_type_is_rejected_when_parsing() -> None:
    error = validation_error(lambda: parse_run_config('{"type": "NomadRun"}'))
    assert "NomadRun" in str(error)
    for name in ("UniversalRun", "LocalRun", "DockerRun", "KubernetesRun", "ECSRun"):
        assert name in str(error)


# --- validate_assignment -------------------------------------------------------------------------


def test_assigning_a_bad_cpu_fails_and_keeps_the_old_value() -> None:
    config = ECSRun(cpu="1024")
    with pytest.raises(ValidationError, match="cpu '2 cores' is not"):
        config.cpu = "2 cores"
    assert config.cpu == "1024"


def test_assignment_is_validated_and_normalised() -> None:
    config = ECSRun()
    config.cpu = 2048  # type: ignore[assignment]
    assert config.cpu == "2048"
    kubernetes = KubernetesRun()
    kubernetes.job_template = "kind: Job"  # type: ignore[assignment]
    assert kubernetes.job_template == {"kind": "Job"}
    kubernetes.labels = ["a", "a", "b"]
    assert kubernetes.labels == ["a", "b"]


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        (KubernetesRun(cpu_limit="1"), "cpu_limit", "1 core"),
        (KubernetesRun(), "memory_request", "2 GiB"),
        (KubernetesRun(), "image_pull_policy", "always"),
        (LocalRun(), "labels", "dev"),
        (UniversalRun(), "env", {"A": 1}),
        (ECSRun(), "task_definition_arn", "not-an-arn"),
    ],
)
def test_bad_assignments_fail(config: BaseModel, field: str, value: object) -> None:
    before = config.model_dump()
    with pytest.raises(ValidationError, match=field):
        setattr(config, field, value)
    assert config.model_dump() == before


def test_assigning_a_second_task_definition_source_fails_and_keeps_the_config_valid() -> None:
    config = ECSRun(task_definition_arn=TASK_DEFINITION_ARN)
    with pytest.raises(ValidationError, match="at most one task definition source"):
        config.task_definition_path = "s3://bucket/definition.yaml"
    assert config.task_definition_path is None
    assert config.task_definition_arn == TASK_DEFINITION_ARN
    assert "task_definition_path" not in config.model_fields_set
    assert parse_run_config(config.model_dump_json()) == config


def test_assigning_a_job_template_next_to_a_path_fails_and_keeps_the_config_valid() -> None:
    config = KubernetesRun(job_template_path="job.yaml")
    with pytest.raises(ValidationError, match="not both"):
        config.job_template = JOB_TEMPLATE
    assert config.job_template is None
    assert parse_run_config(config.model_dump_json()) == config


def test_assigning_an_unknown_field_fails() -> None:
    config = LocalRun()
    with pytest.raises(ValueError, match="cwd"):
        config.cwd = "/tmp"


# --- JSON round trip ----------------------------------------------------------------------------

FULL_CONFIGS = [
    UniversalRun(env={"SOME_VAR": "value"}, labels=["label-1", "label-2"]),
    LocalRun(env={"A": "1"}, labels=["dev"], working_dir="/srv/flows"),
    DockerRun(
        env={"A": ""}, labels=["d"], image="img:1", ports=[80], host_config={"shm_size": "1g"}
    ),
    KubernetesRun(
        env={"A": "b"},
        labels=["k8s", "gpu"],
        job_template=JOB_TEMPLATE,
        image="img:2",
        cpu_limit="2",
        cpu_request="500m",
        memory_limit="4Gi",
        memory_request="512Mi",
        service_account_name="runner",
        image_pull_secrets=["pull"],
        image_pull_policy="IfNotPresent",
    ),
    KubernetesRun(job_template_path="s3://bucket/job.yaml"),
    ECSRun(
        env={"A": "b"},
        labels=["prod"],
        task_definition={"family": "etl", "cpu": "256", "nested": [1, 2.5, None, True]},
        image="img:3",
        cpu="1 vcpu",
        memory="2 GB",
        task_role_arn=TASK_ROLE_ARN,
        execution_role_arn=EXECUTION_ROLE_ARN,
        run_task_kwargs={"cluster": "flows", "count": 1},
    ),
    ECSRun(task_definition_path="s3://bucket/definition.yaml", cpu=1024, memory=2048),
    ECSRun(task_definition_arn=TASK_DEFINITION_ARN),
]


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=lambda config: type(config).__name__)
def test_json_round_trip_of_fully_populated_configs(config: BaseModel) -> None:
    parsed = parse_run_config(config.model_dump_json())
    assert type(parsed) is type(config)
    assert parsed == config
    assert parsed.model_dump() == config.model_dump()
    assert parse_run_config(config.model_dump()) == config
    assert parse_run_config(config.model_dump_json().encode()) == config


def test_every_type_is_covered_by_the_round_trip_examples() -> None:
    assert {type(config) for config in FULL_CONFIGS} == set(RUN_CONFIG_TYPES)


_names = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=8)
_labels = st.lists(_names, max_size=4)
_env = st.none() | st.dictionaries(
    st.text(min_size=1, max_size=6).filter(lambda name: "=" not in name and "\x00" not in name),
    st.text(max_size=8),
    max_size=3,
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_json_objects = st.dictionaries(st.text(max_size=6), _json, max_size=3)
_optional_text = st.none() | st.text(min_size=1, max_size=12)
_k8s_cpu = st.none() | st.sampled_from(["500m", "2", "1.5", "0.25", "100m"]) | st.integers(1, 64)
_k8s_memory = st.none() | st.sampled_from(["512Mi", "2Gi", "1G", "128974848", "129e6", "64Ki"])
_ecs_cpu = (
    st.none() | st.sampled_from(["256", "1 vcpu", "0.5 vCPU", "4 VCPU"]) | st.integers(1, 16384)
)
_ecs_memory = (
    st.none() | st.sampled_from(["512", "2 GB", "0.5 gb", "30 GB"]) | st.integers(1, 122880)
)
_task_definition_arns = st.builds(
    "arn:aws:ecs:{}:{}:task-definition/{}{}".format,
    st.sampled_from(["us-east-1", "eu-west-2"]),
    st.text(string.digits, min_size=12, max_size=12),
    st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=10),
    st.sampled_from(["", ":1", ":42"]),
)
_role_arns = st.none() | st.builds(
    "arn:aws:iam::{}:role/{}".format,
    st.text(string.digits, min_size=12, max_size=12),
    st.text(string.ascii_letters + string.digits + "+=,.@-_/", min_size=1, max_size=10),
)

_universal = st.builds(UniversalRun, env=_env, labels=_labels)
_local = st.builds(
    LocalRun, env=_env, labels=_labels, working_dir=st.none() | st.text(min_size=1, max_size=10)
)
_docker = st.builds(
    DockerRun,
    env=_env,
    labels=_labels,
    image=_optional_text,
    ports=st.none() | st.lists(st.integers(1, 65535), max_size=3),
    host_config=st.none() | _json_objects,
)


@st.composite
def _kubernetes(draw: st.DrawFn) -> KubernetesRun:
    source = draw(st.sampled_from(["none", "template", "path"]))
    return KubernetesRun(
        env=draw(_env),
        labels=draw(_labels),
        job_template=draw(_json_objects) if source == "template" else None,
        job_template_path=draw(st.text(min_size=1, max_size=12)) if source == "path" else None,
        image=draw(_optional_text),
        cpu_limit=draw(_k8s_cpu),
        cpu_request=draw(_k8s_cpu),
        memory_limit=draw(_k8s_memory),
        memory_request=draw(_k8s_memory),
        service_account_name=draw(_optional_text),
        image_pull_secrets=draw(st.none() | st.lists(_names, max_size=3)),
        image_pull_policy=draw(st.none() | st.sampled_from(["Always", "IfNotPresent", "Never"])),
    )


@st.composite
def _ecs(draw: st.DrawFn) -> ECSRun:
    source = draw(st.sampled_from(["none", "task_definition", "path", "arn"]))
    return ECSRun(
        env=draw(_env),
        labels=draw(_labels),
        task_definition=draw(_json_objects) if source == "task_definition" else None,
        task_definition_path=draw(st.text(min_size=1, max_size=12)) if source == "path" else None,
        task_definition_arn=draw(_task_definition_arns) if source == "arn" else None,
        image=draw(_optional_text),
        cpu=draw(_ecs_cpu),
        memory=draw(_ecs_memory),
        task_role_arn=draw(_role_arns),
        execution_role_arn=draw(_role_arns),
        run_task_kwargs=draw(st.none() | _json_objects),
    )


any_run_config = st.one_of(_universal, _local, _docker, _kubernetes(), _ecs())


@settings(max_examples=50, deadline=None)
@given(config=any_run_config)
def test_json_round_trip_is_lossless(config: BaseModel) -> None:
    text = config.model_dump_json()
    parsed = parse_run_config(text)
    assert type(parsed) is type(config)
    assert parsed == config
    assert parsed.model_dump_json() == text


# --- JSON schema ----------------------------------------------------------------------------------

ALL_TYPE_NAMES = {"UniversalRun", "LocalRun", "DockerRun", "KubernetesRun", "ECSRun"}


def test_json_schema_covers_every_type_through_the_discriminator() -> None:
    schema = run_config_json_schema()
    assert schema["title"] == "RunConfig"
    assert schema["discriminator"]["propertyName"] == "type"
    mapping = schema["discriminator"]["mapping"]
    assert set(mapping) == ALL_TYPE_NAMES
    assert {item["$ref"] for item in schema["oneOf"]} == set(mapping.values())
    for name, ref in mapping.items():
        definition = schema["$defs"][ref.rsplit("/", 1)[-1]]
        assert definition["properties"]["type"]["const"] == name
        assert definition["additionalProperties"] is False
        config_type = next(t for t in RUN_CONFIG_TYPES if t.__name__ == name)
        assert set(definition["properties"]) == set(config_type.model_fields)


def test_json_schema_is_plain_json() -> None:
    schema = run_config_json_schema()
    assert json.loads(json.dumps(schema)) == schema


@pytest.mark.parametrize("config", FULL_CONFIGS, ids=lambda config: type(config).__name__)
def test_dumped_configs_validate_against_the_json_schema(config: BaseModel) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(run_config_json_schema())
    validator.validate(json.loads(config.model_dump_json()))


@pytest.mark.parametrize(
    "document",
    [
        {"type": "NomadRun"},
        {"type": "LocalRun", "workdir": "/tmp"},
        {"type": "ECSRun", "env": {"A": 1}},
        {"type": "KubernetesRun", "image_pull_policy": "always"},
        {"type": "DockerRun", "ports": [70000]},
        {"env": {}},
    ],
)
def test_the_json_schema_rejects_bad_documents(document: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(run_config_json_schema())
    assert not validator.is_valid(document)
    with pytest.raises(ValidationError):
        parse_run_config(document)


# --- which targets a config fits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "fits"),
    [
        (UniversalRun(), {"ecs", "kubernetes", "local", "docker"}),
        (ECSRun(), {"ecs"}),
        (KubernetesRun(), {"kubernetes"}),
        (LocalRun(), {"local"}),
        (DockerRun(), {"docker"}),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseModel) else "",
)
def test_fits(config: UniversalRun, fits: set[str]) -> None:
    for kind in ("ecs", "kubernetes", "local", "docker", "lambda", ""):
        assert config.fits(kind) is (kind in fits), kind
