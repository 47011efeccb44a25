"""``spikebatch-batch-jobs``: the command line of spikelab.batch_jobs (SpikeLab 0.1.2)
on spikebatch's library, public as ``spikebatch.cli`` (``python -m spikebatch.cli``).

Same commands, flags, defaults and ``KEY=VALUE`` lines as the reference's
``spikelab-batch-jobs``, so scripts written for it keep working once the program name
is changed. Where the reference is unsafe, this keeps spikebatch's behaviour:

- an unknown profile name is an error (never a silent fallback);
- a waited-for job that does not end Complete exits non-zero (1 failed or stuck,
  3 backend unavailable, 4 timeout, 5 deleted while waited on);
- every error is one ``error:`` line on stderr with spikebatch's exit codes
  (2 usage / config / policy, 3 backend or storage unavailable), no traceback;
- secret values are masked in what is printed or written (a rendered manifest).

stdout carries only the reference's data (manifests, ``KEY=VALUE`` lines, log lines);
notes for a person go to stderr. Only the standard library is imported at load time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, List, NoReturn, Optional, Sequence

PROG = "spikebatch-batch-jobs"
#: The profile used when neither --profile nor --profile-file is given (the reference's).
DEFAULT_PROFILE = "defaults"
#: Which of the profile's default_images a job without an image runs.
DEFAULT_IMAGE_PROFILE = "cpu"
#: The job name and run id render-job uses (``<name_prefix>-dry-run``), as the reference.
DRY_RUN = "dry-run"


class CompatArgumentParser(argparse.ArgumentParser):
    """argparse with spikebatch's error form: one ``error:`` line naming the fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {' '.join(message.split())}; see '{self.prog} --help'", file=sys.stderr, flush=True)
        raise SystemExit(2)


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more seconds")
    return value


def _add_image_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--image-profile", choices=["cpu", "gpu"],
                         help=f"which of the profile's default_images to run (default: the job config's, else "
                              f"{DEFAULT_IMAGE_PROFILE})")
    command.add_argument("--image", help="container image; overrides the job config's and the profile's")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``spikebatch-batch-jobs``: the reference's global options and
    commands (deploy-job, job-status, job-logs, job-delete, render-job)."""
    parser = CompatArgumentParser(
        prog=PROG,
        description="Kubernetes batch jobs for SpikeLab analysis (the spikelab-batch-jobs commands, on spikebatch).",
        epilog="Exit codes: 0 ok, 1 job failed, 2 usage/config/policy error, 3 backend or storage unavailable, "
               "4 timeout, 5 job deleted while waited on, 130 interrupted.",
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE,
                        help=f"built-in or user profile name (default: {DEFAULT_PROFILE}); an unknown name is an error")
    parser.add_argument("--profile-file", help="a profile YAML file (wins over --profile)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    deploy = sub.add_parser("deploy-job", help="check, render and submit a job; optionally wait for its end")
    deploy.add_argument("--job-config", required=True, help="job config file (YAML or JSON, a JobSpec)")
    deploy.add_argument("--allow-policy-risk", action="store_true", help="submit even when the policy BLOCKs")
    deploy.add_argument("--render-only", action="store_true", help="print (or write) the manifest; submit nothing")
    deploy.add_argument("--output-manifest", help="with --render-only: write the manifest to this file")
    deploy.add_argument("--wait", action="store_true", help="wait for the job's end; exit non-zero unless Complete")
    deploy.add_argument("--max-wait-seconds", type=_seconds, default=3600, help="give up waiting after this long")
    deploy.add_argument("--follow-logs", action="store_true",
                        help="wait, then print the job's log lines (implies --wait)")
    _add_image_options(deploy)
    deploy.set_defaults(func=_deploy)

    status = sub.add_parser("job-status", help="print a job's state: Pending, Running, Complete or Failed")
    status.add_argument("job_name")
    status.set_defaults(func=_status)

    logs = sub.add_parser("job-logs", help="print a job's log lines; --follow until it ends")
    logs.add_argument("job_name")
    logs.add_argument("--follow", action="store_true", help="keep printing until the job ends")
    logs.set_defaults(func=_logs)

    delete = sub.add_parser("job-delete", help="delete a job and its pods (a missing job is not an error)")
    delete.add_argument("job_name")
    delete.set_defaults(func=_delete)

    render = sub.add_parser("render-job", help="print the Job manifest without submitting (dry run)")
    render.add_argument("--job-config", required=True, help="job config file (YAML or JSON, a JobSpec)")
    render.add_argument("--output-manifest", help="write the manifest to this file instead of printing it")
    _add_image_options(render)
    render.set_defaults(func=_render)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``spikebatch-batch-jobs`` on ``argv`` (default: ``sys.argv[1:]``); returns the
    exit code (``--help`` and usage errors too, instead of raising SystemExit)."""
    try:
        args = build_parser().parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return _exit_code(exc)
    return _run(lambda: args.func(args))


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(f"error: {exc.code}", file=sys.stderr, flush=True)
    return 1


def _run(action: Callable[[], int]) -> int:
    """``action`` with spikebatch's error handling: each error one ``error:`` line and
    its exit code (cli_common.run_guarded)."""
    import typer

    from .cli_common import run_guarded

    try:
        return int(run_guarded(action) or 0)
    except typer.Exit as exc:
        return exc.exit_code
    except BrokenPipeError:  # `job-logs X | head`: the reader went away
        from .cli import _silence_stdout

        _silence_stdout()
        return 1


# --- what the commands share --------------------------------------------------------------
def _emit(key: str, value: Any) -> None:
    from .cli_common import masked

    print(f"{key}={masked(str(value))}", flush=True)


def _profile(args: argparse.Namespace) -> Any:
    """The profile of --profile-file, else --profile (an unknown name is an error)."""
    from ..container import USER_FILES
    from .cli_common import remember_secrets

    if args.profile_file:
        profile = USER_FILES.profile_file()(args.profile_file)
    else:
        profile = USER_FILES.profile_named()(args.profile or DEFAULT_PROFILE)
    remember_secrets(profile.model_dump(mode="json"))
    return profile


def _kubeconfig(args: argparse.Namespace) -> Optional[str]:
    return str(Path(args.kubeconfig).expanduser().resolve()) if args.kubeconfig else None


def _session(args: argparse.Namespace, profile: Any) -> Any:
    """A RunSession for ``profile`` whose submissions are recorded like spikebatch's own
    (so ``spikebatch job-status RUN_ID`` finds them again)."""
    from ..container import open_session

    session = open_session(profile, kubeconfig=_kubeconfig(args))
    if args.profile_file:
        session.record_origin["profile_file"] = str(Path(args.profile_file).expanduser().resolve())
    return session


def _job_spec(args: argparse.Namespace, profile: Any) -> Any:
    """The job config as a JobSpec with --image / --image-profile applied, its image
    resolved against ``profile`` (no image at all is a one-line error naming the fix)."""
    from ..application.job_config import apply_image_choice
    from ..container import load_job_config
    from ..domain.effective import resolve_image
    from .cli_common import remember_secrets

    spec = load_job_config(args.job_config)
    remember_secrets(spec.model_dump(mode="json"))
    spec = apply_image_choice(spec, image=args.image, image_profile=args.image_profile)
    resolve_image(spec, profile)
    return spec


def _write_manifest(path: str, text: str) -> None:
    from ..container import write_user_file

    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    write_user_file(Path(path).expanduser(), text)


# --- commands -------------------------------------------------------------------------------
def _render(args: argparse.Namespace) -> int:
    """The manifest of ``<name_prefix>-dry-run`` (run id ``dry-run``): printed, or written
    to --output-manifest with a ``MANIFEST_PATH=`` line. Secret values are masked."""
    from ..domain.manifest import manifest_to_yaml, render_job_manifest
    from ..domain.redaction import redact_sensitive_map
    from .cli_common import known_secrets

    profile = _profile(args)
    spec = _job_spec(args, profile)
    manifest = render_job_manifest(f"{spec.name_prefix}-{DRY_RUN}", spec, profile, DRY_RUN)
    text = manifest_to_yaml(redact_sensitive_map(manifest, known_secrets()))
    if args.output_manifest:
        _write_manifest(args.output_manifest, text)
        _emit("MANIFEST_PATH", args.output_manifest)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    return 0


def _deploy(args: argparse.Namespace) -> int:
    if args.render_only:
        return _render(args)
    from .cli_common import say, warn
    from .cli_output import Feedback

    profile = _profile(args)
    spec = _job_spec(args, profile)
    session = _session(args, profile)
    session.on_preflight = Feedback().findings  # WARN findings shown; a BLOCK is the error
    session.on_warning = warn
    result = session.submit_prepared_job(job_spec=spec, allow_policy_risk=args.allow_policy_risk)
    _emit("JOB_NAME", result.job_name)
    _emit("OUTPUT_PREFIX", result.output_prefix)
    _emit("LOGS_PREFIX", result.logs_prefix)
    say(f"submitted job {result.job_name} (run id {result.run_id}) to namespace {result.namespace}")
    if not (args.wait or args.follow_logs):
        return 0
    final = str(session.wait_for_completion(result.job_name, args.max_wait_seconds))
    _emit("FINAL_STATUS", final)
    if args.follow_logs:
        _print_job_log(session, result.job_name, final)
    return _conclude(session, result.job_name, final, args.max_wait_seconds)


def _print_job_log(session: Any, job_name: str, final: str) -> None:
    """The ended job's log lines (every pod, oldest first) on stdout."""
    from ..domain.errors import JobNotFoundError
    from .cli_common import masked, warn

    printed = 0
    try:
        for line in session.stream_logs(job_name, follow=False):
            print(masked(line), flush=True)
            printed += 1
    except JobNotFoundError:
        warn(f"--follow-logs: job {job_name} is gone (final status: {final}); its log cannot be read")
        return
    if not printed:
        warn(f"--follow-logs: job {job_name} has no log lines (final status: {final}); "
             f"see {PROG} job-status {job_name}")


def _conclude(session: Any, job_name: str, final: str, max_wait_seconds: int) -> int:
    """0 for Complete; else one ``error:`` line and the exit code of the final status."""
    if final == "Complete":
        return 0
    from .cli_common import fail
    from .cli_runs import FINAL_EXIT, why

    reason = why(session, job_name) if final in ("Failed", "Stuck") else ""
    messages = {
        "Failed": f"job {job_name} failed{reason}; see its log: {PROG} job-logs {job_name}",
        "Stuck": f"job {job_name} cannot start{reason}; fix the cause, then {PROG} job-delete {job_name}",
        "Timeout": f"job {job_name} did not end within {max_wait_seconds} s; it keeps running "
                   f"({PROG} job-status {job_name})",
        "Backend unavailable": f"lost contact with the job backend while waiting for {job_name}; it may still be "
                               f"running ({PROG} job-status {job_name} once the cluster is reachable)",
        "Deleted": f"job {job_name} was deleted while waited on (by someone else, job-delete or its TTL); "
                   "submit it again to run it",
    }
    raise fail(messages.get(final, f"job {job_name} ended as {final}"), FINAL_EXIT.get(final, 1))


def _status(args: argparse.Namespace) -> int:
    session = _session(args, _profile(args))
    _emit("JOB_STATUS", str(session.job_status(args.job_name)))
    return 0


def _logs(args: argparse.Namespace) -> int:
    from .cli_common import masked

    session = _session(args, _profile(args))
    for line in session.stream_logs(args.job_name, follow=args.follow):
        print(masked(line), flush=args.follow)
    return 0


def _delete(args: argparse.Namespace) -> int:
    from .cli_common import say

    session = _session(args, _profile(args))
    existed = session.delete_job(args.job_name)
    if existed is False:
        say(f"job {args.job_name} does not exist in namespace {session.namespace}; nothing to delete")
    _emit("DELETED_JOB", args.job_name)
    return 0


__all__: List[str] = ["DEFAULT_IMAGE_PROFILE", "build_parser", "main"]
