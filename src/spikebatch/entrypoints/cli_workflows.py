"""The library's workflows on the command line: submit-workspace, retrieve and wait
(submit-sorting and the batch side of retrieve / wait: ``cli_batches``)."""

import os
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer

from .cli_common import (
    job_spec_from_options,
    JobRefArg,
    OutputOpt,
    ProfileFileOpt,
    ProfileOpt,
    load_profile,
    open_session,
    parse_key_values,
    profile_file_path,
    report,
    run_guarded,
)
from .cli_jobs import AllowRiskOpt, ImageOpt, ImageProfileOpt, MaxWaitOpt, WaitOpt
from .cli_resources import CpusOpt, GpusOpt, MemoryOpt

JobConfigOptional = Annotated[
    Optional[Path], typer.Option("--job-config", help="Job config YAML (a JobSpec); default: the profile's defaults.")
]
MetadataOpt = Annotated[
    Optional[List[str]], typer.Option("--metadata", help="KEY=VALUE written into the bundle manifest (repeatable).")
]
NameOpt = Annotated[
    Optional[str],
    typer.Option("--name", help="Job name prefix (the job is NAME-xxxxxx); default: what it runs "
                                "(the script's name, sort-PRESET), or the job config's name_prefix."),
]
RetrieveToOpt = Annotated[
    Optional[Path], typer.Option("--retrieve-to", help="Wait, then download the results into this folder.")
]


def _check_target_folder(path: Optional[Path], option: str) -> None:
    from ..domain.errors import ConfigError

    if path is None:
        return
    path = path.expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {str(path)!r} is a file; give a folder")
    if not path.exists() and not path.parent.is_dir():
        raise ConfigError(f"{option} parent folder {str(path.parent)!r} does not exist; create it first")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {str(path)!r} is not writable")


def _submit_with_feedback(session: Any, feedback: Any, what: str, submit: Callable[[], Any]) -> Any:
    """Run ``submit`` showing its policy findings first, then hashing and upload bars
    for ``what`` (inputs, recordings), then one line saying what staging did ("0 B
    uploaded, 2 inputs already stored"): the bar alone would count files the store
    already held as sent. A batch says so itself (cli_batches.after_batch)."""
    from .cli_common import warn

    session.on_preflight = feedback.findings
    session.on_warning = warn
    session.last_staging = None
    with feedback.transfer(f"uploading {what}", preparing=f"hashing {what}", summarize=False) as progress:
        session.progress, session.hash_progress = progress, progress.hashing
        try:
            submitted = submit()
        finally:
            session.progress = session.hash_progress = session.on_preflight = None
    if session.last_staging is not None:
        feedback.note(f"staged: {staging_text(session.last_staging, what)}")
    return submitted


def staging_text(summary: Any, what: str) -> str:
    """'0 B uploaded, 2 inputs already stored (1.2 GB)': the large files sent now and
    those the store already held (the small files travel in the bundle, every time)."""
    from .cli_output import human_bytes

    parts = [f"{human_bytes(summary.uploaded_bytes)} uploaded"]
    if summary.stored_files:
        noun = what if summary.stored_files != 1 else what.rstrip("s")
        parts.append(f"{summary.stored_files} {noun} already stored ({human_bytes(summary.stored_bytes)})")
    return ", ".join(parts)


def named_spec(spec: Any, name: Optional[str]) -> Any:
    """The job spec with ``--name`` as its name prefix (the job is NAME-xxxxxx)."""
    from ..domain.errors import ConfigError
    from ..domain.naming import normalize_name_prefix

    if name is None:
        return spec
    try:
        prefix = normalize_name_prefix(name)
    except ConfigError:
        raise ConfigError(f"--name {name!r} has no letters or digits; use a name such as 'mouse3-day2'") from None
    return spec.model_copy(update={"name_prefix": prefix})


def submit_workspace(
    workspace: Annotated[Path, typer.Option("--workspace", help="Directory workspace folder, or SpikeLab workspace base path.")],
    script: Annotated[Path, typer.Option("--script", help="Analysis script (.py); it sees the global `workspace`.")],
    job_config: JobConfigOptional = None,
    inputs: Annotated[Optional[List[Path]], typer.Option("--input", help="Extra file for the bundle (repeatable).")] = None,
    metadata: MetadataOpt = None,
    name: NameOpt = None,
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
    """Bundle a workspace with an analysis script and run it as a job."""

    def action() -> None:
        from ..container import workspace_at
        from .cli_output import Feedback
        from .cli_runs import after_submit

        prof = load_profile(profile, profile_file)
        spec = named_spec(job_spec_from_options(job_config, image, image_profile, gpus=gpus, cpus=cpus,
                                                memory=memory, profile=prof), name)
        meta = parse_key_values(metadata, "--metadata", yaml_values=False)
        _check_target_folder(retrieve_to, "--retrieve-to")
        ws = workspace_at(workspace)
        feedback = Feedback()
        session = open_session(prof)
        result = _submit_with_feedback(
            session, feedback, "inputs",
            lambda: session.submit_workspace_job(
                workspace=ws,
                script=str(script),
                job_spec=spec,
                allow_policy_risk=allow_policy_risk,
                bundle_input_paths=[str(p) for p in inputs or []],
                metadata=meta or None,
            ),
        )
        after_submit(
            session, result, feedback, output=output, profile_file=profile_file_path(profile, profile_file),
            wait=wait, max_wait_seconds=max_wait_seconds, retrieve_to=retrieve_to,
        )

    run_guarded(action)


def retrieve(
    job: JobRefArg,
    to: Annotated[Path, typer.Option("--to", help="Folder to download the results into.")],
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Download a finished job's results (workspace jobs: the updated workspace)."""

    def action() -> None:
        from ..application.runs import submit_result_for
        from .cli_batch_outcome import retrieve_batch_into
        from .cli_output import Feedback
        from .cli_runs import batch_run_of, resolve_target, retrieve_or_say_why

        _check_target_folder(to, "--to")
        target = resolve_target(job, profile, profile_file)
        batch_run = batch_run_of(target)
        if batch_run is not None:
            keys = retrieve_batch_into(target.session, batch_run, to, Feedback())
            report({"RUN_ID": batch_run, **keys}, output)
            return
        result = submit_result_for(target)
        keys = retrieve_or_say_why(target, result, to, Feedback(), ref=job)
        report({"JOB_NAME": result.job_name, "RUN_ID": result.run_id, "RETRIEVED_TO": keys["retrieved_to"]}, output)

    run_guarded(action)


def wait(
    job: JobRefArg,
    max_wait_seconds: MaxWaitOpt = 3600.0,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Wait until a job ends; exit 0 Complete, 1 Failed or stuck (its pod cannot start), 3 backend unreachable,
    4 timeout, 5 deleted while waiting."""

    def action() -> None:
        from .cli_batch_outcome import conclude_batch, wait_batch
        from .cli_output import Feedback
        from .cli_runs import batch_run_of, conclude, resolve_target, wait_for

        target = resolve_target(job, profile, profile_file)
        batch_run = batch_run_of(target)
        if batch_run is not None:
            final, rows = wait_batch(target.session, batch_run, max_wait_seconds, Feedback())
            report({"RUN_ID": batch_run, "FINAL_STATUS": final}, output)
            conclude_batch(final, batch_run, rows, max_wait_seconds)
            return
        final = wait_for(target.session, target.job_name, max_wait_seconds, Feedback(), record=target.record, ref=job)
        report({"JOB_NAME": target.job_name, "RUN_ID": target.run_id, "FINAL_STATUS": final}, output)
        conclude(final, target.job_name, max_wait_seconds=max_wait_seconds, session=target.session)

    run_guarded(action)


def register(app: typer.Typer) -> None:
    app.command("submit-workspace")(submit_workspace)
    app.command("retrieve")(retrieve)
    app.command("wait")(wait)
