"""The Job of a run: every KubernetesRun field and job templates merged over a target's
defaults, checked against the Kubernetes API's own schema (kubernetes-validate), and the names
and labels of hostile run ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowrelay.core.policies import Timeouts
from flowrelay.core.run_configs import KubernetesRun, UniversalRun
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.kubernetes.manifest import build_job, kubernetes_run
from flowrelay.launchers.kubernetes.names import (
    ATTEMPT_LABEL,
    MANAGED_BY_LABEL,
    RUN_ID_ANNOTATION,
    RUN_KEY_LABEL,
    belongs_to,
    job_name,
    run_key,
    run_selector,
)
from flowrelay.launchers.kubernetes.settings import KubernetesSettings

K8S_VERSION = "1.33"
NOW = datetime(2026, 11, 29, tzinfo=UTC)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def make_run(run_id: str = "run-1", flow: str = "etl", **fields: Any) -> FlowRun:
    return FlowRun(
        run_id=run_id,
        flow_name=flow,
        created_at=NOW,
        updated_at=NOW,
        state_entered_at=NOW,
        **fields,
    )


SETTINGS = KubernetesSettings(
    api_server="http://127.0.0.1:1",
    namespace="flows",
    image="registry.example/flows:1",
    service_account_name="flow-runner",
    image_pull_secrets=["regcred"],
)


def job_for(config: KubernetesRun, settings: KubernetesSettings = SETTINGS, **kw: Any) -> Any:
    job = build_job(
        kw.pop("run", make_run()),
        config,
        settings,
        attempt=kw.pop("attempt", 1),
        table_name="runs",
        bus_name="bus",
        region="eu-west-1",
        **kw,
    )
    kubernetes_validate.validate(job, K8S_VERSION, strict=True)
    return job


def container_of(job: dict[str, Any], name: str = "flow") -> dict[str, Any]:
    return next(c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_the_defaults_make_a_valid_job_running_the_runner() -> None:
    job = job_for(KubernetesRun())
    assert job["metadata"]["name"] == job_name("run-1", 1)
    assert job["metadata"]["namespace"] == "flows"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert "activeDeadlineSeconds" not in spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["terminationGracePeriodSeconds"] >= 30
    assert pod["serviceAccountName"] == "flow-runner"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    flow = container_of(job)
    assert flow["image"] == "registry.example/flows:1"
    assert flow["command"] == ["flowrelay-runner"]
    env = env_of(flow)
    assert env["FLOWRELAY_RUN_ID"] == "run-1"
    assert env["FLOWRELAY_ATTEMPT"] == "1"
    assert env["FLOWRELAY_TABLE_NAME"] == "runs"
    assert env["FLOWRELAY_BUS_NAME"] == "bus"
    assert env["AWS_REGION"] == "eu-west-1"
    for metadata in (job["metadata"], spec["template"]["metadata"]):
        assert metadata["labels"][MANAGED_BY_LABEL] == "flowrelay"
        assert metadata["labels"][RUN_KEY_LABEL] == run_key("run-1")
        assert metadata["labels"][ATTEMPT_LABEL] == "1"
        assert metadata["annotations"][RUN_ID_ANNOTATION] == "run-1"


def test_every_kubernetes_run_field_lands_in_the_job() -> None:
    config = KubernetesRun(
        image="example/image-name:with-tag",
        env={"SOME_VAR": "value"},
        cpu_request=2,
        cpu_limit="4",
        memory_request="2Gi",
        memory_limit="4Gi",
        service_account_name="other-sa",
        image_pull_secrets=["a", "b"],
        image_pull_policy="Always",
    )
    job = job_for(config)
    pod = job["spec"]["template"]["spec"]
    flow = container_of(job)
    assert flow["image"] == "example/image-name:with-tag"
    assert flow["imagePullPolicy"] == "Always"
    assert flow["resources"] == {
        "requests": {"cpu": "2", "memory": "2Gi"},
        "limits": {"cpu": "4", "memory": "4Gi"},
    }
    assert env_of(flow)["SOME_VAR"] == "value"
    assert pod["serviceAccountName"] == "other-sa"
    assert pod["imagePullSecrets"] == [{"name": "a"}, {"name": "b"}]


TEMPLATE: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"labels": {"team": "data"}, "annotations": {"owner": "data@example.org"}},
    "spec": {
        "ttlSecondsAfterFinished": 60,
        "template": {
            "metadata": {"labels": {"team": "data"}},
            "spec": {
                "serviceAccountName": "template-sa",
                "nodeSelector": {"kubernetes.io/os": "linux"},
                "terminationGracePeriodSeconds": 90,
                "containers": [
                    {
                        "name": "sidecar",
                        "image": "busybox:1.36",
                        "command": ["sleep", "infinity"],
                    },
                    {
                        "name": "flow",
                        "image": "template/image:2",
                        "command": ["prefect", "execute", "flow-run"],
                        "args": ["--verbose"],
                        "env": [
                            {"name": "FROM_TEMPLATE", "value": "1"},
                            {"name": "SOME_VAR", "value": "template"},
                            {
                                "name": "PASSWORD",
                                "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}},
                            },
                            {"name": "FLOWRELAY_RUN_ID", "value": "someone-else"},
                        ],
                        "resources": {"requests": {"cpu": "100m"}},
                    },
                ],
            },
        },
    },
}


def test_a_job_template_is_kept_with_the_run_fields_over_it() -> None:
    job = job_for(KubernetesRun(env={"SOME_VAR": "run"}, memory_limit="1Gi"), template=TEMPLATE)
    assert job["metadata"]["labels"]["team"] == "data"
    assert job["metadata"]["annotations"]["owner"] == "data@example.org"
    assert job["spec"]["ttlSecondsAfterFinished"] == 60
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "template-sa"  # the template's over the target's
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["terminationGracePeriodSeconds"] == 90
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    sidecar = container_of(job, "sidecar")
    assert sidecar["command"] == ["sleep", "infinity"]
    assert "env" not in sidecar
    flow = container_of(job)
    assert flow["image"] == "template/image:2"  # the template's over the target's
    assert flow["command"] == ["flowrelay-runner"]
    assert "args" not in flow
    env = env_of(flow)
    assert env["FROM_TEMPLATE"] == "1"
    assert env["SOME_VAR"] == "run"
    assert env["PASSWORD"] == {"secretKeyRef": {"name": "db", "key": "pw"}}
    assert env["FLOWRELAY_RUN_ID"] == "run-1"
    assert flow["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}
    assert TEMPLATE["spec"]["template"]["spec"]["containers"][1]["command"][0] == "prefect"


def test_a_template_without_a_flow_container_runs_the_first() -> None:
    template = {"spec": {"template": {"spec": {"containers": [{"name": "main"}]}}}}
    job = job_for(KubernetesRun(), template=template)
    assert container_of(job, "main")["command"] == ["flowrelay-runner"]


def test_the_target_template_is_used_when_the_run_gives_none() -> None:
    settings = SETTINGS.model_copy(update={"job_template": TEMPLATE})
    assert job_for(KubernetesRun(), settings)["metadata"]["labels"]["team"] == "data"


def test_the_run_timeout_sets_the_active_deadline() -> None:
    run = make_run(timeouts=Timeouts(run_seconds=600, start_seconds=60, start_limit_seconds=120))
    assert job_for(KubernetesRun(), run=run)["spec"]["activeDeadlineSeconds"] == 720


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ({"spec": {"backoffLimit": 6}}, "backoffLimit: 6; flowrelay counts a run's attempts"),
        ({"spec": {"completions": 3}}, "completions: 3; a flow run is one pod"),
        (
            {"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}},
            "restartPolicy: OnFailure",
        ),
        ({"metadata": {"namespace": "prod"}}, "names namespace 'prod'"),
        ({"kind": "Pod", "apiVersion": "v1"}, "is a v1 Pod, not a batch/v1 Job"),
        ({"spec": {"template": {"spec": {"containers": "x"}}}}, "containers must be a list"),
        ({"spec": []}, "spec must be a mapping"),
    ],
)
def test_what_no_job_can_be_made_of_is_refused_in_one_line(
    template: dict[str, Any], words: str
) -> None:
    with pytest.raises(LaunchError) as caught:
        job_for(KubernetesRun(), template=template)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not caught.value.retryable


def test_no_image_anywhere_is_refused() -> None:
    settings = SETTINGS.model_copy(update={"image": None})
    with pytest.raises(LaunchError, match="no image for the flow container"):
        job_for(KubernetesRun(), settings)


def test_run_configs_that_fit_and_that_do_not() -> None:
    assert kubernetes_run(make_run(run_config=None)) == KubernetesRun()
    assert kubernetes_run(make_run(run_config=UniversalRun(env={"A": "1"}).model_dump())).env == {
        "A": "1"
    }
    from flowrelay.core.run_configs import ECSRun

    with pytest.raises(LaunchError, match="an ECSRun cannot run on a kubernetes target"):
        kubernetes_run(make_run(run_config=ECSRun().model_dump()))


# Run ids as flowrelay takes them: up to 64 characters, any case, digits, '_', '-', '.'.
run_ids = st.text(alphabet=st.sampled_from("abcXYZ019_-."), min_size=1, max_size=64)


@given(run_id=run_ids, attempt=st.integers(min_value=1, max_value=10_000))
def test_names_and_labels_are_valid_for_any_run_id(run_id: str, attempt: int) -> None:
    name = job_name(run_id, attempt)
    assert len(name) <= 63
    assert _DNS_LABEL.match(name)
    key = run_key(run_id)
    assert len(key) <= 63
    assert _LABEL_VALUE.match(key)
    assert job_name(run_id, attempt) == name  # deterministic
    metadata = {
        "labels": {MANAGED_BY_LABEL: "flowrelay", ATTEMPT_LABEL: str(attempt), RUN_KEY_LABEL: key},
        "annotations": {RUN_ID_ANNOTATION: run_id},
    }
    assert belongs_to(metadata, run_id, attempt)
    assert not belongs_to(metadata, run_id + "x", attempt)
    assert run_selector(run_id, attempt).count(",") == 2


@given(first=run_ids, second=run_ids)
def test_distinct_run_ids_get_distinct_jobs_and_keys(first: str, second: str) -> None:
    if first != second:
        assert job_name(first, 1) != job_name(second, 1)
        assert run_key(first) != run_key(second)


def test_hostile_flow_names_give_valid_labels() -> None:
    for flow in ("ETL / nightly ✨", "-" * 300, "ok", "__", "a" * 64):
        job = job_for(KubernetesRun(), run=make_run(flow=flow))
        assert job["metadata"]["annotations"]["flowrelay.dev/flow-name"] == flow


def test_the_shipped_role_is_valid_and_grants_what_the_launcher_calls() -> None:
    import yaml

    from tests.support.aws import ROOT

    documents = list(yaml.safe_load_all((ROOT / "docs/kubernetes/flowrelay-role.yaml").read_text()))
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    role = next(document for document in documents if document["kind"] == "Role")
    granted = {
        (resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = {
        ("jobs", "create"),
        ("jobs", "get"),
        ("jobs", "list"),
        ("jobs", "delete"),
        ("pods", "list"),
        ("pods", "delete"),
        ("pods/log", "get"),
        ("events", "list"),
        # sweeping a run's KubeCluster (launchers/kubernetes/dask_clusters.py)
        ("daskclusters", "delete"),
        ("services", "list"),
        ("services", "delete"),
    }
    assert needed <= granted
