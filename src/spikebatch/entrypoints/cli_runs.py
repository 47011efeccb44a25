"""Finding a job again (by job name or run id) and what follows a submission: the
local record, the KEY=VALUE lines, waiting with a live status, following logs,
retrieving outputs, and the exit code of the job's end state."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from ..domain.errors import ConfigError, JobNotFoundError
from .cli_common import EXIT_JOB_FAILED, EXIT_TIMEOUT, EXIT_UNAVAILABLE, fail, kubeconfig_path, load_profile, open_session, report, say, warn, wants_json

#: What wait_for_completion returns -> the exit code the CLI ends with.
FINAL_EXIT = {"Complete": 0, "Failed": EXIT_JOB_FAILED, "Timeout": EXIT_TIMEOUT, "Backend unavailable": EXIT_UNAVAILABLE}
_RUN_ID = re.compile(r"\d{8}-\d{6}-[a-z0-9]{8}")


@dataclass
class JobTarget:
    """A job the user named, with the session that reaches it."""

    session: Any
    job_name: str
    run_id: Optional[str] = None
    record: Any = None  # cli_records.Record
    labels: Dict[str, str] = field(default_factory=dict)


def resolve_target(ref: str, profile: Optional[str], profile_file: Optional[Path]) -> JobTarget:
    """``ref`` is a run id or job name: first the local record (which also names the
    profile it was submitted with), else the backend (a run id by its label)."""
    from ..domain.naming import RUN_ID_LABEL
    from .cli_records import find_record

    record = find_record(ref)
    prof = load_profile(profile, profile_file, fallback=record.profile_hint if record else None)
    session = open_session(prof, kubeconfig=kubeconfig_path(record.kubeconfig if record else None))
    if record is not None:
        recorded_ns = record.result.namespace
        if recorded_ns != session.backend.namespace:
            raise ConfigError(
                f"{ref} was submitted to namespace {recorded_ns!r}, but profile {prof.name!r} targets "
                f"{session.backend.namespace!r}; pass the profile it was submitted with"
            )
        return JobTarget(session, record.result.job_name, record.result.run_id, record)
    if _RUN_ID.fullmatch(ref):
        jobs = session.backend.list_jobs({RUN_ID_LABEL: ref})
        if not jobs:
            raise JobNotFoundError(
                f"no job with run id {ref} in namespace {session.backend.namespace!r} and no local record of it; "
                "check the id, the profile, or use the job name"
            )
        newest = jobs[-1]
        return JobTarget(session, newest.name, ref, None, dict(newest.labels))
    return JobTarget(session, ref)


def submit_result_for(target: JobTarget) -> Any:
    """The SubmitResult of ``target``: the local record's, else rebuilt from the Job's
    labels and the profile's storage layout (a job submitted on another machine)."""
    from ..domain.models import SubmitResult
    from ..domain.naming import JOB_TYPE_LABEL, RUN_ID_LABEL

    if target.record is not None:
        return target.record.result
    labels = target.labels
    if not labels:
        infos = [j for j in target.session.backend.list_jobs(None) if j.name == target.job_name]
        if not infos:
            raise JobNotFoundError(
                f"job {target.job_name!r} not found in namespace {target.session.backend.namespace!r} "
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
        namespace=target.session.backend.namespace,
        profile_name=target.session.profile.name,
    )


def remember(result: Any, *, profile_file: Optional[str]) -> Any:
    """Write the local record; a failure to write it only warns (the job runs anyway)."""
    from .cli_common import STATE
    from .cli_records import find_record, write_record

    try:
        write_record(result, profile_file=profile_file, kubeconfig=STATE.kubeconfig)
        return find_record(result.run_id)
    except OSError as exc:
        warn(f"job {result.job_name} was submitted, but its local record could not be written ({exc}); "
             "use the job name with wait / retrieve / job-logs")
        return None


def wait_for(session: Any, job_name: str, max_wait_seconds: float, feedback: Any, *, record: Any = None,
             ref: Optional[str] = None) -> str:
    """Wait with a live status line; returns the final status (and records it)."""
    from .cli_records import update_state

    try:
        with feedback.waiting(job_name) as on_state:
            final = session.wait_for_completion(job_name, max_wait_seconds, on_state=on_state)
    except KeyboardInterrupt:
        again = ref or job_name
        raise fail(
            f"stopped waiting; job {job_name} keeps running (spikebatch wait {again} to wait again, "
            f"spikebatch job-delete {job_name} to stop it)",
            130,
        ) from None
    feedback.final_state(job_name, final)
    if record is not None and final in ("Complete", "Failed"):
        try:
            update_state(record, final)
        except OSError as exc:
            warn(f"could not update the local record {record.path}: {exc}")
    return final


def conclude(final: str, job_name: str, *, max_wait_seconds: float) -> None:
    """Exit with the code of the final status; a one-line error unless Complete."""
    if final == "Complete":
        return
    messages = {
        "Failed": f"job {job_name} failed; see its logs: spikebatch job-logs {job_name}",
        "Timeout": f"job {job_name} did not finish within {max_wait_seconds:g} s; it keeps running "
        f"(spikebatch wait {job_name} to wait longer)",
        "Backend unavailable": f"lost contact with the job backend while waiting for {job_name}; "
        f"it may still be running (spikebatch job-status {job_name} once the cluster is reachable)",
    }
    raise fail(messages.get(final, f"job {job_name} ended as {final}"), FINAL_EXIT.get(final, EXIT_JOB_FAILED))


def follow_logs(session: Any, job_name: str, stream: Any = None) -> None:
    """Print the job's log lines as they come (until the job ends)."""
    out = stream or sys.stderr
    for line in session.stream_logs(job_name, follow=True):
        print(line, file=out, flush=True)


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
    record = remember(result, profile_file=profile_file)
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
        final = wait_for(session, result.job_name, max_wait_seconds, feedback, record=record, ref=result.run_id)
    retrieved: Dict[str, Any] = {}
    if final == "Complete" and retrieve_to is not None:
        retrieved = retrieve_into(session, result, retrieve_to, feedback)
    if as_json:
        report({**keys, "FINAL_STATUS": final, **{k.upper(): v for k, v in retrieved.items()}}, output, doc_extra)
    else:
        report({"FINAL_STATUS": final, **{k.upper(): v for k, v in retrieved.items()}}, output)
    if final is not None:
        conclude(final, result.job_name, max_wait_seconds=max_wait_seconds)


def retrieve_into(session: Any, result: Any, target: Path, feedback: Any) -> Dict[str, Any]:
    """Download a run's outputs into ``target``; returns the keys to report."""
    with feedback.transfer("downloading outputs") as progress:
        session.progress = progress
        try:
            workspace = session.retrieve_result(result, str(target))
        finally:
            session.progress = None
    summary = describe_workspace(workspace)
    if summary:
        feedback.note(f"workspace in {target}: {summary}")
    return {"retrieved_to": str(Path(target).expanduser().resolve())}


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
