"""Why a Job is where it is: one reason a user can act on, from the Job and its pods.

A Job's conditions say *that* it failed ("BackoffLimitExceeded"); its pods say *why*:
the container was OOMKilled, exited 1 with a Python exception as its last log line,
or never started because its image cannot be pulled. Every backend hands this module
the same shapes (a batch/v1 Job and v1 Pods as the API server serialises them), so the
explanation reads the same on a cluster and on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from .bundle import RESULT_MARKER
from .job_state import FAILED_CONDITIONS, JobState, job_state_of

#: A pod waiting for one of these will not start by itself: the image cannot be
#: pulled (the kubelet already retried: BackOff), the image name is malformed, or a
#: secret / config map the pod needs does not exist.
STUCK_REASONS = frozenset({
    "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "CreateContainerConfigError",
})
#: Worth telling a user while waiting, though the kubelet is still retrying.
WAITING_PROBLEMS = STUCK_REASONS | {"ErrImagePull", "CreateContainerError", "CrashLoopBackOff"}

#: Job-level reasons more telling than any single pod's.
_JOB_LEVEL_REASONS = ("DeadlineExceeded", "SupervisorLost")

MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class JobReport:
    """One Job's state plus the reason behind it.

    ``reason``: "OOMKilled", "Error", "DeadlineExceeded", "BackoffLimitExceeded",
    "ErrImagePull", "ImagePullBackOff", "Unschedulable", ... or "" when there is
    nothing to explain. ``stuck``: the pod waits for something that will not happen by
    itself (see STUCK_REASONS).
    """

    job_name: str
    state: JobState
    reason: str = ""
    exit_code: Optional[int] = None
    message: str = ""
    stuck: bool = False

    def summary(self) -> str:
        """One line, e.g. "Failed: OOMKilled (exit code 137)"."""
        parts = [self.state.value]
        if self.reason:
            parts.append(f": {self.reason}")
        if self.exit_code is not None:
            parts.append(f" (exit code {self.exit_code})")
        if self.message:
            parts.append(f": {self.message}")
        return "".join(parts)


def _one_line(text: Any) -> str:
    return " ".join(str(text or "").split())[:MESSAGE_LIMIT]


def last_line(text: Any) -> str:
    """The last non-empty line of a log tail: for a Python traceback, the exception.
    The runner's result marker (its last line) gives way to the reason it carries,
    or else to the line before it."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    while lines and lines[-1].startswith(RESULT_MARKER + " "):
        _, found, reason = lines[-1].partition(" reason=")
        if found and reason.strip():
            return _one_line(reason)
        lines.pop()
    return _one_line(lines[-1]) if lines else ""


def _failed_condition(job: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if (isinstance(cond, Mapping) and cond.get("type") in FAILED_CONDITIONS
                and str(cond.get("status", "")).lower() == "true"):
            return cond
    return None


def _containers(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [c for c in (status.get("containerStatuses") or ()) if isinstance(c, Mapping)]


def _created(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("creationTimestamp") or "")


def _terminated(pods: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The newest pod's terminated container state that did not succeed, if any."""
    for pod in sorted(pods, key=_created, reverse=True):
        for container in _containers(pod):
            for key in ("state", "lastState"):
                term = (container.get(key) or {}).get("terminated")
                if isinstance(term, Mapping) and term.get("exitCode") not in (None, 0):
                    return term
    return None


def _waiting(pods: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    for pod in sorted(pods, key=_created, reverse=True):
        for container in _containers(pod):
            waiting = (container.get("state") or {}).get("waiting")
            if isinstance(waiting, Mapping) and waiting.get("reason") in WAITING_PROBLEMS:
                return waiting
    return None


def _unschedulable(pods: Sequence[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    for pod in pods:
        for cond in (pod.get("status") or {}).get("conditions") or ():
            if (isinstance(cond, Mapping) and cond.get("type") == "PodScheduled"
                    and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"):
                return cond
    return None


def _exit_code(term: Mapping[str, Any]) -> Optional[int]:
    try:
        return int(term.get("exitCode"))
    except (TypeError, ValueError):
        return None


def report_job(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]] = ()) -> JobReport:
    """Explain ``job`` from its own status and its pods' (pure: dicts in, report out)."""
    name = str((job.get("metadata") or {}).get("name") or "")
    state = job_state_of(job)
    failed = _failed_condition(job)
    term = _terminated(pods)

    if state is JobState.FAILED:
        job_reason = str((failed or {}).get("reason") or "")
        job_message = _one_line((failed or {}).get("message"))
        if job_reason in _JOB_LEVEL_REASONS or term is None:
            return JobReport(name, state, job_reason, None, job_message)
        return JobReport(name, state, str(term.get("reason") or "Error"), _exit_code(term),
                         last_line(term.get("message")))
    if state is JobState.COMPLETE:
        return JobReport(name, state)

    waiting = _waiting(pods)
    if waiting is not None:
        reason = str(waiting.get("reason"))
        return JobReport(name, state, reason, None, _one_line(waiting.get("message")),
                         stuck=reason in STUCK_REASONS)
    unschedulable = _unschedulable(pods)
    if unschedulable is not None:
        return JobReport(name, state, "Unschedulable", None, _one_line(unschedulable.get("message")))
    if term is not None:
        # A failed attempt of a Job that still has retries left.
        return JobReport(name, state, str(term.get("reason") or "Error"), _exit_code(term),
                         last_line(term.get("message")))
    return JobReport(name, state)
