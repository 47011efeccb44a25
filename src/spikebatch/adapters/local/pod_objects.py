"""The local backend's attempts shown as v1 Pods, so a failure is explained by the same
domain code as on a cluster (``domain.job_report``, ``domain.batch_report``).

Each pod carries what the job controller puts on the pods it makes: the Job's pod
template labels plus ``job-name`` / ``controller-uid`` (and their
``batch.kubernetes.io/`` forms), an owner reference to the Job (kind, name, uid), and
for an Indexed Job its completion index as label and annotation
``batch.kubernetes.io/job-completion-index`` (with backoffLimitPerIndex also the
index's failure count so far, as ``batch.kubernetes.io/job-index-failure-count``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from ...domain.batch import COMPLETION_INDEX_LABEL
from . import state_files as st

#: What a cluster keeps of a failed container's log (terminationMessagePolicy
#: FallbackToLogsOnError keeps at most 2048 bytes): enough for the exception line.
LOG_TAIL_BYTES = 2048
INDEX_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _controller_labels(job: Mapping[str, Any]) -> dict[str, str]:
    meta = job.get("metadata") or {}
    name, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
    return {"job-name": name, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid}


def _owner_reference(job: Mapping[str, Any]) -> dict[str, Any]:
    meta = job.get("metadata") or {}
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta.get("name"), "uid": meta.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def pod_objects(job_dir: Path, job: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
    """One Pod per attempt, oldest first, with a terminated container state for the
    attempts that ended (exit code, reason, log tail as its message, start and finish
    times). ``job``: the Job (read from its folder when not given)."""
    if job is None:
        job = st.read_json(job_dir / st.MANIFEST) or {}
    meta = job.get("metadata") or {}
    template = (job.get("spec") or {}).get("template") or {}
    template_labels = dict((template.get("metadata") or {}).get("labels") or {})
    container_name = str((((template.get("spec") or {}).get("containers") or [{}])[0] or {}).get("name") or "main")
    pods: list[dict[str, Any]] = []
    for record in st.pod_records(job_dir):
        number = int(record.get("index", len(pods)))
        pods.append(_pod(job_dir, record, number, template_labels, job, container_name, meta.get("namespace")))
    return pods


def _pod(job_dir: Path, record: Mapping[str, Any], number: int, template_labels: Mapping[str, str],
         job: Mapping[str, Any], container_name: str, namespace: Optional[str]) -> dict[str, Any]:
    phase = str(record.get("phase") or "Pending")
    labels = {**template_labels, **_controller_labels(job)}
    annotations: dict[str, str] = {}
    index = record.get("completionIndex")
    if index is not None:
        labels[COMPLETION_INDEX_LABEL] = annotations[COMPLETION_INDEX_LABEL] = str(index)
    if record.get("indexFailureCount") is not None:
        annotations[INDEX_FAILURE_COUNT_ANNOTATION] = str(record["indexFailureCount"])
    if record.get("indexIgnoredFailureCount"):
        annotations[INDEX_IGNORED_FAILURE_COUNT_ANNOTATION] = str(record["indexIgnoredFailureCount"])
    state: dict[str, Any] = {}
    if phase in ("Succeeded", "Failed"):
        code = record.get("exitCode")
        reason = record.get("reason") or ("Completed" if phase == "Succeeded" else "Error")
        state["terminated"] = {
            "exitCode": code if code is not None else 137,
            "reason": reason,
            "message": _log_tail(st.pod_log_path(job_dir, number)) if phase == "Failed" else "",
            "startedAt": record.get("startTime"),
            "finishedAt": record.get("finishTime"),
        }
    elif phase == "Running":
        state["running"] = {"startedAt": record.get("startTime")}
    metadata: dict[str, Any] = {"name": record.get("name"), "creationTimestamp": record.get("creationTimestamp"),
                                "labels": labels, "ownerReferences": [_owner_reference(job)]}
    if namespace:
        metadata["namespace"] = namespace
    if annotations:
        metadata["annotations"] = annotations
    status: dict[str, Any] = {"phase": phase,
                              "containerStatuses": [{"name": container_name, "state": state,
                                                     "ready": phase == "Running"}]}
    if record.get("startTime"):
        status["startTime"] = record["startTime"]
    return {"metadata": metadata, "status": status}
