"""The in-container program of a sorting job over the spec's flat bundle:
``python -m spikebatch.entrypoints.sorting`` (the spec's
``spikelab.batch_jobs.entrypoints.sorting``).

Environment: INPUT_URI (the bundle: ``sorting_config.json``, the recordings and a
manifest declaring ``recording_files``), OUTPUT_PREFIX; S3_ENDPOINT_URL,
AWS_DEFAULT_REGION, the AWS credential variables, SPIKEBATCH_STORAGE_ROOT for file://
URIs. ``sorting_config.json`` is SpikeLab's ``SortingPipelineConfig`` as a dict (sorted
by SpikeLab) or our SpikeInterface sorter's resolved config. What it does:
``spikebatch.application.flat_bundle_jobs.run_sorting_bundle``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..application.flat_bundle_jobs import run_sorting_bundle
from .flat_bundle import run, spikelab_workspaces


def _job(adapters: Any, env: Mapping[str, str], work: Path) -> bool:
    return run_sorting_bundle(adapters.store, env, work, adapters.sorter, spikelab_workspaces())


def main() -> int:
    """Fetch the bundle, sort each declared recording, upload the results; the exit
    code (0 every recording sorted, 1 one failed, 2 the job could not start)."""
    return run(_job)


if __name__ == "__main__":
    raise SystemExit(main())
