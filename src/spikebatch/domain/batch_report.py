"""Where each recording of a batch stands, from the batch's Jobs, their pods and the
results the runner wrote (pure: dicts in, report out).

Three sources, each trusted for what it knows best:

- a recording's own ``result.json`` saying it succeeded is final (the Job may since
  have been deleted, or a later retry Job may still run other recordings);
- otherwise the newest Job covering the recording decides, from its
  ``status.completedIndexes`` / ``failedIndexes`` (an ordinary fallback Job: from its
  own state), and that index's pods say why it failed and how many attempts it took;
- a recording no Job covers any more, with no result, is ``missing`` (its Job was
  deleted before it ended), and one served from the cache is ``cached``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .batch import COMPLETION_INDEX_LABEL, BatchDescription, job_recording_indexes, parse_index_ranges
from .job_report import JobReport, last_line, report_job
from .job_state import FAILED_CONDITIONS, JobState, job_state_of

SUCCEEDED, FAILED, RUNNING, PENDING, CACHED, MISSING = (
    "succeeded", "failed", "running", "pending", "cached", "missing")
#: States after which a recording's outcome will not change by itself.
FINAL_STATES = frozenset({SUCCEEDED, FAILED, CACHED, MISSING})
#: Recordings ``retry`` sorts again.
RETRY_STATES = frozenset({FAILED, MISSING})
#: Job-level reasons that explain a recording better than its pods.
_JOB_REASONS = ("DeadlineExceeded", "MaxFailedIndexesExceeded", "PodFailurePolicy", "SupervisorLost")


@dataclass(frozen=True)
class RecordingStatus:
    """One row of a batch's status table."""

    recording: str
    index: int
    state: str
    attempts: int = 0
    #: "Error" (with exit_code), "OOMKilled", "Evicted", "DeadlineExceeded", ... or "".
    reason: str = ""
    exit_code: Optional[int] = None
    message: str = ""
    units: Optional[int] = None
    run_seconds: Optional[float] = None
    job_name: str = ""
    #: Where the recording's result lies (its own prefix, or the cached run's).
    output_prefix: str = ""

    def why(self) -> str:
        """The reason as one phrase: "Error (exit code 1): ValueError: bad data"."""
        text = self.reason
        if self.exit_code is not None:
            text += f" (exit code {self.exit_code})"
        if self.message:
            text += f": {self.message}" if text else self.message
        return text


@dataclass(frozen=True)
class BatchReport:
    run_id: str
    rows: List[RecordingStatus]
    job_names: List[str] = field(default_factory=list)

    def count(self, *states: str) -> int:
        return sum(1 for r in self.rows if r.state in states)

    @property
    def counts(self) -> Dict[str, int]:
        found: Dict[str, int] = {}
        for row in self.rows:
            found[row.state] = found.get(row.state, 0) + 1
        return found

    @property
    def finished(self) -> bool:
        return all(r.state in FINAL_STATES for r in self.rows)

    @property
    def state(self) -> str:
        """"Complete" (every recording has a result), "Failed" (all ended, some without
        a result), "Running" or "Pending"."""
        if self.finished:
            return "Complete" if all(r.state in (SUCCEEDED, CACHED) for r in self.rows) else "Failed"
        return "Running" if self.count(RUNNING, SUCCEEDED, FAILED) else "Pending"

    def to_retry(self) -> List[RecordingStatus]:
        return [r for r in self.rows if r.state in RETRY_STATES]


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _created(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("creationTimestamp") or "")


def _owner_uid(pod: Mapping[str, Any]) -> str:
    for ref in _meta(pod).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("kind") == "Job":
            return str(ref.get("uid") or "")
    return ""


def _pods_of(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> List[Mapping[str, Any]]:
    uid, name = str(_meta(job).get("uid") or ""), str(_meta(job).get("name") or "")
    mine = []
    for pod in pods:
        labels = _meta(pod).get("labels") or {}
        owner = _owner_uid(pod)
        if (owner and owner == uid) or (not owner and labels.get("job-name") == name):
            mine.append(pod)
    return mine


def _completion_index(pod: Mapping[str, Any]) -> int:
    meta = _meta(pod)
    for source in (meta.get("labels") or {}, meta.get("annotations") or {}):
        try:
            return int(source[COMPLETION_INDEX_LABEL])
        except (KeyError, TypeError, ValueError):
            continue
    return 0  # a fallback Job's pods: their Job covers one recording, at index 0


def _terminated(pod: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    for container in (pod.get("status") or {}).get("containerStatuses") or ():
        term = ((container or {}).get("state") or {}).get("terminated")
        if isinstance(term, Mapping):
            return term
    return None


def _parse_time(text: Any) -> Optional[datetime]:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _seconds(pod: Mapping[str, Any]) -> Optional[float]:
    term = _terminated(pod) or {}
    start = _parse_time(term.get("startedAt") or (pod.get("status") or {}).get("startTime"))
    end = _parse_time(term.get("finishedAt"))
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _pod_failure(pod: Mapping[str, Any]) -> tuple[str, Optional[int], str]:
    """(reason, exit code, message) of a failed pod."""
    status = pod.get("status") or {}
    if status.get("reason"):  # Evicted, DeadlineExceeded, Preempting: the kubelet's word
        return str(status["reason"]), None, " ".join(str(status.get("message") or "").split())[:300]
    term = _terminated(pod)
    if term is None:
        return "Error", None, ""
    try:
        code: Optional[int] = int(term.get("exitCode"))
    except (TypeError, ValueError):
        code = None
    return str(term.get("reason") or "Error"), code, last_line(term.get("message"))


def _failed_reason(job: Mapping[str, Any]) -> tuple[str, str]:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if (isinstance(cond, Mapping) and cond.get("type") in FAILED_CONDITIONS
                and str(cond.get("status", "")).lower() == "true"):
            return str(cond.get("reason") or ""), " ".join(str(cond.get("message") or "").split())
    return "", ""


def _index_sets(job: Mapping[str, Any]) -> tuple[set, set]:
    status = job.get("status") or {}
    spec = job.get("spec") or {}
    if spec.get("completionMode") == "Indexed":
        try:
            return (set(parse_index_ranges(status.get("completedIndexes"))),
                    set(parse_index_ranges(status.get("failedIndexes"))))
        except ValueError:
            return set(), set()
    state = job_state_of(job)
    return ({0} if state is JobState.COMPLETE else set()), ({0} if state is JobState.FAILED else set())


def _row_from_job(name: str, index: int, job: Mapping[str, Any], completion: int,
                  pods: List[Mapping[str, Any]], attempts_before: int) -> RecordingStatus:
    job_name = str(_meta(job).get("name") or "")
    done, failed = _index_sets(job)
    mine = sorted((p for p in pods if _completion_index(p) == completion), key=_created)
    attempts = attempts_before + len(mine)
    last = mine[-1] if mine else None
    if completion in done:
        return RecordingStatus(name, index, SUCCEEDED, attempts, run_seconds=_seconds(last) if last else None,
                               job_name=job_name)
    job_ended = job_state_of(job).is_terminal
    if completion in failed or job_ended:
        job_reason, job_message = _failed_reason(job)
        failed_pods = [p for p in mine if (p.get("status") or {}).get("phase") == "Failed"]
        if job_reason in _JOB_REASONS and (completion not in failed or not failed_pods):
            # Never ran, or stopped by the Job's end rather than its own failure.
            return RecordingStatus(name, index, FAILED, attempts, job_reason, None, job_message, job_name=job_name)
        if failed_pods:
            reason, code, message = _pod_failure(failed_pods[-1])
            return RecordingStatus(name, index, FAILED, attempts, reason, code, message,
                                   run_seconds=_seconds(failed_pods[-1]), job_name=job_name)
        return RecordingStatus(name, index, FAILED, attempts, job_reason or "Failed", None, job_message,
                               job_name=job_name)
    phase = (last.get("status") or {}).get("phase") if last else None
    state = RUNNING if phase == "Running" else PENDING
    reason = ""
    if last is not None and phase == "Failed":
        # A failed attempt with retries left: running again soon.
        reason, code, message = _pod_failure(last)
        return RecordingStatus(name, index, PENDING, attempts, reason, code, message, job_name=job_name)
    return RecordingStatus(name, index, state, attempts, reason, job_name=job_name)


def report_batch(
    description: BatchDescription,
    jobs: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    output_prefixes: Mapping[str, str],
) -> BatchReport:
    """One row per recording. ``jobs``/``pods``: every Job and pod of the run (any
    order); ``results``: recording name -> its result.json, for those that have one;
    ``output_prefixes``: recording name -> where its outputs go."""
    ordered = sorted(jobs, key=_created)
    # recording index -> [(job, completion index)] oldest job first
    covering: Dict[int, List[tuple]] = {}
    for job in ordered:
        for completion, rec_index in enumerate(job_recording_indexes(job)):
            covering.setdefault(rec_index, []).append((job, completion))
    pods_by_job = {id(job): _pods_of(job, pods) for job in ordered}
    rows: List[RecordingStatus] = []
    for rec in description.recordings:
        result = results.get(rec.name) or {}
        prefix = output_prefixes.get(rec.name, "")
        units = result.get("units") if isinstance(result.get("units"), int) else None
        seconds = result.get("seconds") if isinstance(result.get("seconds"), (int, float)) else None
        attempts = 0
        latest: Optional[RecordingStatus] = None
        for job, completion in covering.get(rec.index, []):
            latest = _row_from_job(rec.name, rec.index, job, completion, pods_by_job[id(job)], attempts)
            attempts = latest.attempts
        if rec.cached_from is not None and not covering.get(rec.index):
            rows.append(RecordingStatus(rec.name, rec.index, CACHED, 0, units=units, run_seconds=seconds,
                                        output_prefix=rec.cached_from))
        elif result.get("status") == "succeeded":
            rows.append(RecordingStatus(rec.name, rec.index, SUCCEEDED, attempts, units=units,
                                        run_seconds=seconds if seconds is not None else (latest.run_seconds if latest else None),
                                        job_name=latest.job_name if latest else "", output_prefix=prefix))
        elif latest is not None:
            if latest.state == SUCCEEDED and not result:
                rows.append(latest)  # the Job says done; its result may still be uploading
            elif latest.state == FAILED and result.get("reason") and not latest.message:
                rows.append(RecordingStatus(rec.name, rec.index, FAILED, latest.attempts, latest.reason,
                                            latest.exit_code, str(result["reason"])[:300],
                                            latest.run_seconds, latest.job_name))
            else:
                rows.append(latest)
        else:
            rows.append(RecordingStatus(rec.name, rec.index, MISSING, 0, "NoJob", None,
                                        "no Job of this run covers it any more (deleted before it ended)"))
    return BatchReport(description.run_id, rows, [str(_meta(j).get("name") or "") for j in ordered])


def batch_stuck(jobs: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]]) -> Optional[JobReport]:
    """Why a batch cannot start, or None: an unfinished Job none of whose pods runs or
    ran, whose newest pod waits for something that will not happen by itself (an image
    that cannot be pulled, a secret that does not exist). A batch with some pods
    running is not stuck, even if one pod somewhere waits for its image."""
    for job in sorted(jobs, key=_created):
        if job_state_of(job).is_terminal:
            continue
        mine = _pods_of(job, pods)
        if any((p.get("status") or {}).get("phase") in ("Running", "Succeeded") for p in mine):
            continue
        report = report_job(job, mine)
        if report.stuck:
            return report
    return None
