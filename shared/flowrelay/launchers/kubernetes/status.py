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

from collections.abc import Mapping, Sequence
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
    status = obj.get("status") or {}
    return {
        str(item.get("type")): item
        for item in status.get("conditions") or []
        if isinstance(item, Mapping) and str(item.get("status")) == "True"
    }


def _pod_conditions(pod: Json) -> dict[str, Json]:
    status = pod.get("status") or {}
    return {
        str(item.get("type")): item
        for item in status.get("conditions") or []
        if isinstance(item, Mapping)
    }


def _flow_status(pod: Json, container: str | None) -> Json | None:
    statuses = [s for s in (pod.get("status") or {}).get("containerStatuses") or [] if s]
    for item in statuses:
        if item.get("name") == container:
            return dict(item)
    return dict(statuses[0]) if statuses else None


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
    if job is None and not pods:
        return InfraStatus(
            phase="gone",
            ref=ref,
            noun=NOUN,
            state="Deleted",
            message=f"its Kubernetes Job {name} no longer exists (deleted)",
            details=details,
        )
    if job is None or (job.get("metadata") or {}).get("deletionTimestamp"):
        return InfraStatus(
            phase="stopping",
            ref=ref,
            noun=NOUN,
            state="Terminating",
            message=f"its Kubernetes Job {name} is being deleted",
            details=details,
        )
    if pod is not None:
        ended = _ended(ref, name, pod, container, details)
        if ended is not None:
            return ended
    failed = _conditions(job).get("Failed")
    if failed is not None:
        reason = str(failed.get("reason") or "Failed")
        text = str(failed.get("message") or reason)
        return InfraStatus(
            phase="stopped",
            ref=ref,
            noun=NOUN,
            state="Failed",
            reason=reason,
            message=f"its Kubernetes Job {name} failed: {reason}: {text}",
            details=details,
        )
    if "Complete" in _conditions(job):
        return InfraStatus(
            phase="stopped",
            ref=ref,
            noun=NOUN,
            state="Complete",
            message=f"its Kubernetes Job {name} completed",
            exit_code=0,
            details=details,
        )
    if pod is None:
        return InfraStatus(
            phase="starting",
            ref=ref,
            noun=NOUN,
            state="Created",
            message=f"its Kubernetes Job {name} has no pod yet",
            details=details,
        )
    return _live(ref, name, pod, container, details)


def latest_pod(pods: Sequence[Json]) -> Json | None:
    """The pod that speaks for the attempt: the newest (a Job makes one with backoffLimit 0)."""
    if not pods:
        return None
    return max(pods, key=lambda pod: str((pod.get("metadata") or {}).get("creationTimestamp")))


def _ended(
    ref: str, name: str, pod: Json, container: str | None, details: dict[str, Any]
) -> InfraStatus | None:
    status = pod.get("status") or {}
    phase = status.get("phase")
    pod_name = details.get("pod")
    flow = _flow_status(pod, container) or {}
    terminated = (flow.get("state") or {}).get("terminated") or {}
    if phase not in ("Failed", "Succeeded") and not terminated:
        return None
    exit_code = terminated.get("exitCode")
    if phase == "Succeeded" or (not status.get("reason") and exit_code == 0):
        return InfraStatus(
            phase="stopped",
            ref=ref,
            noun=NOUN,
            state="Succeeded",
            message=f"its pod {pod_name} exited with code 0",
            exit_code=0,
            details=details,
        )
    reason = str(status.get("reason") or terminated.get("reason") or "Error")
    text = status.get("message") or terminated.get("message")
    message = f"its pod {pod_name} failed: {reason}"
    if exit_code is not None:
        message += f" (exit code {exit_code})"
        details["exit_code"] = exit_code
    if text:
        message += f": {str(text).strip()}"
    return InfraStatus(
        phase="stopped",
        ref=ref,
        noun=NOUN,
        state="Failed",
        reason=reason,
        message=message,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        details=details,
    )


def _live(
    ref: str, name: str, pod: Json, container: str | None, details: dict[str, Any]
) -> InfraStatus:
    status = pod.get("status") or {}
    pod_name = details.get("pod")
    flow = _flow_status(pod, container) or {}
    state = flow.get("state") or {}
    if "running" in state:
        return InfraStatus(
            phase="running",
            ref=ref,
            noun=NOUN,
            state="Running",
            message=f"its pod {pod_name} is running",
            details=details,
        )
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason:
        text = str(waiting.get("message") or "").strip()
        said = f"{reason}: {text}" if text else str(reason)
        return InfraStatus(
            phase="starting",
            ref=ref,
            noun=NOUN,
            state=str(status.get("phase") or "Pending"),
            reason=str(reason),
            message=f"its pod {pod_name} cannot start: {said}"
            if reason in FATAL_WAITING
            else f"its pod {pod_name} is waiting: {said}",
            cannot_start=reason in FATAL_WAITING,
            details=details,
        )
    scheduled = _pod_conditions(pod).get("PodScheduled") or {}
    if str(scheduled.get("status")) == "False":
        why = str(scheduled.get("reason") or "Unschedulable")
        text = str(scheduled.get("message") or "").strip()
        return InfraStatus(
            phase="starting",
            ref=ref,
            noun=NOUN,
            state="Pending",
            reason=why,
            message=f"its pod {pod_name} is not scheduled: {why}" + (f": {text}" if text else ""),
            details=details,
        )
    return InfraStatus(
        phase="starting",
        ref=ref,
        noun=NOUN,
        state=str(status.get("phase") or "Pending"),
        message=f"its pod {pod_name} is {str(status.get('phase') or 'Pending').lower()}",
        details=details,
    )
