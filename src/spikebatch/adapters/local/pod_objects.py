"""The local backend's attempts shown as v1 Pods, so a failure is explained by the same
domain code as on a cluster (``domain.job_report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import state_files as st

#: What a cluster keeps of a failed container's log (terminationMessagePolicy
#: FallbackToLogsOnError keeps at most 2048 bytes): enough for the exception line.
LOG_TAIL_BYTES = 2048


def _log_tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - LOG_TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def pod_objects(job_dir: Path) -> list[dict[str, Any]]:
    """One Pod per attempt, oldest first, with a terminated container state for the
    attempts that ended (exit code, reason, log tail as its message)."""
    pods: list[dict[str, Any]] = []
    for record in st.pod_records(job_dir):
        index = int(record.get("index", len(pods)))
        phase = str(record.get("phase") or "Pending")
        state: dict[str, Any] = {}
        if phase in ("Succeeded", "Failed"):
            code = record.get("exitCode")
            reason = record.get("reason") or ("Completed" if phase == "Succeeded" else "Error")
            state["terminated"] = {
                "exitCode": code if code is not None else 137,
                "reason": reason,
                "message": _log_tail(st.pod_log_path(job_dir, index)) if phase == "Failed" else "",
            }
        elif phase == "Running":
            state["running"] = {"startedAt": record.get("startTime")}
        pods.append({
            "metadata": {"name": record.get("name"), "creationTimestamp": record.get("creationTimestamp")},
            "status": {"phase": phase, "containerStatuses": [{"name": "main", "state": state}]},
        })
    return pods
