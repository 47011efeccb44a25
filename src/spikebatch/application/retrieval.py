"""Bringing a finished run's outputs home and opening the workspace it produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Optional

from ..domain.bundle import RESULT_NAME, WORKSPACE_DIR
from ..domain.errors import ConfigError, JobFailedError, ObjectNotFoundError
from ..domain.models import SubmitResult
from ..ports.storage import ArtifactStore, ProgressCallback
from ..ports.workspace import WorkspaceCodec


def retrieve_outputs(
    store: ArtifactStore,
    submit_result: SubmitResult,
    local_dir: str,
    codec_named: Callable[[str], WorkspaceCodec],
    progress: Optional[ProgressCallback] = None,
) -> Any:
    """Download the run's outputs into ``local_dir`` and return its result workspace.
    A run that did not succeed raises JobFailedError naming its log."""
    if submit_result.job_type == "prepared" or not submit_result.output_prefix:
        raise ConfigError("a prepared job has no bundle outputs to retrieve; read its outputs where its command wrote them")
    target = Path(local_dir).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    if not store.list_outputs(submit_result.output_prefix):
        raise ObjectNotFoundError(
            f"no outputs under {submit_result.output_prefix} yet; call wait_for_completion first "
            f"(job {submit_result.job_name})"
        )
    store.download_outputs(output_prefix=submit_result.output_prefix, local_dir=target, progress=progress)
    result = json.loads((target / RESULT_NAME).read_text()) if (target / RESULT_NAME).is_file() else {}
    if result.get("status") != "succeeded":
        reason = result.get("reason") or "the runner left no result"
        raise JobFailedError(
            f"job {submit_result.job_name} did not succeed ({reason}); its log is under {submit_result.logs_prefix}"
        )
    return codec_named(result["format"]).load_result(target / WORKSPACE_DIR)
