"""A Job's state, derived from its object alone (pure: dicts in, JobState out).

All three backends feed this module the same shape, a batch/v1 Job as the API server
serialises it (camelCase keys): the Kubernetes adapter reads it from the API, kubectl
prints it, and the local backend writes one of its own. So "Complete" means the same
thing whichever adapter is used.

Rules, in order:

1. A terminal condition decides: ``Complete`` or ``SuccessCriteriaMet`` -> Complete;
   ``Failed`` or ``FailureTarget`` -> Failed. (Since Kubernetes 1.31 the controller
   first sets the *Target/SuccessCriteriaMet condition, waits for the pods to
   terminate, then adds Failed/Complete; the outcome is already decided at the first.)
2. A suspended Job (``spec.suspend`` or a ``Suspended`` condition) is Pending.
3. A ready pod -> Running. A pod that failed or succeeded while the Job is not
   finished means the controller is retrying or continuing -> Running (a failed pod
   with retries left is not a failed Job).
4. Active pods none of which is ready yet (unscheduled, pulling the image) -> Pending,
   when the server reports ``ready`` at all; old servers that do not -> Running.
5. Nothing at all -> Pending (a Job the controller has not looked at yet).

Anything that is not a Job object (no mapping) is Unknown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional

from .naming import RUN_ID_LABEL


class JobState(str, enum.Enum):
    """A Job's state, derived from its conditions (not from single pods).

    A str enum so ``state == "Complete"`` holds, as spec-era code expects.
    """

    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"
    UNKNOWN = "Unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (JobState.COMPLETE, JobState.FAILED)

    def __str__(self) -> str:  # print(state) shows "Complete", not "JobState.COMPLETE"
        return self.value


@dataclass(frozen=True)
class JobInfo:
    """One Job as ``list_jobs`` reports it."""

    name: str
    namespace: str
    state: JobState
    labels: dict[str, str] = field(default_factory=dict)
    created_at: Optional[datetime] = None

    @property
    def run_id(self) -> Optional[str]:
        return self.labels.get(RUN_ID_LABEL)


@dataclass(frozen=True)
class JobEvent:
    """A change of a Job's state, as ``watch`` yields it."""

    job_name: str
    state: JobState
    #: "ADDED", "MODIFIED", "DELETED" or "RELISTED" (state seen in a fresh list).
    kind: str = "MODIFIED"
    message: str = ""
    #: The Job's pod counts and index lists when the watch was asked for progress
    #: (``JobProgress``); None otherwise.
    progress: Optional["JobProgress"] = None


@dataclass(frozen=True)
class JobProgress:
    """How far a Job has got: its pod counts and, for an Indexed Job, which completion
    indexes succeeded and failed (``status.completedIndexes`` / ``failedIndexes``)."""

    active: int = 0
    succeeded: int = 0
    failed: int = 0
    completed_indexes: str = ""
    failed_indexes: str = ""


def job_progress(job: Any) -> JobProgress:
    status = job.get("status") if isinstance(job, Mapping) else None
    if not isinstance(status, Mapping):
        return JobProgress()
    return JobProgress(_count(status, "active"), _count(status, "succeeded"), _count(status, "failed"),
                       str(status.get("completedIndexes") or ""), str(status.get("failedIndexes") or ""))

COMPLETE_CONDITIONS = ("Complete", "SuccessCriteriaMet")
FAILED_CONDITIONS = ("Failed", "FailureTarget")


def _true_conditions(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for cond in status.get("conditions") or ():
        if isinstance(cond, Mapping) and str(cond.get("status", "")).lower() == "true":
            found.setdefault(str(cond.get("type", "")), cond)
    return found


def _count(status: Mapping[str, Any], key: str) -> int:
    value = status.get(key)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def derive_job_state(status: Optional[Mapping[str, Any]], *, suspended: bool = False) -> JobState:
    """JobState from a Job's ``status`` mapping (``None`` = no status written yet)."""
    if status is None:
        return JobState.PENDING
    if not isinstance(status, Mapping):
        return JobState.UNKNOWN
    conditions = _true_conditions(status)
    # Failed before Complete: a Job can never carry both as True, but if a malformed
    # object did, reporting success would hide the failure.
    if any(c in conditions for c in FAILED_CONDITIONS):
        return JobState.FAILED
    if any(c in conditions for c in COMPLETE_CONDITIONS):
        return JobState.COMPLETE
    if suspended or "Suspended" in conditions:
        return JobState.PENDING
    active, failed, succeeded = _count(status, "active"), _count(status, "failed"), _count(status, "succeeded")
    if _count(status, "ready") > 0:
        return JobState.RUNNING
    if failed > 0 or succeeded > 0:
        return JobState.RUNNING
    if active > 0:
        return JobState.PENDING if "ready" in status else JobState.RUNNING
    return JobState.PENDING


def job_state_of(job: Any) -> JobState:
    """JobState of a whole Job object (``metadata`` / ``spec`` / ``status``)."""
    if not isinstance(job, Mapping):
        return JobState.UNKNOWN
    spec = job.get("spec") if isinstance(job.get("spec"), Mapping) else {}
    return derive_job_state(job.get("status") or {}, suspended=bool(spec.get("suspend")))


def state_message(job: Any) -> str:
    """One line explaining the state: the deciding condition's reason and message."""
    if not isinstance(job, Mapping):
        return ""
    conditions = _true_conditions(job.get("status") or {})
    for ctype in FAILED_CONDITIONS + COMPLETE_CONDITIONS + ("Suspended",):
        cond = conditions.get(ctype)
        if cond:
            reason, message = cond.get("reason") or "", cond.get("message") or ""
            return " ".join(f"{ctype}: {reason} {message}".split()).rstrip(":")
    return ""


def job_name_of(job: Any) -> str:
    meta = job.get("metadata") if isinstance(job, Mapping) else None
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


@dataclass
class JobWatchTracker:
    """The bookkeeping every adapter's ``watch`` shares: which state each Job was last
    reported in, which events are worth yielding, and when the watch is done.

    ``names`` restricts the watch to those Jobs (None = every Job the stream shows).
    """

    names: Optional[frozenset[str]] = None
    last: dict[str, JobState] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    #: Also yield an event when only a Job's progress (pod counts, indexes) changed,
    #: each event carrying it.
    progress: bool = False
    last_progress: dict[str, JobProgress] = field(default_factory=dict)

    @classmethod
    def for_names(cls, names: Optional[Iterable[str]], progress: bool = False) -> "JobWatchTracker":
        return cls(names=frozenset(names) if names is not None else None, progress=progress)

    def wants(self, name: str) -> bool:
        return bool(name) and (self.names is None or name in self.names)

    def observe(self, job: Mapping[str, Any], kind: str) -> Optional[JobEvent]:
        """Record one Job seen in a list or a watch event; return the event to yield,
        or None when its state did not change (a status update that moved no state)."""
        name = job_name_of(job)
        if not self.wants(name):
            return None
        if kind == "DELETED":
            return self.deleted(name)
        state = job_state_of(job)
        progress = job_progress(job) if self.progress else None
        if (self.last.get(name) == state and name not in self.gone
                and (progress is None or self.last_progress.get(name) == progress)):
            return None
        first = name not in self.last
        self.last[name] = state
        if progress is not None:
            self.last_progress[name] = progress
        self.gone.discard(name)
        return JobEvent(job_name=name, state=state, kind="ADDED" if first else kind,
                        message=state_message(job), progress=progress)

    def deleted(self, name: str) -> Optional[JobEvent]:
        if not self.wants(name) or name in self.gone:
            return None
        self.gone.add(name)
        state = self.last.get(name, JobState.UNKNOWN)
        return JobEvent(job_name=name, state=state, kind="DELETED", message="the Job was deleted")

    def relisted(self, jobs: Iterable[Mapping[str, Any]], kind: str = "RELISTED") -> list[JobEvent]:
        """Events after a fresh list (first list, or after 410 Gone / a reconnect):
        changed states as ``kind`` (first sightings as "ADDED"), and a "DELETED" for
        every known Job the list no longer contains."""
        events: list[JobEvent] = []
        present: set[str] = set()
        for job in jobs:
            name = job_name_of(job)
            present.add(name)
            ev = self.observe(job, kind)
            if ev is not None:
                events.append(ev)
        for name in sorted(set(self.last) - present - self.gone):
            ev = self.deleted(name)
            if ev is not None:
                events.append(ev)
        return events

    def missing(self) -> list[str]:
        """Named Jobs never seen (after the first list: they do not exist)."""
        if self.names is None:
            return []
        return sorted(n for n in self.names if n not in self.last and n not in self.gone)

    def done(self) -> bool:
        """Every named Job is terminal or gone. A label-only watch is never done by
        itself: new Jobs may still arrive; it ends on its timeout."""
        if self.names is None:
            return False
        return all(n in self.gone or (n in self.last and self.last[n].is_terminal) for n in self.names)
