"""Reading batch/v1 Job and Pod objects (the API server's JSON as dicts): label
selectors, timestamps, JobInfo, creation order, whether a pod has started or finished,
and which container is spikebatch's."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Mapping, Optional

from ...domain.job_state import job_state_of
from ...ports.backend import JobInfo


def label_selector(labels: Optional[Mapping[str, str]]) -> Optional[str]:
    """``{"a": "1", "b": "2"}`` -> ``"a=1,b=2"`` (equality on every label)."""
    if not labels:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def pod_selector(job: Mapping[str, Any]) -> str:
    """The label selector of a Job's pods: the Job's own selector (its controller-uid),
    so a Job re-created under the same name never shows its predecessor's pods."""
    name = (job.get("metadata") or {}).get("name", "")
    match = ((job.get("spec") or {}).get("selector") or {}).get("matchLabels") or {"job-name": name}
    return label_selector(match) or ""


def parse_timestamp(value: Any) -> Optional[datetime]:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def job_info(job: Mapping[str, Any], namespace: str) -> JobInfo:
    meta = job.get("metadata") or {}
    return JobInfo(name=meta.get("name", ""), namespace=meta.get("namespace") or namespace,
                   state=job_state_of(job), labels=dict(meta.get("labels") or {}),
                   created_at=parse_timestamp(meta.get("creationTimestamp")))


def sorted_by_creation(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Oldest first: by creationTimestamp (1 s resolution), then by name."""
    def key(obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    return sorted(objects, key=key)


def pod_has_finished(pod: Optional[Mapping[str, Any]]) -> bool:
    """The pod is gone, or Succeeded/Failed, or its containers all terminated."""
    if not pod:
        return True
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    states = [c.get("state") or {} for c in status.get("containerStatuses") or ()]
    return bool(states) and all("terminated" in s for s in states)


def pod_has_started(pod: Optional[Mapping[str, Any]]) -> bool:
    """Some container of the pod has run (so it has a log to read)."""
    if not pod:
        return False
    status = pod.get("status") or {}
    if status.get("phase") in ("Running", "Succeeded", "Failed"):
        return True
    return any("running" in (c.get("state") or {}) or "terminated" in (c.get("state") or {})
               for c in status.get("containerStatuses") or ())


def container_name(pod: Mapping[str, Any]) -> str:
    """The name of a pod's first container (the one spikebatch renders)."""
    return ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
