"""A run's Job and pods, read into the kind-neutral ``InfraStatus`` the control plane reasons
about (Kubernetes puts no event on flowrelay's bus: the monitor asks at each pass).

- No Job and no pod: ``gone`` (deleted: by a cancel, by ``ttlSecondsAfterFinished``, by
  someone). No Job but pods still terminating, or a Job being deleted: ``stopping``.
- A container waiting for a reason that does not pass by itself (``FATAL_WAITING``: the image
  cannot be pulled or parsed, the container cannot be configured or created): ``starting``
  with ``cannot_start`` and the kubelet's message.
- A pod not yet scheduled (``Unschedulable``, with the scheduler's "0/N nodes are available"),
  or waiting for another reason: ``starting``, with the last message (the monitor gives up at
  the start limit).
- A pod that ended (OOMKilled, Evicted, an exit code), or a Job that failed
  (``DeadlineExceeded``): ``stopped``, with the reason and the exit code. A pod that succeeded:
  ``stopped`` with exit code 0 (the runner's own report says how the run ended).
- A running container: ``running``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from flowrelay.launchers.base import InfraStatus

NOUN = "Kubernetes Job"
#: Container waiting reasons after which a pod never starts by itself.
FATAL_WAITING = frozenset(
    {
        "InvalidImageName",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
Json = Mapping[str, Any]


def _conditions(obj: Json) -> dict[str, Json]:
    """An object's status conditions by type (whatever their ``status``)."""
    status = obj.get("status") or {}
    return {
        str(item.get("type")): item
        for item in status.get("conditions") or []
        if isinstance(item, Mapping)
    }


def _true(conditions: Mapping[str, Json], kind: str) -> Json | None:
    condition = conditions.get(kind)
    return condition if condition is not None and str(condition.get("status")) == "True" else None


def _flow_status(pod: Json, container: str | None) -> Json:
    """The flow container's status in the pod (the first container's when none is named so);
    empty before the kubelet reports any."""
    statuses = [s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s]
    for item in statuses:
        if item.get("name") == container:
            return dict(item)
    return dict(statuses[0]) if statuses else {}


def job_status(
    ref: str,
    job: Json | None,
    pods: Sequence[Json],
    *,
    container: str | None = None,
) -> InfraStatus:
    """How attempt ``ref`` (``namespace/job``) is doing, from its Job (None when the API server
    does not know it) and its pods (see the module docstring)."""
    name = ref.split("/", 1)[-1]
    details: dict[str, Any] = {"job": ref}
    pod = latest_pod(pods)
    if pod is not None:
        details["pod"] = (pod.get("metadata") or {}).get("name")
    said = partial(InfraStatus, ref=ref, noun=NOUN, details=details)
    if job is None and not pods:
        return said(
            phase="gone",
            state="Deleted",
            message=f"its Kubernetes Job {name} no longer exists (deleted)",
        )
    if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return said(
            phase="stopping",
            state="Terminating",
            message=f"its Kubernetes Job {name} is being deleted",
        )
    flow = _flow_status(pod, container) if pod is not None else {}
    if pod is not None:
        ended = _ended(said, pod, flow, details)
        if ended is not None:
            return ended
    conditions = _conditions(job)
    failed = _true(conditions, "Failed")
    if failed is not None:
        reason = str(failed.get("reason") or "Failed")
        text = str(failed.get("message") or reason)
        return said(
            phase="stopped",
            state="Failed",
            reason=reason,
            message=f"its Kubernetes Job {name} failed: {reason}: {text}",
        )
    if _true(conditions, "Complete") is not None:
        return said(
            phase="stopped",
            state="Complete",
            message=f"its Kubernetes Job {name} completed",
            exit_code=0,
        )
    if pod is None:
        return said(
            phase="starting",
            state="Created",
            message=f"its Kubernetes Job {name} has no pod yet",
        )
    return _live(said, pod, flow, details)


def latest_pod(pods: Sequence[Json]) -> Json | None:
    """The pod that speaks for the attempt: the newest (a Job makes one with backoffLimit 0)."""
    if not pods:
        return None
    return max(pods, key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp")))


def _ended(
    said: Callable[..., InfraStatus], pod: Json, flow: Json, details: dict[str, Any]
) -> InfraStatus | None:
    """The pod's end (Succeeded, Failed, or its flow container terminated); None while not."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    pod_name = details.get("pod")
    terminated = (flow.get("state") or {}).get("terminated") or {}
    if phase not in ("Failed", "Succeeded") and not terminated:
        return None
    exit_code = terminated.get("exitCode")
    if phase == "Succeeded" or (not status.get("reason") and exit_code == 0):
        return said(
            phase="stopped",
            state="Succeeded",
            message=f"its pod {pod_name} exited with code 0",
            exit_code=0,
        )
    reason = str(status.get("reason") or terminated.get("reason") or "Error")
    text = status.get("message") or terminated.get("message")
    message = f"its pod {pod_name} failed: {reason}"
    if exit_code is not None:
        message += f" (exit code {exit_code})"
        details["exit_code"] = exit_code
    if text:
        message += f": {str(text).strip()}"
    return said(
        phase="stopped",
        state="Failed",
        reason=reason,
        message=message,
        exit_code=exit_code if isinstance(exit_code, int) else None,
    )


def _live(
    said: Callable[..., InfraStatus], pod: Json, flow: Json, details: dict[str, Any]
) -> InfraStatus:
    """A pod that has not ended: running, waiting (fatally or not), or not scheduled."""
    phase = str((pod.get("status") or {}).get("phase") or "Pending")
    pod_name = details.get("pod")
    state = flow.get("state") or {}
    if "running" in state:
        return said(phase="running", state="Running", message=f"its pod {pod_name} is running")
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason:
        text = str(waiting.get("message") or "").strip()
        account = f"{reason}: {text}" if text else str(reason)
        fatal = reason in FATAL_WAITING
        return said(
            phase="starting",
            state=phase,
            reason=str(reason),
            message=f"its pod {pod_name} cannot start: {account}"
            if fatal
            else f"its pod {pod_name} is waiting: {account}",
            cannot_start=fatal,
        )
    scheduled = _conditions(pod).get("PodScheduled") or {}
    if str(scheduled.get("status")) == "False":
        why = str(scheduled.get("reason") or "Unschedulable")
        text = str(scheduled.get("message") or "").strip()
        return said(
            phase="starting",
            state="Pending",
            reason=why,
            message=f"its pod {pod_name} is not scheduled: {why}" + (f": {text}" if text else ""),
        )
    return said(phase="starting", state=phase, message=f"its pod {pod_name} is {phase.lower()}")
