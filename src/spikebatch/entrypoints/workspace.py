"""The in-container program of a workspace job over the spec's flat bundle:
``python -m spikebatch.entrypoints.workspace`` (the spec's
``spikelab.batch_jobs.entrypoints.workspace``).

Environment: INPUT_URI (the bundle, s3:// or file://), OUTPUT_PREFIX, SCRIPT_NAME;
S3_ENDPOINT_URL and AWS_DEFAULT_REGION for an S3 store that is not AWS's, the standard
AWS credential variables, SPIKEBATCH_STORAGE_ROOT for file:// URIs. What it does:
``spikebatch.application.flat_bundle_jobs.run_workspace_bundle``. Needs SpikeLab.
"""

from __future__ import annotations

from typing import Any, Mapping
from pathlib import Path

from ..application.flat_bundle_jobs import run_workspace_bundle
from .flat_bundle import run, spikelab_workspaces


def _job(adapters: Any, env: Mapping[str, str], work: Path) -> None:
    run_workspace_bundle(adapters.store, env, work, spikelab_workspaces())


def main() -> int:
    """Fetch the bundle, run the script on its workspace, upload the workspace; the
    exit code (0 done, 1 the script failed, 2 the job could not start)."""
    return run(_job)


if __name__ == "__main__":
    raise SystemExit(main())
