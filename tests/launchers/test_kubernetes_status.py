"""How a Job and its pods read as a kind-neutral status (what the monitor reasons about), how
the API's answers read as launch errors, and the EKS token's shape."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.credentials import Credentials

from flowrelay.launchers.kubernetes.eks import (
    TOKEN_REUSE_SECONDS,
    EksAccess,
    bearer_token,
    presigned_url,
)
from flowrelay.launchers.kubernetes.errors import api_error, connection_error
from flowrelay.launchers.kubernetes.status import job_status

REF = "flows/fr-run-1-abc-1"
JOB: dict[str, Any] = {"metadata": {"name": "fr-run-1-abc-1", "uid": "u1"}, "status": {}}


def pod(phase: str = "Pending", *, state: dict[str, Any] | None = None, **status: Any) -> Any:
    container = {"name": "flow", "state": state} if state is not None else None
    return {
        "metadata": {"name": "fr-run-1-abc-1-x7k2p", "creationTimestamp": "2026-11-29T10:00:00Z"},
        "status": {
            "phase": phase,
            **({"containerStatuses": [container]} if container else {}),
            **status,
        },
    }


def failed_job(reason: str, message: str) -> dict[str, Any]:
    condition = {"type": "Failed", "status": "True", "reason": reason, "message": message}
    return {**JOB, "status": {"conditions": [condition]}}


@pytest.mark.parametrize(
    "reason", ["InvalidImageName", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"]
)
def test_fatal_waiting_reasons_cannot_start(reason: str) -> None:
    waiting = {"waiting": {"reason": reason, "message": "the kubelet's words"}}
    status = job_status(REF, JOB, [pod(state=waiting)])
    assert status.phase == "starting"
    assert status.cannot_start
    assert status.reason == reason
    assert status.message.endswith(f"cannot start: {reason}: the kubelet's words")


def test_unschedulable_waits_with_the_schedulers_message() -> None:
    scheduled = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu.",
    }
    status = job_status(REF, JOB, [pod(conditions=[scheduled])])
    assert status.phase == "starting"
    assert not status.cannot_start
    assert status.reason == "Unschedulable"
    assert "0/3 nodes are available: 3 Insufficient cpu." in status.message


def test_container_creating_is_starting() -> None:
    status = job_status(REF, JOB, [pod(state={"waiting": {"reason": "ContainerCreating"}})])
    assert (status.phase, status.cannot_start) == ("starting", False)


def test_oom_killed_is_stopped_with_exit_code_137() -> None:
    terminated = {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}
    status = job_status(
        REF, failed_job("BackoffLimitExceeded", "..."), [pod("Failed", state=terminated)]
    )
    assert status.phase == "stopped"
    assert status.exit_code == 137
    assert status.reason == "OOMKilled"
    assert "OOMKilled (exit code 137)" in status.message


def test_evicted_is_stopped_with_the_kubelets_message() -> None:
    status = job_status(
        REF,
        JOB,
        [pod("Failed", reason="Evicted", message="The node was low on resource: memory.")],
    )
    assert status.phase == "stopped"
    assert status.reason == "Evicted"
    assert status.message.endswith("Evicted: The node was low on resource: memory.")


def test_deadline_exceeded_is_stopped() -> None:
    job = failed_job("DeadlineExceeded", "Job was active longer than specified deadline")
    status = job_status(REF, job, [])
    assert status.phase == "stopped"
    assert status.reason == "DeadlineExceeded"
    assert "Job was active longer than specified deadline" in status.message


def test_a_non_zero_exit_and_a_success() -> None:
    error = job_status(
        REF, JOB, [pod("Failed", state={"terminated": {"exitCode": 1, "reason": "Error"}})]
    )
    assert (error.phase, error.exit_code, error.reason) == ("stopped", 1, "Error")
    done = job_status(REF, JOB, [pod("Succeeded", state={"terminated": {"exitCode": 0}})])
    assert (done.phase, done.exit_code) == ("stopped", 0)


def test_running_deleting_and_gone() -> None:
    assert job_status(REF, JOB, [pod("Running", state={"running": {}})]).phase == "running"
    deleting = {**JOB, "metadata": {**JOB["metadata"], "deletionTimestamp": "2026-11-29T10:00:00Z"}}
    assert job_status(REF, deleting, [pod("Running", state={"running": {}})]).phase == "stopping"
    assert job_status(REF, None, [pod("Running", state={"running": {}})]).phase == "stopping"
    gone = job_status(REF, None, [])
    assert gone.phase == "gone"
    assert gone.ended
    assert "no longer exists" in gone.message
    assert job_status(REF, JOB, []).phase == "starting"


# --- errors -------------------------------------------------------------------------------------


def status_body(reason: str, message: str, code: int) -> str:
    return (
        f'{{"kind": "Status", "status": "Failure", "reason": "{reason}", '
        f'"message": "{message}", "code": {code}}}'
    )


@pytest.mark.parametrize(
    ("status", "reason", "retryable", "unknown"),
    [
        (429, "TooManyRequests", True, False),
        (500, "InternalError", True, True),
        (503, "ServiceUnavailable", True, True),
        (422, "Invalid", False, False),
        (403, "Forbidden", False, False),
        (404, "NotFound", False, False),
        (400, "BadRequest", False, False),
    ],
)
def test_answers_are_classified_as_ecs_errors_are(
    status: int, reason: str, retryable: bool, unknown: bool
) -> None:
    error = api_error(
        "create Job flows/x",
        status,
        status_body(reason, "the server's words", status),
        creates=True,
    )
    assert error.retryable is retryable
    assert error.outcome_unknown is unknown
    assert error.reason == "the server's words"
    assert error.code == reason
    assert "the server's words" in str(error)


def test_no_answer_to_a_create_leaves_its_outcome_unknown() -> None:
    error = connection_error("create Job flows/x", TimeoutError("read timed out"), creates=True)
    assert error.retryable
    assert error.outcome_unknown
    assert not connection_error("read Job", TimeoutError("x")).outcome_unknown


def test_an_html_error_page_is_named_not_quoted() -> None:
    error = api_error("list pods", 502, "<html><body>Bad Gateway</body></html>")
    assert "<html>" not in str(error)


# --- EKS tokens ---------------------------------------------------------------------------------

CREDENTIALS = Credentials("AKIDEXAMPLE", "example-not-a-secret")


def test_the_token_is_a_presigned_get_caller_identity_for_the_cluster() -> None:
    token = bearer_token("flows", "eu-west-1", CREDENTIALS)
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    assert "=" not in encoded
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    url = presigned_url(token)
    assert url == base64.urlsafe_b64decode(encoded + "==").decode()
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname) == ("https", "sts.eu-west-1.amazonaws.com")
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["Action"] == "GetCallerIdentity"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert int(query["X-Amz-Expires"]) <= 900


class FakeSession:
    """The one boundary stubbed: a boto3 session's credentials and region."""

    region_name = "eu-west-1"

    def __init__(self) -> None:
        self.signed = 0  # tokens minted

    def get_credentials(self) -> Credentials:
        self.signed += 1
        return CREDENTIALS


def test_a_token_is_reused_for_14_minutes_then_minted_again() -> None:
    now = [0.0]
    session = FakeSession()
    access = EksAccess(session, clock=lambda: now[0])
    first = access.token("flows", None)
    now[0] = TOKEN_REUSE_SECONDS - 1
    assert access.token("flows", None) == first
    assert session.signed == 1
    access.token("flows", None, fresh=True)  # after a 401
    assert session.signed == 2
    now[0] += TOKEN_REUSE_SECONDS + 1
    access.token("flows", None)
    assert session.signed == 3
    access.token("other", None)
    assert session.signed == 4
