"""A submitted batch: where each recording stands, waiting for the batch with a count
of done / running / failed, and bringing home every recording that succeeded.

The cost of looking does not grow with the batch: a status is one list of the run's
Jobs and one of its pods (``JobBackend.run_objects``) plus one listing of its outputs;
a wait is one watch over the batch's Jobs, whose events carry their index counts.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional

from ..domain.batch import BatchDescription, job_recording_indexes, parse_index_ranges, recording_output_prefix
from ..domain.batch_report import CACHED, FAILED, RUNNING, SUCCEEDED, BatchReport, batch_stuck, report_batch
from ..domain.job_report import JobReport
from ..domain.bundle import RESULT_NAME, WORKSPACE_DIR
from ..domain.errors import BackendUnavailableError, ConfigError, StorageError
from ..domain.job_state import JobState, job_state_of
from ..domain.naming import RUN_ID_LABEL
from ..ports.storage import ProgressCallback
from .batch_submission import read_description


def _results(store: Any, description: BatchDescription) -> tuple[Dict[str, dict], Dict[str, str]]:
    """Each recording's result.json (those that have one) and its output prefix: one
    listing of the run's outputs, then a read per result found."""
    prefixes = {r.name: r.cached_from or recording_output_prefix(description.output_prefix, r.name)
                for r in description.recordings}
    try:
        present = set(store.list_outputs(description.output_prefix))
    except StorageError:
        present = set()
    results: Dict[str, dict] = {}
    for rec in description.recordings:
        uri = prefixes[rec.name] + RESULT_NAME
        if rec.cached_from is None and uri not in present:
            continue
        try:
            data = json.loads(store.read_bytes(uri))
        except (StorageError, ValueError):
            continue
        if isinstance(data, dict):
            results[rec.name] = data
    return results, prefixes


def batch_report(session: Any, run_id: str, description: Optional[BatchDescription] = None,
                 with_jobs: bool = False) -> Any:
    """The batch's BatchReport (and, with ``with_jobs``, its Job objects oldest first)."""
    description = description or read_description(session.storage_client, run_id)
    jobs, pods = session.backend.run_objects(run_id)
    results, prefixes = _results(session.storage_client, description)
    report = report_batch(description, jobs, pods, results, prefixes)
    if with_jobs:
        ordered = sorted(jobs, key=lambda j: str((j.get("metadata") or {}).get("creationTimestamp") or ""))
        return report, ordered
    return report


@dataclass(frozen=True)
class BatchProgress:
    """What a live view of a batch shows."""

    total: int
    done: int
    running: int
    failed: int

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.done - self.running - self.failed)


def _job_counts(state: JobState, progress: Any, indexed: bool, covered: int) -> tuple[int, int, int]:
    """(done, running, failed) recordings of one Job from its latest event."""
    if progress is None:
        return 0, 0, 0
    if indexed:
        try:
            done = len(parse_index_ranges(progress.completed_indexes))
            failed = len(parse_index_ranges(progress.failed_indexes))
        except ValueError:
            done = failed = 0
        if state is JobState.FAILED:
            failed = covered - done  # the rest will not run (maxFailedIndexes, deadline)
        return done, progress.active, failed
    if state is JobState.COMPLETE:
        return 1, 0, 0
    if state is JobState.FAILED:
        return 0, 0, 1
    return 0, min(1, progress.active), 0


#: Seconds between two looks at the pods of a batch that is not done yet (for a pod
#: that cannot start): two requests each, whatever the batch's size.
PROBLEM_CHECK_SECONDS = 30.0


def wait_for_batch(session: Any, run_id: str, max_wait_seconds: float = 3600,
                   on_progress: Optional[Callable[[BatchProgress], None]] = None,
                   on_problem: Optional[Callable[[JobReport], None]] = None,
                   problem_check_seconds: float = PROBLEM_CHECK_SECONDS,
                   retry_max_seconds: float = 30.0) -> tuple[str, BatchReport]:
    """Watch the batch's unfinished Jobs until each has ended; returns (final state,
    report). The state is "Complete" (every recording has a result), "Failed" (some
    recording has none), "Timeout", "Stuck" (no pod of a Job can start: an image that
    cannot be pulled, a missing secret; ``on_problem`` hears why), "Deleted" (a Job went
    away before it ended) or "Backend unavailable".

    The watch runs in windows of ``problem_check_seconds``; between two, the run's pods
    are read once (two requests) to notice a batch that cannot start. A backend that is
    briefly unreachable is retried with back-off until the wait's end."""
    description = read_description(session.storage_client, run_id)
    report, jobs = batch_report(session, run_id, description, with_jobs=True)
    total = len(description.recordings)
    live = [j for j in jobs if not job_state_of(j).is_terminal]
    covered = {str(j["metadata"]["name"]): job_recording_indexes(j) for j in live}
    watched = {i for idx in covered.values() for i in idx}
    settled = [r for r in report.rows if r.index not in watched]
    base_done = sum(1 for r in settled if r.state in (SUCCEEDED, CACHED))
    base_failed = sum(1 for r in settled if r.state == FAILED)
    latest: Dict[str, tuple] = {}

    def emit() -> None:
        if on_progress is None:
            return
        done, running, failed = base_done, 0, base_failed
        for name, (state, progress) in latest.items():
            d, r, f = _job_counts(state, progress, description.indexed, len(covered[name]))
            done, running, failed = done + d, running + r, failed + f
        on_progress(BatchProgress(total, done, running, failed))

    emit()
    outcome = _watch_until_ended(session, run_id, set(covered), latest, emit, on_problem, max_wait_seconds,
                                 problem_check_seconds, retry_max_seconds)
    if outcome == "Backend unavailable":
        return outcome, report
    final = batch_report(session, run_id, description)
    return outcome or final.state, final


def _watch_until_ended(session: Any, run_id: str, pending: set, latest: Dict[str, tuple], emit: Callable[[], None],
                       on_problem: Optional[Callable[[JobReport], None]], max_wait_seconds: float,
                       check_seconds: float, retry_max_seconds: float) -> str:
    """"" when every Job in ``pending`` ended, else why the wait stopped."""
    deadline = time.monotonic() + max_wait_seconds
    delay, unreachable, told = 1.0, False, None
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "Backend unavailable" if unreachable else "Timeout"
        try:
            for event in session.backend.watch(job_names=sorted(pending), label_selector={RUN_ID_LABEL: run_id},
                                               timeout_seconds=min(remaining, check_seconds), progress=True):
                unreachable, delay = False, 1.0
                if event.kind == "DELETED":
                    return "Deleted"
                latest[event.job_name] = (event.state, event.progress)
                emit()
                if event.state.is_terminal:
                    pending.discard(event.job_name)
            if not pending:
                return ""
            jobs, pods = session.backend.run_objects(run_id)
            problem = batch_stuck([j for j in jobs if str(j["metadata"]["name"]) in pending], pods)
            if problem is not None:
                if on_problem is not None and (problem.reason, problem.message) != told:
                    on_problem(problem)
                told = (problem.reason, problem.message)
                return "Stuck"
        except BackendUnavailableError:
            unreachable = True
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, retry_max_seconds)
    return ""


@dataclass
class BatchResult:
    """What retrieving a batch brings home: one workspace with a namespace per
    recording that succeeded, and the recordings that did not, with why."""

    run_id: str
    workspace: Any
    succeeded: List[str]
    cached: List[str]
    #: Recording name -> its failure, e.g. "Error (exit code 1): ValueError: ...".
    failed: Dict[str, str] = field(default_factory=dict)
    #: Recordings still running or pending (retrieve again when they are done).
    unfinished: List[str] = field(default_factory=list)
    local_dir: Optional[Path] = None
    report: Optional[BatchReport] = None


def retrieve_batch(session: Any, run_id: str, local_dir: str,
                   codec_named: Callable[[str], Any], progress: Optional[ProgressCallback] = None) -> BatchResult:
    """Download every recording that has a result (sorted now or reused from the
    cache) into ``local_dir/recordings/<name>/`` and gather them in one workspace at
    ``local_dir/workspace``; failed recordings are listed with their reasons, never
    holding back the others."""
    description = read_description(session.storage_client, run_id)
    report = batch_report(session, run_id, description)
    target = Path(local_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    good = [r for r in report.rows if r.state in (SUCCEEDED, CACHED) and r.output_prefix]
    merged_codec = None
    merged = None
    merged_dir = target / WORKSPACE_DIR
    for row in good:
        folder = target / "recordings" / row.recording
        session.storage_client.download_outputs(output_prefix=row.output_prefix, local_dir=folder, progress=progress)
        result = _read_json(folder / RESULT_NAME)
        codec = codec_named(str(result.get("format") or "directory"))
        if merged is None:
            merged_codec, merged_dir = codec, merged_dir
            merged_dir.mkdir(exist_ok=True)
            merged = codec.open(merged_dir)
        _copy_items(codec.load_result(folder / WORKSPACE_DIR), merged)
    workspace = None
    if merged is not None and merged_codec is not None:
        merged_codec.commit(merged, merged_dir)
        workspace = merged_codec.load_result(merged_dir)
    if not good and not report.finished:
        raise ConfigError(f"no recording of batch {run_id} has finished yet; wait for it first "
                          f"(spikebatch status {run_id})")
    failed = {r.recording: r.why() or r.state for r in report.rows if r.state not in (SUCCEEDED, CACHED, RUNNING)
              and r.state != "pending"}
    return BatchResult(run_id=run_id, workspace=workspace,
                       succeeded=[r.recording for r in good if r.state == SUCCEEDED],
                       cached=[r.recording for r in good if r.state == CACHED], failed=failed,
                       unfinished=[r.recording for r in report.rows if r.state in (RUNNING, "pending")],
                       local_dir=target, report=report)


def _read_json(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _copy_items(source: Any, merged: Any) -> None:
    keys = source.list_keys()
    for namespace, names in (keys.items() if isinstance(keys, dict) else ()):
        for key in names:
            merged.store(namespace, key, source.get(namespace, key))
