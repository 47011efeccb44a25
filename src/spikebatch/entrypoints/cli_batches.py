"""Sorting many recordings from the command line: submit-sorting (one batch, one
Indexed Job), status RUN (a table, one row per recording), retry RUN, and the batch
side of retrieve / --wait."""

import glob
import os
from pathlib import Path
from typing import Annotated, Any, Dict, List, Optional

import typer

from .cli_common import (
    STATE,
    OutputOpt,
    ProfileFileOpt,
    ProfileOpt,
    job_spec_from_options,
    load_profile,
    open_session,
    parse_key_values,
    print_json,
    profile_file_path,
    report,
    run_guarded,
    run_records,
    say,
    wants_json,
    warn,
)
from .cli_batch_outcome import counts_text, conclude_batch, retrieve_batch_into, rows_as_json, wait_batch
from .cli_jobs import AllowRiskOpt, ImageOpt, ImageProfileOpt, MaxWaitOpt, WaitOpt
from .cli_resources import CpusOpt, GpusOpt, MemoryOpt
from .cli_sorters import PRESET_HELP, gpu_preset_note

RecordingOpt = Annotated[
    Optional[List[str]],
    typer.Option("--recording", help="Recording file or folder, or a quoted glob ('data/*.nwb'); repeatable."),
]
RecordingsFromOpt = Annotated[
    Optional[Path],
    typer.Option("--recordings-from", help="Text file naming one recording per line (# starts a comment; "
                                           "relative paths are relative to the file)."),
]
ParallelOpt = Annotated[
    Optional[int],
    typer.Option("--parallel", min=1, help="Recordings sorted at once; default: local profile, cores / CPU "
                                           "request; cluster, all of them up to 100."),
]
RetriesOpt = Annotated[
    int, typer.Option("--retries-per-recording", min=0, help="Retries of each recording on its own.")
]
MaxFailedOpt = Annotated[
    Optional[int],
    typer.Option("--max-failed-recordings", min=0, help="Stop the batch once more recordings than this failed."),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Sort again recordings whose result is already cached.")]
OneJobEachOpt = Annotated[
    bool, typer.Option("--one-job-per-recording", help="One Job per recording instead of one Indexed Job.")
]
JobConfigOpt = Annotated[
    Optional[Path], typer.Option("--job-config", help="Job config YAML (a JobSpec); default: the profile's defaults.")
]
MetadataOpt = Annotated[
    Optional[List[str]], typer.Option("--metadata", help="KEY=VALUE written into the bundle manifest (repeatable).")
]
RetrieveToOpt = Annotated[
    Optional[Path], typer.Option("--retrieve-to", help="Wait, then download every recording that succeeded here.")
]
RunArg = Annotated[str, typer.Argument(help="Run id of the batch (or a job name of it).")]

#: Largest --recordings-from file read (a list of paths, not data).
MAX_LIST_BYTES = 1024 * 1024
_GLOB_CHARS = set("*?[")


def expand_recordings(values: Optional[List[str]], listing: Optional[Path]) -> List[str]:
    """The recordings named by --recording (in the order given, a glob's matches
    sorted), then those of --recordings-from (in the file's order); a glob matching
    nothing is an error."""
    from ..domain.errors import ConfigError

    found: List[str] = []
    for value in values or []:
        path = os.path.expanduser(value)
        if not os.path.lexists(path) and _GLOB_CHARS & set(value):
            matches = sorted(glob.glob(path))
            if not matches:
                raise ConfigError(f"--recording {value!r} matches no file or folder; check the pattern")
            found.extend(matches)
        else:
            found.append(path)
    if listing is not None:
        found.extend(_listed(listing))
    if not found:
        raise ConfigError("no recordings given; use --recording (repeatable, globs allowed) or --recordings-from FILE")
    return found


def _listed(listing: Path) -> List[str]:
    from ..domain.errors import ConfigError

    listing = listing.expanduser()
    try:
        with open(listing, "rb") as handle:
            data = handle.read(MAX_LIST_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"--recordings-from {str(listing)!r}: {exc.strerror or exc}; give a readable text file") from None
    if len(data) > MAX_LIST_BYTES:
        raise ConfigError(f"--recordings-from {str(listing)!r} is over {MAX_LIST_BYTES // 1024} KiB; "
                          "it should list paths, one per line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"--recordings-from {str(listing)!r} is not UTF-8 text; list one path per line") from None
    paths = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entry = os.path.expanduser(entry)
            paths.append(entry if os.path.isabs(entry) else str(listing.parent / entry))
    if not paths:
        raise ConfigError(f"--recordings-from {str(listing)!r} names no recording")
    return paths


def submit_sorting(
    recordings: RecordingOpt = None,
    recordings_from: RecordingsFromOpt = None,
    preset: Annotated[Optional[str], typer.Option("--preset", help=PRESET_HELP)] = None,
    overrides: Annotated[
        Optional[List[str]],
        typer.Option("--set", help="Sorter parameter KEY=VALUE, the value read as YAML; nested ones by dotted name "
                                   "(job_kwargs.n_jobs=2). Checked against the preset's "
                                   "defaults before upload (repeatable)."),
    ] = None,
    parallel: ParallelOpt = None,
    retries_per_recording: RetriesOpt = 2,
    max_failed_recordings: MaxFailedOpt = None,
    force: ForceOpt = False,
    one_job_per_recording: OneJobEachOpt = False,
    job_config: JobConfigOpt = None,
    metadata: MetadataOpt = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Job name prefix (the job is NAME-xxxxxx); default: "
                                                           "sort-PRESET, or the job config's name_prefix.")] = None,
    wait: WaitOpt = False,
    max_wait_seconds: MaxWaitOpt = 3600.0,
    retrieve_to: RetrieveToOpt = None,
    allow_policy_risk: AllowRiskOpt = False,
    image_profile: ImageProfileOpt = None,
    image: ImageOpt = None,
    gpus: GpusOpt = None,
    cpus: CpusOpt = None,
    memory: MemoryOpt = None,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Spike-sort recordings as one batch: one Job, one index per recording, each retried on its own."""

    def action() -> None:
        from .cli_output import Feedback
        from .cli_workflows import _check_target_folder, _submit_with_feedback, named_spec

        prof = load_profile(profile, profile_file)
        spec = named_spec(job_spec_from_options(job_config, image, image_profile, gpus=gpus, cpus=cpus,
                                                memory=memory, profile=prof), name)
        paths = expand_recordings(recordings, recordings_from)
        config_overrides = parse_key_values(overrides, "--set", yaml_values=True, dotted=True)
        note = gpu_preset_note(preset, spec, prof)
        if note:
            say(f"note: {note}")
        meta = parse_key_values(metadata, "--metadata", yaml_values=False)
        _check_target_folder(retrieve_to, "--retrieve-to")
        feedback = Feedback()
        session = open_session(prof)
        batch = _submit_with_feedback(
            session, feedback, "recordings",
            lambda: session.submit_sorting_batch(
                recording_paths=paths, config=preset, config_overrides=config_overrides or None, job_spec=spec,
                parallelism=parallel, retries_per_recording=retries_per_recording,
                max_failed_recordings=max_failed_recordings, allow_policy_risk=allow_policy_risk,
                metadata=meta or None, force=force, per_recording_jobs=True if one_job_per_recording else None),
        )
        after_batch(session, batch, feedback, output=output, profile_file=profile_file_path(profile, profile_file),
                    wait=wait, max_wait_seconds=max_wait_seconds, retrieve_to=retrieve_to)

    run_guarded(action)


def staging_line(batch: Any) -> str:
    """What staging did, e.g. "0 B uploaded, 2 recordings already stored, 1 reused from the cache"."""
    from .cli_output import human_bytes

    parts = [f"{human_bytes(batch.uploaded_bytes)} uploaded"]
    if batch.stored_recordings:
        parts.append(f"{batch.stored_recordings} recording{'s' if batch.stored_recordings != 1 else ''} already stored")
    if batch.cached:
        parts.append(f"{len(batch.cached)} reused from the cache ({', '.join(batch.cached[:5])}"
                     + (", ..." if len(batch.cached) > 5 else "") + ")")
    return ", ".join(parts)


#: Recordings described one per line before "... and N more".
SHOWN_RECORDINGS = 10


def opened_lines(batch: Any) -> List[str]:
    """What the sorter read of each recording before staging, e.g. "opened: rec1
    (spikeinterface-binary, 32 channels, 600.0 s at 30000 Hz)"."""
    described = batch.description.recordings if batch.description is not None else []
    lines = []
    for rec in described[:SHOWN_RECORDINGS]:
        info = rec.description or {}
        rate = info.get("sampling_frequency")
        lines.append(f"opened: {rec.name} ({info.get('format', '?')}, {info.get('channels', '?')} channels, "
                     f"{info.get('duration_s', '?')} s at {rate:g} Hz)" if isinstance(rate, (int, float))
                     else f"opened: {rec.name} ({info.get('format', '?')})")
    if len(described) > SHOWN_RECORDINGS:
        lines.append(f"opened: ... and {len(described) - SHOWN_RECORDINGS} more recordings")
    return lines


def after_batch(session: Any, batch: Any, feedback: Any, *, output: Optional[str], profile_file: Optional[str],
                wait: bool, max_wait_seconds: float, retrieve_to: Optional[Path]) -> None:
    """Record the batch, print its keys, then optionally wait (a bar over the
    recordings) and retrieve what succeeded; exit with the batch's outcome."""
    from ..application.runs import remember

    result = batch.result
    remember(run_records(), result, profile_file=profile_file, kubeconfig=STATE.kubeconfig, warn=warn)
    keys: Dict[str, Any] = {
        "JOB_NAME": result.job_name or None, "RUN_ID": result.run_id,
        "JOB_NAMES": ",".join(batch.job_names) if len(batch.job_names) > 1 else None,
        "RECORDINGS": len(batch.recordings), "SUBMITTED": len(batch.submitted), "CACHED": len(batch.cached),
        "UPLOADED_BYTES": batch.uploaded_bytes, "OUTPUT_PREFIX": result.output_prefix,
        "LOGS_PREFIX": result.logs_prefix,
    }
    as_json = wants_json(output)
    if not as_json:
        report(keys, output)
    for line in opened_lines(batch):
        say(line)
    say(f"staged: {staging_line(batch)}")
    if batch.fallback_reason:
        say(f"note: {batch.fallback_reason}")
    if batch.job_names:
        jobs = batch.job_names[0] if len(batch.job_names) == 1 else f"{len(batch.job_names)} Jobs"
        say(f"submitted sorting batch {result.run_id}: {len(batch.submitted)} recording(s) in {jobs} "
            f"to namespace {result.namespace}")
    else:
        say(f"every recording of batch {result.run_id} was already sorted; nothing submitted")
    final: Optional[str] = None
    report_rows = None
    if wait or retrieve_to:
        final, report_rows = wait_batch(session, result.run_id, max_wait_seconds, feedback, retrieve_to=retrieve_to)
    retrieved: Dict[str, Any] = {}
    if retrieve_to is not None and final in ("Complete", "Failed"):
        retrieved = retrieve_batch_into(session, result.run_id, retrieve_to, feedback)
    if as_json:
        extra = {"recordings": batch.recordings, "submitted": batch.submitted, "cached": batch.cached,
                 "job_names": batch.job_names, "indexed": batch.indexed}
        if report_rows is not None:
            extra["status"] = rows_as_json(report_rows)
        report({**keys, "FINAL_STATUS": final, **retrieved}, output, extra)
    else:
        report({"FINAL_STATUS": final, **retrieved}, output)
    if final is not None:
        conclude_batch(final, result.run_id, report_rows, max_wait_seconds)


def _session_for_run(run: str, profile: Optional[str], profile_file: Optional[Path]) -> tuple:
    """(session, run id) for a batch named by run id or job name."""
    from .cli_runs import resolve_target

    target = resolve_target(run, profile, profile_file)
    run_id = target.run_id or (target.record.result.run_id if target.record else None) or run
    return target.session, run_id


def status(run: RunArg, profile: ProfileOpt = None, profile_file: ProfileFileOpt = None,
           output: OutputOpt = None) -> None:
    """Show a batch, one row per recording: state, attempts, reason, units found, run time."""

    def action() -> None:
        from .cli_listing import print_table

        session, run_id = _session_for_run(run, profile, profile_file)
        rows = session.batch_status(run_id)
        if wants_json(output):
            print_json({"run_id": run_id, "state": rows.state, "counts": rows.counts,
                        "job_names": rows.job_names, "recordings": rows_as_json(rows)})
            return
        print_table(["RECORDING", "INDEX", "STATE", "ATTEMPTS", "REASON", "UNITS", "SECONDS"],
                    [[r.recording, r.index, r.state, r.attempts, _short(r.why()), r.units,
                      None if r.run_seconds is None else f"{r.run_seconds:.1f}"] for r in rows.rows])
        say(f"batch {run_id}: {rows.state} ({counts_text(rows)})")

    run_guarded(action)


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def retry(
    run: RunArg,
    parallel: ParallelOpt = None,
    retries_per_recording: Annotated[
        Optional[int], typer.Option("--retries-per-recording", min=0, help="Default: as the batch was submitted.")
    ] = None,
    wait: WaitOpt = False,
    max_wait_seconds: MaxWaitOpt = 3600.0,
    retrieve_to: RetrieveToOpt = None,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Sort again the failed and missing recordings of a batch (nothing is uploaded again)."""

    def action() -> None:
        from .cli_output import Feedback
        from .cli_workflows import _check_target_folder

        _check_target_folder(retrieve_to, "--retrieve-to")
        session, run_id = _session_for_run(run, profile, profile_file)
        batch = session.retry_batch(run_id, parallelism=parallel, retries_per_recording=retries_per_recording)
        say(f"retrying {len(batch.submitted)} recording(s) of batch {run_id}: {', '.join(batch.submitted[:10])}"
            + (", ..." if len(batch.submitted) > 10 else ""))
        after_batch(session, batch, Feedback(), output=output, profile_file=profile_file_path(profile, profile_file),
                    wait=wait, max_wait_seconds=max_wait_seconds, retrieve_to=retrieve_to)

    run_guarded(action)


def register(app: typer.Typer) -> None:
    app.command("submit-sorting")(submit_sorting)
    app.command("status")(status)
    app.command("retry")(retry)
