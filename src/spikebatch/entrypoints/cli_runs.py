"""Finding a job again (by job name or run id) and what follows a submission: the
local record, the KEY=VALUE lines, waiting with a live status, following logs,
retrieving outputs, and the exit code of the job's end state."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from .cli_common import (
    EXIT_JOB_DELETED,
    EXIT_JOB_FAILED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    STATE,
    fail,
    kubeconfig_path,
    load_profile,
    masked,
    open_session,
    report,
    run_records,
    say,
    warn,
    wants_json,
)

#: Ctrl-C: the exit code of a command a shell saw interrupted by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

#: What wait_for_outcome returns -> the exit code the CLI ends with.
FINAL_EXIT = {"Complete": 0, "Failed": EXIT_JOB_FAILED, "Stuck": EXIT_JOB_FAILED, "Timeout": EXIT_TIMEOUT,
              "Backend unavailable": EXIT_UNAVAILABLE, "Deleted": EXIT_JOB_DELETED}


def resolve_target(ref: str, profile: Optional[str], profile_file: Optional[Path]) -> Any:
    """``ref`` is a run id or job name: first the local record (which also names the
    profile it was submitted with), else the backend (a run id by its label)."""
    from ..application.runs import locate_job

    record = run_records().find(ref)
    prof = load_profile(profile, profile_file, fallback=record.profile_hint if record else None)
    session = open_session(prof, kubeconfig=kubeconfig_path(record.kubeconfig if record else None))
    return locate_job(ref, session, record)


def batch_run_of(target: Any) -> Optional[str]:
    """The run id when ``target`` is a sorting batch (its batch.json is in the store)."""
    from ..application.batch_submission import is_batch

    run_id = target.run_id or (target.record.result.run_id if target.record else None)
    if not run_id and target.labels:
        run_id = target.labels.get("spikebatch.io/run-id")
    if not run_id:  # a job named without a record here: the job itself is the target
        return None
    return run_id if is_batch(target.session.storage_client, run_id) else None


def wait_for(session: Any, job_name: str, max_wait_seconds: float, feedback: Any, *, record: Any = None,
             ref: Optional[str] = None, retrieve_to: Optional[Path] = None) -> str:
    """Wait with a live status line; returns the final status (and records it).
    Ctrl-C stops the wait, not the job: exit 130 with how to wait again, to retrieve
    the outputs later (into ``retrieve_to`` when the command was to retrieve them) and
    to stop the job."""
    from ..application.runs import note_state

    def on_problem(problem: Any) -> None:
        warn(f"job {job_name}: its pod cannot start yet: {problem.reason}"
             + (f": {problem.message}" if problem.message else ""))

    try:
        with feedback.waiting(job_name) as on_state:
            final = session.wait_for_outcome(job_name, max_wait_seconds, on_state=on_state, on_problem=on_problem)
    except KeyboardInterrupt:
        raise fail(interrupted_wait_message(job_name, ref or job_name, record, retrieve_to), EXIT_INTERRUPTED) from None
    feedback.final_state(job_name, final)
    if final in ("Complete", "Failed", "Deleted"):
        note_state(run_records(), record, final, warn, failure_reason(session, job_name) if final == "Failed" else None)
    return final


def failure_reason(session: Any, job_name: str) -> Optional[str]:
    """Why the job failed, as one line for records and tables (None if the backend
    cannot say)."""
    from ..domain.errors import BackendError
    from ..domain.records import reason_of

    try:
        return reason_of(session.job_report(job_name))
    except BackendError:
        return None


def interrupted_wait_message(job_name: str, ref: str, record: Any, retrieve_to: Optional[Path]) -> str:
    """What Ctrl-C during a wait says: the job goes on, and the commands that pick it up
    again. Retrieval is named for a run that has outputs (a workspace or sorting job;
    a deploy-job manifest has none) or when the command was to retrieve them."""
    job_type = getattr(getattr(record, "result", None), "job_type", None)
    steps = [f"spikebatch wait {ref} to wait again"]
    if retrieve_to is not None:
        folder = shlex.quote(str(Path(retrieve_to).expanduser().resolve()))
        steps.append(f"spikebatch retrieve {ref} --to {folder} to download the outputs once it is done")
    elif job_type in ("workspace", "sorting"):
        steps.append(f"spikebatch retrieve {ref} --to DIR to download the outputs once it is done")
    steps.append(f"spikebatch job-delete {job_name} to stop it")
    return f"stopped waiting; job {job_name} keeps running ({', '.join(steps)})"


def why(session: Any, job_name: str) -> str:
    """The reason a job failed or is stuck, as a clause for a one-line error ("" if the
    backend cannot say)."""
    from ..domain.errors import BackendError

    try:
        problem = session.job_report(job_name)
    except BackendError:
        return ""
    if not problem.reason:
        return ""
    text = problem.reason + (f" (exit code {problem.exit_code})" if problem.exit_code is not None else "")
    return f": {text}: {problem.message}" if problem.message else f": {text}"


def conclude(final: str, job_name: str, *, max_wait_seconds: float, session: Any = None) -> None:
    """Exit with the code of the final status; a one-line error unless Complete."""
    if final == "Complete":
        return
    reason = why(session, job_name) if session is not None and final in ("Failed", "Stuck") else ""
    messages = {
        "Failed": f"job {job_name} failed{reason}; see its logs: spikebatch job-logs {job_name}",
        "Stuck": f"job {job_name} cannot start{reason}; the Job is left as it is: fix the cause and "
        f"delete it (spikebatch job-delete {job_name})",
        "Timeout": f"job {job_name} did not finish within {max_wait_seconds:g} s; it keeps running "
        f"(spikebatch wait {job_name} to wait longer)",
        "Backend unavailable": f"lost contact with the job backend while waiting for {job_name}; "
        f"it may still be running (spikebatch job-status {job_name} once the cluster is reachable)",
        "Deleted": f"job {job_name} was deleted while waiting (by someone else, job-delete or its TTL); it did "
        "not end by itself and its pods are gone: submit it again to run it",
    }
    raise fail(messages.get(final, f"job {job_name} ended as {final}"), FINAL_EXIT.get(final, EXIT_JOB_FAILED))


def follow_logs(session: Any, job_name: str, stream: Any = None) -> None:
    """Print the job's log lines as they come (until the job ends)."""
    out = stream or sys.stderr
    for line in session.stream_logs(job_name, follow=True):
        print(masked(line), file=out, flush=True)


def after_submit(
    session: Any,
    result: Any,
    feedback: Any,
    *,
    output: Optional[str],
    profile_file: Optional[str],
    wait: bool,
    max_wait_seconds: float,
    follow: bool = False,
    retrieve_to: Optional[Path] = None,
    pairs: Optional[Dict[str, Any]] = None,
    extra: Optional[Dict[str, Any]] = None,
) -> None:
    """Record the submission, print its keys, then optionally follow logs, wait and
    retrieve; exits with the code of the job's end state."""
    from ..application.runs import remember

    record = getattr(session, "last_record", None)
    if getattr(session, "run_records", None) is not None and record is None:
        pass  # the session could not write the record and said so: not twice
    elif record is None or (record.profile_file, record.kubeconfig) != (profile_file, STATE.kubeconfig):
        # Recorded again with what this command was given, to find the job later.
        record = remember(run_records(), result, profile_file=profile_file, kubeconfig=STATE.kubeconfig, warn=warn)
    keys: Dict[str, Any] = {
        "JOB_NAME": result.job_name,
        "RUN_ID": result.run_id,
        "OUTPUT_PREFIX": result.output_prefix or None,
        "LOGS_PREFIX": result.logs_prefix or None,
        **(pairs or {}),
    }
    doc_extra: Dict[str, Any] = {"namespace": result.namespace, "job_type": result.job_type, **(extra or {})}
    as_json = wants_json(output)
    if not as_json:
        report(keys, output)  # now: a script reading stdout gets the job name before the wait
    say(f"submitted {result.job_type} job {result.job_name} (run id {result.run_id}) to namespace {result.namespace}")
    final: Optional[str] = None
    if follow:
        follow_logs(session, result.job_name)
    if wait or follow or retrieve_to:
        final = wait_for(session, result.job_name, max_wait_seconds, feedback, record=record, ref=result.run_id,
                         retrieve_to=retrieve_to)
    retrieved: Dict[str, Any] = {}
    if final == "Complete" and retrieve_to is not None:
        retrieved = retrieve_into(session, result, retrieve_to, feedback)
    if as_json:
        report({**keys, "FINAL_STATUS": final, **{k.upper(): v for k, v in retrieved.items()}}, output, doc_extra)
    else:
        report({"FINAL_STATUS": final, **{k.upper(): v for k, v in retrieved.items()}}, output)
    if final is not None:
        conclude(final, result.job_name, max_wait_seconds=max_wait_seconds, session=session)


def retrieve_into(session: Any, result: Any, target: Path, feedback: Any) -> Dict[str, Any]:
    """Download a run's outputs into ``target``; returns the keys to report."""
    try:
        with feedback.session_transfer(session, "downloading outputs"):
            workspace = session.retrieve_result(result, str(target))
    except KeyboardInterrupt:
        folder = shlex.quote(str(Path(target).expanduser().resolve()))
        raise fail(f"stopped downloading; the outputs of run {result.run_id} stay stored "
                   f"(spikebatch retrieve {result.run_id} --to {folder} downloads them again)",
                   EXIT_INTERRUPTED) from None
    summary = describe_workspace(workspace)
    if summary:
        feedback.note(f"workspace in {target}: {summary}")
    return {"retrieved_to": str(Path(target).expanduser().resolve())}


def retrieve_or_say_why(target: Any, result: Any, to: Path, feedback: Any, *, ref: str) -> Dict[str, Any]:
    """``retrieve_into``; when there is nothing to retrieve, the one-line error says why
    from the job itself: it failed (and its reason: DeadlineExceeded, OOMKilled, the
    script's exception line), or it has not ended yet."""
    from ..application.runs import note_state
    from ..domain.errors import BackendError, JobFailedError, ObjectNotFoundError
    from ..domain.records import reason_of

    try:
        return retrieve_into(target.session, result, to, feedback)
    except (ObjectNotFoundError, JobFailedError) as exc:
        try:
            found = target.session.job_report(result.job_name)
        except BackendError:  # the Job is gone: what this machine last saw of it
            last = target.record.last_reason if target.record is not None else None
            if last and last not in exc.message:
                raise fail(f"{exc.message.rstrip('.')}; the job failed: {last}", exc.exit_code) from None
            raise
        state, reason = str(found.state), reason_of(found)
        if state == "Failed":
            note_state(run_records(), target.record, state, warn, reason)
            if isinstance(exc, JobFailedError) and (not reason or "left no result" not in exc.message):
                raise  # the runner's own account already names the error (the script's exception line)
            raise fail(f"job {result.job_name} failed: {reason or 'no reason given'}; nothing to retrieve "
                       f"(spikebatch job-logs {ref} shows its log)", EXIT_JOB_FAILED) from None
        if state in ("Pending", "Running", "Unknown"):
            raise fail(f"job {result.job_name} is {state} and has no outputs yet; spikebatch wait {ref}, "
                       "then retrieve", exc.exit_code) from None
        raise


def describe_workspace(workspace: Any) -> str:
    """'namespace: key, key; namespace: key' for a retrieved workspace, if it can say."""
    lister = getattr(workspace, "list_keys", None)
    if lister is None:
        return ""
    try:
        keys = lister()
    except TypeError:
        return ""
    if isinstance(keys, dict):
        return "; ".join(f"{ns}: {', '.join(map(str, names))}" for ns, names in keys.items())
    return ", ".join(map(str, keys))
