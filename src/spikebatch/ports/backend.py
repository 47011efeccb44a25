"""The JobBackend port: where Jobs run and how their state is observed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Protocol, Union, runtime_checkable

ManifestInput = Union[str, Path, Mapping[str, Any]]


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
        from ..domain.naming import RUN_ID_LABEL

        return self.labels.get(RUN_ID_LABEL)


@dataclass(frozen=True)
class JobEvent:
    """A change of a Job's state, as ``watch`` yields it."""

    job_name: str
    state: JobState
    #: "ADDED", "MODIFIED", "DELETED" or "RELISTED" (state seen in a fresh list).
    kind: str = "MODIFIED"
    message: str = ""


@runtime_checkable
class JobBackend(Protocol):
    """Submits and observes batch Jobs in one namespace.

    Every method raises subclasses of ``spikebatch.domain.errors.BackendError``.
    """

    namespace: str

    def apply_manifest(self, manifest: ManifestInput) -> str:
        """Create the Job from YAML text, a path to a YAML file, or a dict. Returns the
        Job's name. Refuses a manifest whose namespace differs from ``namespace``."""

    def job_status(self, job_name: str) -> JobState:
        """Pending, Running, Complete, Failed or Unknown (from the Job's conditions)."""

    def pods_for_job(self, job_name: str) -> list[str]:
        """Names of the Job's pods, oldest first (retried pods included)."""

    def stream_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        """Log lines of every pod of the job in creation order; with ``follow``, keep
        streaming until the job ends."""

    def delete_job(self, job_name: str) -> bool:
        """Delete the Job and its pods (background propagation). True if it existed;
        False (not an error) if it was already gone."""

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> list[JobInfo]:
        """Jobs in the namespace matching every label in ``labels``."""

    def watch(
        self,
        job_names: Optional[Iterable[str]] = None,
        label_selector: Optional[Mapping[str, str]] = None,
        timeout_seconds: Optional[float] = None,
    ) -> Iterator[JobEvent]:
        """Yield an event each time a matching Job's state changes (the first event per
        Job is its current state). Ends when every named job is terminal or when
        ``timeout_seconds`` pass. Survives dropped connections (resume from the last
        resourceVersion, relist after 410 Gone)."""
