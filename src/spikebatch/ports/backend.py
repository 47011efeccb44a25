"""The JobBackend port: where Jobs run and how their state is observed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional, Protocol, Union, runtime_checkable

# The values the port exchanges are domain types; they are re-exported here so that
# adapters and callers can take everything about the port from one module.
from ..domain.job_report import JobReport
from ..domain.job_state import JobEvent, JobInfo, JobProgress, JobState

__all__ = ["JobBackend", "JobEvent", "JobInfo", "JobProgress", "JobReport", "JobState", "ManifestInput"]

ManifestInput = Union[str, Path, Mapping[str, Any]]


@runtime_checkable
class JobBackend(Protocol):
    """Submits and observes batch Jobs in one namespace.

    Every method raises subclasses of ``spikebatch.domain.errors.BackendError``.
    """

    namespace: str

    def apply_manifest(self, manifest: ManifestInput, dry_run: bool = False) -> str:
        """Create the Job from YAML text, a path to a YAML file, or a dict. Returns the
        Job's name. Refuses a manifest whose namespace differs from ``namespace``.
        With ``dry_run`` every check runs (validation, admission, permissions, a name
        already taken) but nothing is created or started."""

    def job_status(self, job_name: str) -> JobState:
        """Pending, Running, Complete, Failed or Unknown (from the Job's conditions)."""

    def job_report(self, job_name: str) -> JobReport:
        """The Job's state and the reason behind it, read from the Job and its pods:
        an exit code and the exception line, OOMKilled, DeadlineExceeded, an image
        that cannot be pulled (``stuck``)."""

    def pods_for_job(self, job_name: str) -> list[str]:
        """Names of the Job's pods, oldest first (retried pods included)."""

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        """Log lines of every pod of the job in creation order; with ``follow``, keep
        streaming until the job ends (retried pods picked up as they come)."""

    def stream_logs(self, pod_name: str, follow: bool = True) -> Iterator[str]:
        """Log lines of one pod (a name from ``pods_for_job``), as the reference's
        backend gives them; with ``follow``, until its container ends. A pod that does
        not exist raises JobNotFoundError; one that has not started yet gives nothing
        (without ``follow``) or is waited for."""

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
        progress: bool = False,
    ) -> Iterator[JobEvent]:
        """Yield an event each time a matching Job's state changes (the first event per
        Job is its current state). Ends when every named job is terminal or when
        ``timeout_seconds`` pass. Survives dropped connections (resume from the last
        resourceVersion, relist after 410 Gone). With ``progress`` an event also comes
        when only the Job's pod counts or index lists changed, each carrying them
        (``JobEvent.progress``): what a batch's live view counts."""

    def server_version(self) -> Optional[tuple[int, int]]:
        """(major, minor) of the Kubernetes API server, asked of the server; None for
        a backend that is not one (the local backend runs Indexed Jobs itself)."""

    def run_objects(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every Job labelled with ``run_id`` and every pod labelled with it, as the API
        server serialises them (batch/v1 Job and v1 Pod dicts, camelCase): two requests
        whatever their number. What a batch's status is read from."""
