"""What ``spikebatch.entrypoints.workspace`` and ``.sorting`` share: the store for the
bundle's URI, SpikeLab's workspace functions, a work folder, exit codes and one-line
errors. Exit codes: 0 done, 1 the script or a recording failed, 2 the job could not
start (a variable unset, a bundle that is not one, SpikeLab missing)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ..application.flat_bundle_jobs import ScriptFailed, SpikeLabWorkspaces, required_env
from ..domain.errors import SpikebatchError

EXIT_FAILED = 1
EXIT_CONFIG = 2


def _is_workspace_h5(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "__workspace_id__" in handle.attrs
    except OSError:
        return False  # a file named .h5 that is not HDF5 (or a damaged one) is not the workspace


def spikelab_workspaces() -> SpikeLabWorkspaces:
    try:
        from spikelab.workspace import AnalysisWorkspace
    except ImportError as exc:
        raise SpikebatchError(f"this job needs SpikeLab in its image: pip install spikelab ({exc})") from None

    def save(workspace: Any, base: str) -> None:
        workspace.save(base)

    def saved_spikedata(folder: Path, recording: str) -> Any:
        base = folder / "spikedata"
        if not base.with_suffix(".h5").is_file():
            raise SpikebatchError(f"the sorter wrote no SpikeData for {recording} (needs SpikeLab in the job)")
        return AnalysisWorkspace.load(str(base)).get(recording, "spikedata")

    return SpikeLabWorkspaces(is_workspace_h5=_is_workspace_h5, load=AnalysisWorkspace.load, save=save,
                              saved_spikedata=saved_spikedata)


def run(job: Callable[[Any, Mapping[str, str], Path], Optional[bool]], env: Optional[Mapping[str, str]] = None) -> int:
    """Run ``job(adapters, env, work_folder)`` and turn its end into an exit code."""
    from ..container import in_job_adapters

    env = dict(os.environ if env is None else env)
    try:
        adapters = in_job_adapters(required_env(env, "INPUT_URI"), env)
        with tempfile.TemporaryDirectory(prefix="spikebatch-flat-") as work:
            ok = job(adapters, env, Path(work))
    except ScriptFailed as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED
    except SpikebatchError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    return EXIT_FAILED if ok is False else 0
