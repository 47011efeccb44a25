"""What every runner submission (workspace or sorting) prepares before its bundle is
staged: where the run's files go, and the JobSpec that runs the in-container runner."""

from __future__ import annotations

from typing import Dict

from ..domain.bundle import BUNDLE_FILENAME
from ..domain.effective import effective_env
from ..domain.model_base import with_changes
from ..domain.models import ClusterProfile, JobSpec
from ..ports.storage import ArtifactStore

RUNNER_MODULE = "spikebatch.entrypoints.runner"


def run_locations(store: ArtifactStore, run_id: str) -> Dict[str, str]:
    """The run's bundle URI and its output and log prefixes."""
    return {
        "bundle": store.build_uri(run_id=run_id, filename=BUNDLE_FILENAME, category="inputs"),
        "outputs": store.output_prefix_for_run(run_id),
        "logs": store.logs_prefix_for_run(run_id),
    }


def runner_job_spec(spec: JobSpec, profile: ClusterProfile, store: ArtifactStore, mode: str, env: Dict[str, str]) -> JobSpec:
    """``spec`` with the runner's command (unless the user gave one) and the env the
    runner reads: the store's endpoint and region, ``env``, and for a file:// store the
    folder the runner must open (the local backend's process shares this filesystem)."""
    container_env = dict(spec.container.env)
    present = effective_env(spec, profile)
    if profile.endpoint_url and "S3_ENDPOINT_URL" not in present:
        container_env["S3_ENDPOINT_URL"] = profile.endpoint_url
    if profile.region_name and "AWS_DEFAULT_REGION" not in present:
        container_env["AWS_DEFAULT_REGION"] = profile.region_name
    container_env.update(env)
    local_root = getattr(store, "local_root", None)  # a store written before the port had it
    if store.scheme == "file" and local_root is not None:
        container_env["SPIKEBATCH_STORAGE_ROOT"] = str(local_root)
    command = list(spec.container.command) or ["python", "-m", RUNNER_MODULE, mode]
    container = with_changes(spec.container, env=container_env, command=command)
    return with_changes(spec, container=container)
