"""Use cases on runs already submitted: finding a job again by job name or run id,
the SubmitResult of a job (from this machine's record or from the Job's labels),
remembering submissions and the states seen, and a job's log after the Job is gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..domain.bundle import RUNNER_LOG_NAME
from ..domain.errors import ConfigError, JobNotFoundError
from ..domain.models import SubmitResult
from ..domain.naming import JOB_TYPE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RUN_ID_LABEL, is_run_id
from ..domain.records import RunDetails, SubmissionRecord
from ..ports.backend import JobInfo
from ..ports.records import RunRecords


@dataclass
class JobTarget:
    """A job the user named, with the session that reaches it."""

    session: Any  # RunSession
    job_name: str
    run_id: Optional[str] = None
    record: Optional[SubmissionRecord] = None
    labels: Dict[str, str] = field(default_factory=dict)


def locate_job(ref: str, session: Any, record: Optional[SubmissionRecord]) -> JobTarget:
    """``ref`` (a run id or job name) as a job of ``session``: this machine's record
    when there is one, else a Job carrying that run id, else a job of that name."""
    if record is not None:
        if record.result.namespace != session.namespace:
            raise ConfigError(
                f"{ref} was submitted to namespace {record.result.namespace!r}, but profile {session.profile.name!r} "
                f"targets {session.namespace!r}; pass the profile it was submitted with"
            )
        return JobTarget(session, record.result.job_name, record.result.run_id, record)
    if is_run_id(ref):
        jobs = session.list_jobs({RUN_ID_LABEL: ref})
        if not jobs:
            raise JobNotFoundError(
                f"no job with run id {ref} in namespace {session.namespace!r} and no local record of it; "
                "check the id, the profile, or use the job name"
            )
        newest = jobs[-1]
        return JobTarget(session, newest.name, ref, None, dict(newest.labels))
    return JobTarget(session, ref)


def submit_result_for(target: JobTarget) -> SubmitResult:
    """The SubmitResult of ``target``: the local record's, else rebuilt from the Job's
    labels and the profile's storage layout (a job submitted on another machine)."""
    if target.record is not None:
        return target.record.result
    labels = target.labels
    if not labels:
        infos = [j for j in target.session.list_jobs() if j.name == target.job_name]
        if not infos:
            raise JobNotFoundError(
                f"job {target.job_name!r} not found in namespace {target.session.namespace!r} "
                "and no local record of it; check the name and the profile"
            )
        labels = dict(infos[0].labels)
    run_id, job_type = labels.get(RUN_ID_LABEL), labels.get(JOB_TYPE_LABEL)
    if not run_id or job_type not in ("workspace", "sorting", "prepared"):
        raise ConfigError(f"job {target.job_name!r} carries no spikebatch run-id / job-type labels; it was not submitted by spikebatch")
    store = target.session.storage_client
    return SubmitResult(
        job_name=target.job_name,
        manifest_yaml="",
        run_id=run_id,
        uploaded_input_uri="",
        output_prefix=store.output_prefix_for_run(run_id) if job_type != "prepared" else "",
        logs_prefix=store.logs_prefix_for_run(run_id) if job_type != "prepared" else "",
        job_type=job_type,
        namespace=target.session.namespace,
        profile_name=target.session.profile.name,
    )


def spikebatch_jobs(session: Any) -> List[JobInfo]:
    """The Jobs spikebatch submitted in the session's namespace (label managed-by)."""
    return session.list_jobs({MANAGED_BY_LABEL: MANAGED_BY_VALUE})


def remember(records: RunRecords, result: SubmitResult, *, profile_file: Optional[str], kubeconfig: Optional[str],
             warn: Callable[[str], None], details: Optional[RunDetails] = None) -> Optional[SubmissionRecord]:
    """Record a submission; a record that cannot be written only warns (the job runs
    anyway, and can still be named by its job name).

    Without ``details`` the record keeps those of the run's earlier record: the session
    records what a run is when it submits it, and the CLI records the submission again
    with the profile file and kubeconfig it was given (a retried batch keeps its own)."""
    try:
        if details is None:
            earlier = _earlier_record(records, result.run_id)
            details = earlier.details if earlier is not None else None
        return records.save(result, profile_file=profile_file, kubeconfig=kubeconfig, details=details)
    except OSError as exc:
        warn(f"job {result.job_name} was submitted, but its local record could not be written ({exc}); "
             "use the job name with wait / retrieve / job-logs")
        return None


def _earlier_record(records: RunRecords, run_id: str) -> Optional[SubmissionRecord]:
    try:
        found = records.find(run_id)
    except ConfigError:  # an unreadable earlier record: this one replaces it
        return None
    return found if found is not None and found.result.run_id == run_id else None


def note_state(records: RunRecords, record: Optional[SubmissionRecord], state: str, warn: Callable[[str], None],
               reason: Optional[str] = None) -> None:
    """Remember the last state seen and why (a failed job's reason); the record only
    caches them, so a failure warns."""
    if record is None:
        return
    try:
        records.update_state(record, state, reason)
    except OSError as exc:
        warn(f"could not update the local record {record.location}: {exc}")


def saved_runner_log(target: JobTarget) -> Optional[Tuple[str, List[str]]]:
    """For a recorded job the backend no longer has: (where, lines) of the runner log
    kept in storage, or None."""
    if target.record is None or not target.record.result.logs_prefix:
        return None
    logs_prefix = target.record.result.logs_prefix
    lines = target.session.saved_runner_log(logs_prefix)
    return None if lines is None else (logs_prefix + RUNNER_LOG_NAME, lines)
