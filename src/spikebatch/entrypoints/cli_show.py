"""``spikebatch show RUN``: one run whole -- what it is (this machine's record), its
live state and why, a batch's recordings, and the outputs it left in storage."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .cli_common import (
    JobRefArg, OutputOpt, ProfileFileOpt, ProfileOpt, report, run_guarded, run_records, wants_json, warn,
)

#: Output files named in the text view (the JSON lists them all).
SHOWN_OUTPUTS = 10


def show(job: JobRefArg, profile: ProfileOpt = None, profile_file: ProfileFileOpt = None,
         output: OutputOpt = None) -> None:
    """Print one run whole: kind, preset or script, recordings, overrides, state and
    reason (live), a batch's recordings, where its outputs and logs are and what is there."""

    def action() -> None:
        from ..application.runs import note_state, submit_result_for
        from .cli_runs import batch_run_of, resolve_target

        target = resolve_target(job, profile, profile_file)
        record = target.record
        result = submit_result_for(target)
        live = _live_state(target)
        if live["state"] in ("Complete", "Failed"):
            note_state(run_records(), record, live["state"], warn, live["reason"])
        details = record.run_details if record is not None else None
        batch_run = batch_run_of(target)
        batch = _batch_summary(target.session, batch_run) if batch_run is not None else None
        outputs = _output_files(target.session, result.output_prefix)
        pairs: Dict[str, Any] = {
            "JOB_NAME": result.job_name or None,
            "RUN_ID": result.run_id,
            "KIND": details.kind if details else result.job_type,
            "PRESET": details.preset if details else None,
            "SCRIPT": details.script if details else None,
            "RECORDINGS": ",".join(details.recordings) if details and details.recordings else None,
            "OVERRIDES": details.overrides_text() if details else None,
            "STATE": live["state"],
            "REASON": live["reason"],
            "LAST_STATE_RECORDED": record.last_state if record is not None else None,
            "SUBMITTED_AT": record.submitted_at if record is not None else None,
            "PROFILE": result.profile_name,
            "NAMESPACE": result.namespace,
            "OUTPUT_PREFIX": result.output_prefix or None,
            "LOGS_PREFIX": result.logs_prefix or None,
            "OUTPUT_FILES": len(outputs) if outputs is not None else None,
        }
        if batch is not None:
            pairs["BATCH_STATE"] = batch["state"]
            pairs["BATCH_COUNTS"] = ",".join(f"{state}={n}" for state, n in sorted(batch["counts"].items()))
        if not wants_json(output):
            report(pairs, output)
            for uri in (outputs or [])[:SHOWN_OUTPUTS]:
                report({"OUTPUT": uri}, output)
            if outputs and len(outputs) > SHOWN_OUTPUTS:
                report({"OUTPUT_MORE": len(outputs) - SHOWN_OUTPUTS}, output)
            for row in (batch or {}).get("failed", []):
                report({"FAILED_RECORDING": f"{row['recording']}: {row['reason']}"}, output)
            return
        report(pairs, output, {
            "details": details.to_json() if details else None,
            "live": live,
            "batch": batch,
            "outputs": outputs,
        })

    run_guarded(action)


def _live_state(target: Any) -> Dict[str, Any]:
    """The job's state and reason as the backend says now; a Job that is gone or a
    backend out of reach is said so, and the record still shown."""
    from ..domain.errors import BackendError, JobNotFoundError
    from ..domain.records import reason_of

    if not target.job_name:  # a batch whose every recording came from the cache
        return {"state": "Complete", "reason": None, "exit_code": None, "message": None}
    try:
        found = target.session.job_report(target.job_name)
    except JobNotFoundError:
        last = target.record.last_reason if target.record is not None else None
        return {"state": "Gone", "reason": last, "exit_code": None,
                "message": "the Job is deleted or was cleaned up after it ended"}
    except BackendError as exc:
        return {"state": "Unknown", "reason": None, "exit_code": None, "message": exc.message}
    return {"state": str(found.state), "reason": reason_of(found), "exit_code": found.exit_code,
            "message": found.message or None}


def _batch_summary(session: Any, run_id: str) -> Optional[Dict[str, Any]]:
    """A batch's state, counts per state and its failed recordings with their reasons."""
    from ..domain.errors import SpikebatchError

    try:
        rows = session.batch_status(run_id)
    except SpikebatchError as exc:
        warn(f"batch {run_id}: its recordings cannot be read now ({exc.message})")
        return None
    failed: List[Dict[str, Any]] = [{"recording": r.recording, "reason": r.why()}
                                    for r in rows.rows if r.state in ("failed", "missing")]
    return {"state": rows.state, "counts": rows.counts, "failed": failed}


def _output_files(session: Any, output_prefix: str) -> Optional[List[str]]:
    """What the run left under its output prefix (None: a prepared job has none, or the
    store cannot be read now)."""
    from ..domain.errors import StorageError

    if not output_prefix:
        return None
    try:
        return list(session.storage_client.list_outputs(output_prefix))
    except StorageError as exc:
        warn(f"the outputs under {output_prefix} cannot be listed now ({exc.message})")
        return None
