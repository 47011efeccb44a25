"""How a waited-for batch ends on the command line: the live wait, the per-recording
failures said on stderr, the exit code and its one-line error, and bringing home what
succeeded."""

from pathlib import Path
from typing import Any, Dict, List, Optional

from .cli_common import EXIT_JOB_DELETED, EXIT_JOB_FAILED, EXIT_TIMEOUT, EXIT_UNAVAILABLE, fail, say, warn


def wait_batch(session: Any, run_id: str, max_wait_seconds: float, feedback: Any, *,
               retrieve_to: Optional[Path] = None) -> tuple:
    """Wait with a bar over the recordings. Ctrl-C stops the wait, not the batch: exit
    130 with how to see it and retrieve it later (into ``retrieve_to`` when given)."""
    import shlex

    from .cli_batch_view import batch_progress

    def on_problem(problem: Any) -> None:
        warn(f"batch {run_id}: its pods cannot start: {problem.reason}"
             + (f": {problem.message}" if problem.message else ""))

    try:
        with batch_progress(feedback, run_id) as on_progress:
            final, report_rows = session.wait_for_batch(run_id, max_wait_seconds, on_progress=on_progress,
                                                        on_problem=on_problem)
    except KeyboardInterrupt:
        folder = shlex.quote(str(retrieve_to.expanduser().resolve())) if retrieve_to is not None else "DIR"
        raise fail(f"stopped waiting; batch {run_id} keeps running (spikebatch status {run_id} to see it, "
                   f"spikebatch wait {run_id} to wait again, spikebatch retrieve {run_id} --to {folder} to "
                   "download what succeeded once it is done)", 130) from None
    failed = [r for r in report_rows.rows if r.state in ("failed", "missing")]
    for row in failed[:10]:
        say(f"recording {row.recording} failed: {row.why()}")
    if len(failed) > 10:
        say(f"... and {len(failed) - 10} more failed recordings (spikebatch status {run_id})")
    say(f"batch {run_id}: {final} ({counts_text(report_rows)})")
    return final, report_rows


def counts_text(report_rows: Any) -> str:
    counts = report_rows.counts
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def conclude_batch(final: str, run_id: str, report_rows: Any, max_wait_seconds: float) -> None:
    if final == "Complete":
        return
    if final == "Failed":
        failed = report_rows.to_retry() if report_rows is not None else []
        first = f" ({failed[0].recording}: {failed[0].why()})" if failed else ""
        raise fail(f"batch {run_id}: {len(failed)} of {len(report_rows.rows)} recordings failed{first}; "
                   f"spikebatch status {run_id} shows each, spikebatch retry {run_id} sorts them again",
                   EXIT_JOB_FAILED)
    messages = {
        "Stuck": (f"batch {run_id} cannot start (its pods wait for something that will not happen by itself, "
                  f"see the warning above); its Jobs are left as they are: fix the cause and delete them "
                  f"(spikebatch job-delete JOB), or spikebatch status {run_id}", EXIT_JOB_FAILED),
        "Timeout": (f"batch {run_id} did not finish within {max_wait_seconds:g} s; it keeps running "
                    f"(spikebatch status {run_id})", EXIT_TIMEOUT),
        "Deleted": (f"a Job of batch {run_id} was deleted before it ended; spikebatch retry {run_id} sorts "
                    "the recordings it left", EXIT_JOB_DELETED),
        "Backend unavailable": (f"lost contact with the job backend while waiting for batch {run_id}; it may "
                                f"still be running (spikebatch status {run_id})", EXIT_UNAVAILABLE),
    }
    message, code = messages.get(final, (f"batch {run_id} ended as {final}", EXIT_JOB_FAILED))
    raise fail(message, code)


def retrieve_batch_into(session: Any, run_id: str, target: Path, feedback: Any) -> Dict[str, Any]:
    """Download what succeeded; the keys to report."""
    from .cli_runs import describe_workspace

    with feedback.session_transfer(session, "downloading results"):
        got = session.retrieve_batch(run_id, str(target))
    summary = describe_workspace(got.workspace) if got.workspace is not None else ""
    if summary:
        feedback.note(f"workspace in {target}: {summary}")
    for name, why in got.failed.items():
        feedback.note(f"not retrieved: {name} failed: {why}")
    if got.unfinished:
        feedback.note(f"not retrieved yet: {len(got.unfinished)} recording(s) still running")
    return {"RETRIEVED_TO": str(Path(target).expanduser().resolve()),
            "SUCCEEDED": ",".join(got.succeeded + got.cached) or None,
            "FAILED": ",".join(got.failed) or None}


def rows_as_json(report_rows: Any) -> List[Dict[str, Any]]:
    return [{"recording": r.recording, "index": r.index, "state": r.state, "attempts": r.attempts,
             "reason": r.reason or None, "exit_code": r.exit_code, "message": r.message or None,
             "units": r.units, "run_seconds": r.run_seconds, "job_name": r.job_name or None}
            for r in report_rows.rows]
