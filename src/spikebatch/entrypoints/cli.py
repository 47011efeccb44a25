"""The ``spikebatch`` (alias ``spikelab-batch-jobs``) command line.

stdout carries the data (manifests, KEY=VALUE lines); stderr carries everything meant
for a person, so scripts can parse stdout safely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .cli_common import STATE, emit, run_guarded, say

app = typer.Typer(
    name="spikebatch",
    help="Run SpikeLab analysis and spike-sorting workloads as Kubernetes batch jobs (or locally).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)

ProfileOpt = typer.Option(None, "--profile", help="Profile name (built-in or user).")
ProfileFileOpt = typer.Option(None, "--profile-file", help="Path to a profile YAML file.")


@app.callback()
def _global(
    profile: Optional[str] = typer.Option(None, "--profile", help="Profile name (built-in or user)."),
    profile_file: Optional[Path] = typer.Option(None, "--profile-file", help="Path to a profile YAML file."),
    kubeconfig: Optional[Path] = typer.Option(None, "--kubeconfig", help="Kubeconfig for cluster profiles."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No human-oriented output on stderr."),
) -> None:
    STATE.profile = profile
    STATE.profile_file = str(profile_file) if profile_file else None
    STATE.kubeconfig = str(kubeconfig) if kubeconfig else None
    STATE.debug = debug
    STATE.quiet = quiet


def _load_profile(profile: Optional[str], profile_file: Optional[Path]):
    from ..domain.errors import ConfigError
    from ..profiles import load_cluster_profile, load_profile_from_name

    name = profile or STATE.profile
    file = str(profile_file) if profile_file else STATE.profile_file
    if name and file:
        raise ConfigError("give either --profile or --profile-file, not both")
    if file:
        return load_cluster_profile(file)
    return load_profile_from_name(name or "local")


@app.command("render-job")
def render_job(
    job_config: Path = typer.Option(..., "--job-config", help="Job config YAML (a JobSpec)."),
    profile: Optional[str] = ProfileOpt,
    profile_file: Optional[Path] = ProfileFileOpt,
    image_profile: Optional[str] = typer.Option(None, "--image-profile", help="Which profile image: cpu or gpu."),
    image: Optional[str] = typer.Option(None, "--image", help="Container image (overrides the profile's)."),
    output_manifest: Optional[Path] = typer.Option(None, "--output-manifest", help="Write the manifest here."),
) -> None:
    """Render the Kubernetes Job manifest for a job config, without submitting it."""

    def action() -> None:
        from ..application.job_config import apply_image_choice, load_job_config
        from ..domain.manifest import manifest_to_yaml, render_job_manifest
        from ..domain.naming import make_job_name, new_run_id
        from ..domain.policy import evaluate_policy, summarize_preflight

        if output_manifest:
            _check_output_folder(output_manifest)
        prof = _load_profile(profile, profile_file)
        spec = apply_image_choice(load_job_config(job_config), image=image, image_profile=image_profile)
        run_id = new_run_id()
        job_name = make_job_name(spec.name_prefix)
        manifest = render_job_manifest(job_name, spec, prof, run_id)
        summary = summarize_preflight(evaluate_policy(spec, prof))
        for line in summary.lines:
            say(f"policy: {line}")
        text = manifest_to_yaml(manifest)
        if output_manifest:
            _write_atomically(output_manifest, text)
            emit("JOB_NAME", job_name)
            emit("MANIFEST_PATH", output_manifest.resolve())
        else:
            print(text, end="")

    run_guarded(action)


def _check_output_folder(path: Path) -> None:
    from ..domain.errors import ConfigError

    if not path.expanduser().parent.is_dir():
        raise ConfigError(f"--output-manifest folder {str(path.expanduser().parent)!r} does not exist; create it first")


def _write_atomically(path: Path, text: str) -> None:
    import os
    import tempfile

    path = path.expanduser()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    app()


if __name__ == "__main__":
    main()
