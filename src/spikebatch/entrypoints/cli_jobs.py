"""The spec's job commands: render-job, deploy-job, job-status, job-logs, job-delete,
and policy-check."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .cli_common import (
    job_spec_from_options,
    EXIT_USAGE,
    known_secrets,
    masked,
    JobRefArg,
    OutputOpt,
    ProfileFileOpt,
    ProfileOpt,
    fail,
    load_profile,
    open_session,
    profile_file_path,
    report,
    run_guarded,
    run_records,
    say,
    wants_json,
    warn,
)
from .cli_resources import CpusOpt, GpusOpt, MemoryOpt

JobConfigOpt = Annotated[Path, typer.Option("--job-config", help="Job config YAML (a JobSpec).")]
ImageProfileOpt = Annotated[Optional[str], typer.Option("--image-profile", help="Which profile image: cpu or gpu.")]
ImageOpt = Annotated[Optional[str], typer.Option("--image", help="Container image (overrides the profile's).")]
OutputManifestOpt = Annotated[Optional[Path], typer.Option("--output-manifest", help="Write the manifest to this file.")]
AllowRiskOpt = Annotated[bool, typer.Option("--allow-policy-risk", help="Submit even if the policy BLOCKs the job.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait until the job ends; exit with its result.")]
MaxWaitOpt = Annotated[float, typer.Option("--max-wait-seconds", min=0, help="Give up waiting after this long (exit 4).")]


def _check_output_folder(path: Path) -> None:
    from ..domain.errors import ConfigError

    if not path.expanduser().parent.is_dir():
        raise ConfigError(f"--output-manifest folder {str(path.expanduser().parent)!r} does not exist; create it first")


def _render(spec: Any, prof: Any, output_manifest: Optional[Path], output: Optional[str]) -> None:
    """Render without submitting: the manifest on stdout, or written to a file."""
    from ..application.preflight import render_job as render
    from ..container import write_user_file
    from .cli_output import Feedback

    # What is shown or written is masked; the real values are only ever submitted.
    rendered = render(spec, prof, known_secrets())
    Feedback().findings(rendered.policy, include_pass=True)
    path = None
    if output_manifest:
        write_user_file(output_manifest, rendered.yaml)
        path = str(output_manifest.expanduser().resolve())
    if wants_json(output):
        report({"JOB_NAME": rendered.job_name, "MANIFEST_PATH": path}, output,
               {"manifest": rendered.shown_manifest, "policy": rendered.policy.to_dict()})
    elif path:
        report({"JOB_NAME": rendered.job_name, "MANIFEST_PATH": path}, output)
    else:
        sys.stdout.write(rendered.yaml)
        sys.stdout.flush()


def render_job(
    job_config: JobConfigOpt,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    image_profile: ImageProfileOpt = None,
    image: ImageOpt = None,
    output_manifest: OutputManifestOpt = None,
    output: OutputOpt = None,
) -> None:
    """Render the Kubernetes Job manifest for a job config, without submitting it."""

    def action() -> None:
        if output_manifest:
            _check_output_folder(output_manifest)
        prof = load_profile(profile, profile_file)
        _render(job_spec_from_options(job_config, image, image_profile), prof, output_manifest, output)

    run_guarded(action)


def deploy_job(
    job_config: JobConfigOpt,
    allow_policy_risk: AllowRiskOpt = False,
    render_only: Annotated[bool, typer.Option("--render-only", help="Render the manifest; submit nothing.")] = False,
    output_manifest: OutputManifestOpt = None,
    wait: WaitOpt = False,
    max_wait_seconds: MaxWaitOpt = 3600.0,
    follow_logs: Annotated[bool, typer.Option("--follow-logs", help="Stream the job's logs to stderr until it ends (implies --wait).")] = False,
    name: Annotated[Optional[str], typer.Option("--name", help="Job name prefix (the job is NAME-xxxxxx); default: "
                                                           "the job config's name_prefix.")] = None,
    image_profile: ImageProfileOpt = None,
    image: ImageOpt = None,
    gpus: GpusOpt = None,
    cpus: CpusOpt = None,
    memory: MemoryOpt = None,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Submit a prepared job (your own command and image; no bundle) from a job config."""

    def action() -> None:
        from ..container import write_user_file
        from .cli_output import Feedback
        from .cli_runs import after_submit

        if output_manifest:
            _check_output_folder(output_manifest)
        prof = load_profile(profile, profile_file)
        from .cli_workflows import named_spec

        spec = named_spec(job_spec_from_options(job_config, image, image_profile, gpus=gpus, cpus=cpus,
                                                memory=memory, profile=prof), name)
        if render_only:
            _render(spec, prof, output_manifest, output)
            return
        feedback = Feedback()
        session = open_session(prof)
        session.on_preflight = feedback.findings  # shown before anything is submitted
        session.on_warning = warn
        result = session.submit_prepared_job(job_spec=spec, allow_policy_risk=allow_policy_risk)
        manifest_path = None
        if output_manifest:
            write_user_file(output_manifest, result.manifest_yaml)
            manifest_path = str(output_manifest.expanduser().resolve())
        after_submit(
            session,
            result,
            feedback,
            output=output,
            profile_file=profile_file_path(profile, profile_file),
            wait=wait,
            max_wait_seconds=max_wait_seconds,
            follow=follow_logs,
            pairs={"MANIFEST_PATH": manifest_path},
        )

    run_guarded(action)


def job_status(job: JobRefArg, profile: ProfileOpt = None, profile_file: ProfileFileOpt = None, output: OutputOpt = None) -> None:
    """Print a job's state (Pending, Running, Complete, Failed or Unknown) and, when there
    is one, the reason: exit code and exception line, OOMKilled, DeadlineExceeded, an
    image that cannot be pulled."""

    def action() -> None:
        from ..application.runs import note_state
        from ..domain.records import reason_of
        from .cli_runs import resolve_target

        target = resolve_target(job, profile, profile_file)
        found = target.session.job_report(target.job_name)
        state = str(found.state)
        if state in ("Complete", "Failed"):
            note_state(run_records(), target.record, state, warn, reason_of(found))
        keys = {"JOB_NAME": target.job_name, "RUN_ID": target.run_id, "JOB_STATUS": state}
        if found.reason:
            keys["REASON"] = found.reason
        if found.exit_code is not None:
            keys["EXIT_CODE"] = found.exit_code
        if found.message:
            keys["MESSAGE"] = found.message
        report(keys, output)

    run_guarded(action)


def job_logs(
    job: JobRefArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")] = False,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Print a job's log lines on stdout (every pod, oldest first). With --follow, until
    the job ends; a job deleted meanwhile ends it with one line and exit 5."""

    def action() -> None:
        from ..application.runs import saved_runner_log
        from ..domain.errors import JobDeletedError, JobNotFoundError
        from .cli_runs import resolve_target

        target = resolve_target(job, profile, profile_file)
        as_json = wants_json(output)
        lines: list[str] = []
        try:
            stream = target.session.stream_logs(target.job_name, follow=follow)
            if follow:
                say(f"following the log of job {target.job_name} until it ends (Ctrl-C stops)")
            for line in stream:
                line = masked(line)
                if as_json:
                    lines.append(line)
                else:
                    print(line, flush=follow)
        except JobDeletedError:
            raise  # said by run_guarded: the job went away while it was followed
        except JobNotFoundError:
            saved = saved_runner_log(target)
            if saved is None:
                raise
            where, lines = saved
            say(f"job {target.job_name} is gone from the backend; showing the runner log saved at {where}")
            lines = [masked(line) for line in lines]
            if not as_json:
                print("\n".join(lines))
        if as_json:
            report({"JOB_NAME": target.job_name, "RUN_ID": target.run_id}, output, {"lines": lines})

    run_guarded(action)


def job_delete(job: JobRefArg, profile: ProfileOpt = None, profile_file: ProfileFileOpt = None, output: OutputOpt = None) -> None:
    """Delete a job and its pods."""

    def action() -> None:
        from ..application.runs import note_state
        from ..domain.errors import JobNotFoundError
        from .cli_runs import resolve_target

        target = resolve_target(job, profile, profile_file)
        if not target.session.delete_job(target.job_name):
            raise JobNotFoundError(
                f"job {target.job_name!r} does not exist in namespace {target.session.namespace!r} "
                "(already deleted, or cleaned up after it finished)"
            )
        say(f"deleted job {target.job_name}")
        note_state(run_records(), target.record, "Deleted", warn)
        report({"DELETED_JOB": target.job_name, "RUN_ID": target.run_id}, output)

    run_guarded(action)


def policy_check(
    job_config: JobConfigOpt,
    image_profile: ImageProfileOpt = None,
    image: ImageOpt = None,
    profile: ProfileOpt = None,
    profile_file: ProfileFileOpt = None,
    output: OutputOpt = None,
) -> None:
    """Check a job config against the profile's policy; submit nothing (exit 2 if BLOCKed)."""

    def action() -> None:
        from ..application.preflight import check_policy
        from .cli_output import Feedback

        prof = load_profile(profile, profile_file)
        summary = check_policy(job_spec_from_options(job_config, image, image_profile), prof, include_passes=True)
        if wants_json(output):
            report({"POLICY": summary.level, "PROFILE": prof.name}, output, summary.to_dict())
        else:
            Feedback().findings(summary, include_pass=True)
            report({"POLICY": summary.level, "BLOCK": summary.counts.get("BLOCK", 0), "WARN": summary.counts.get("WARN", 0)}, output)
        if summary.blocked:
            codes = ", ".join(f.code for f in summary.findings if f.level == "BLOCK")
            raise fail(f"policy blocks this job ({codes}); fix the job config or submit with --allow-policy-risk", EXIT_USAGE)

    run_guarded(action)


def register(app: typer.Typer) -> None:
    app.command("render-job")(render_job)
    app.command("deploy-job")(deploy_job)
    app.command("job-status")(job_status)
    app.command("job-logs")(job_logs)
    app.command("job-delete")(job_delete)
    app.command("policy-check")(policy_check)
