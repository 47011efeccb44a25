"""The runner's use case, inside the job: fetch the bundle, run the script or the
sorter, upload the outputs, a result.json and the runner's log.

Exit codes: 0 success, 1 the script or the sorter failed, 2 bad configuration or
inputs (a missing variable, an integrity failure). The last line on stdout is a marker
a person or a log scraper can find: ``SPIKEBATCH_RESULT status=succeeded|failed ...``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Tuple

from ..domain.bundle import BUNDLE_FILENAME, RESULT_MARKER, RUNNER_LOG_NAME, BundleManifest
from ..domain.errors import SpikebatchError
from ..ports.sorter import Sorter
from ..ports.storage import ArtifactStore
from ..ports.workspace import WorkspaceCodec
from .job_runtime import BundleFetcher, LogTee, run_sorting, run_workspace_script, upload_tree, write_result

MARKER = RESULT_MARKER
MODES = ("workspace", "sorting")


@dataclass(frozen=True)
class RunnerSettings:
    """What the Job's env tells the runner (see ``settings_from_env``)."""

    mode: str
    input_uri: str
    output_prefix: str
    logs_prefix: str
    script_name: Optional[str]


def settings_from_env(mode: str, env: Mapping[str, str]) -> RunnerSettings:
    """INPUT_URI, OUTPUT_PREFIX, LOGS_PREFIX (default: OUTPUT_PREFIX) and SCRIPT_NAME,
    checked; a SpikebatchError names what is missing or malformed."""

    def value(name: str, required: bool = True) -> Optional[str]:
        found = env.get(name) or None
        if required and not found:
            raise SpikebatchError(f"environment variable {name} is not set; the Job manifest must set it")
        return found

    input_uri = value("INPUT_URI")
    output_prefix = value("OUTPUT_PREFIX")
    logs_prefix = value("LOGS_PREFIX", required=False) or output_prefix
    if not output_prefix.endswith("/") or not logs_prefix.endswith("/"):
        raise SpikebatchError("OUTPUT_PREFIX and LOGS_PREFIX must end with '/'")
    return RunnerSettings(mode, input_uri, output_prefix, logs_prefix, value("SCRIPT_NAME", required=False))


#: The runner's folders inside its work folder: the verified inputs and what to upload.
WORK_SUBDIR, OUTPUT_SUBDIR = "work", "output"


def check_work_root(work_root: Path) -> None:
    """The work folder must not hold an earlier run's folders: the runner writes the
    bundle's (untrusted) paths there, and only into folders it has just made, so no
    symlink left behind can lead a write out."""
    leftovers = [name for name in (WORK_SUBDIR, OUTPUT_SUBDIR) if (work_root / name).exists()]
    if leftovers:
        raise SpikebatchError(
            f"work folder {work_root} already holds {' and '.join(leftovers)} from an earlier run; "
            "give SPIKEBATCH_WORK_DIR an empty folder"
        )


def prepare_work_root(given: Optional[str]) -> Path:
    """The runner's work folder: ``given`` (SPIKEBATCH_WORK_DIR; made when missing and
    checked by ``check_work_root``) or else a new temporary folder. A SpikebatchError
    says so when it cannot be made or written: in a pod with a read-only root
    filesystem only the pod's volumes are writable."""
    fix = "point SPIKEBATCH_WORK_DIR at a writable folder (with a read-only root filesystem: a volume)"
    try:
        if given:
            root = Path(given)
            check_work_root(root)
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(tempfile.mkdtemp(prefix="spikebatch-run-"))
    except OSError as exc:
        what = f"the work folder {given}" if given else f"a work folder in {tempfile.gettempdir()}"
        raise SpikebatchError(f"cannot create {what}: {exc.strerror or exc}; {fix}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise SpikebatchError(f"work folder {root} is not writable; {fix}")
    return root


#: What the runner itself puts into a work folder it was given (besides WORK_SUBDIR and
#: OUTPUT_SUBDIR): the downloaded bundle and its log.
_RUNNER_FILES = (BUNDLE_FILENAME, RUNNER_LOG_NAME)


def release_work_root(work_root: Path, given: Optional[str], keep: bool) -> None:
    """Remove what the run put into its work folder, once it has ended (success or
    failure): the whole folder when the runner made it (``given`` is None), else the
    runner's own entries in the given folder (which may be a mount point, e.g. a pod's
    emptyDir, and stays). ``keep`` (SPIKEBATCH_KEEP_WORK_DIR) keeps everything. A folder
    that cannot be removed is a warning: the run's outcome stands."""
    if keep:
        return
    victims = [work_root] if given is None else [
        work_root / name for name in (WORK_SUBDIR, OUTPUT_SUBDIR, *_RUNNER_FILES)]
    for victim in victims:
        try:
            if victim.is_dir() and not victim.is_symlink():
                shutil.rmtree(victim)
            else:
                victim.unlink(missing_ok=True)
        except OSError as exc:
            print(f"warning: could not remove {victim}: {exc.strerror or exc}", file=sys.stderr, flush=True)


def report_config_failure(message: str) -> int:
    """The marker line for a runner that could not even start; exit code 2."""
    print(f"{MARKER} status=failed reason=config error={message}", flush=True)
    return 2


@dataclass(frozen=True)
class InJobAdapters:
    """What the runner works with, chosen by the composition root."""

    store: ArtifactStore
    workspace_codec: Callable[[str], WorkspaceCodec]
    result_codec: Callable[[], WorkspaceCodec]
    sorter: Callable[[str], Sorter]
    #: What one sorted recording puts into the result workspace.
    result_items: Callable[[Any, Any], dict]


@dataclass
class _Outcome:
    status: str = "failed"
    reason: str = ""
    code: int = 1
    result_format: str = ""
    files: Optional[List[str]] = None


def run_in_job(settings: RunnerSettings, adapters: InJobAdapters, work_root: Path) -> int:
    """Fetch, run and upload in ``work_root`` (see ``check_work_root``); return the
    exit code. Whatever happens, result.json and the runner's log are written."""
    log_path = work_root / RUNNER_LOG_NAME
    with LogTee(log_path):
        outcome = _fetch_run_upload(settings, adapters, work_root)
        write_result(adapters.store, settings.output_prefix, mode=settings.mode, status=outcome.status,
                     reason=outcome.reason, format=outcome.result_format, files=outcome.files or [])
        print(f"{MARKER} status={outcome.status}" + (f" reason={outcome.reason}" if outcome.reason else ""), flush=True)
    try:
        adapters.store.upload_file(local_path=log_path, s3_uri=settings.logs_prefix + RUNNER_LOG_NAME)
    except SpikebatchError as exc:
        print(f"warning: could not upload {RUNNER_LOG_NAME}: {exc.message}", file=sys.stderr, flush=True)
    return outcome.code


def _fetch_run_upload(settings: RunnerSettings, adapters: InJobAdapters, work_root: Path) -> _Outcome:
    outcome = _Outcome()
    try:
        print(f"spikebatch runner: mode={settings.mode} input={settings.input_uri}", flush=True)
        fetcher = BundleFetcher(adapters.store, work_root / WORK_SUBDIR)
        manifest = fetcher.fetch(settings.input_uri)
        if manifest.job_type != settings.mode:
            raise SpikebatchError(f"bundle is a {manifest.job_type} bundle but the runner mode is {settings.mode}")
        output_dir = work_root / OUTPUT_SUBDIR
        output_dir.mkdir()
        ok, outcome.reason, outcome.result_format = _run(settings, adapters, manifest, fetcher.work_dir, output_dir)
        outcome.files = upload_tree(adapters.store, output_dir, settings.output_prefix)
        outcome.status, outcome.code = ("succeeded", 0) if ok else ("failed", 1)
    except SpikebatchError as exc:
        outcome.reason, outcome.code = f"{type(exc).__name__}: {exc.message}", 2
        print(f"error: {exc.message}", flush=True)
    except Exception as exc:  # the runner's own failure must still leave a log and a marker
        outcome.reason, outcome.code = f"{type(exc).__name__}: {exc}", 1
        traceback.print_exc()
    return outcome


def _run(settings: RunnerSettings, adapters: InJobAdapters, manifest: BundleManifest, work_dir: Path,
         output_dir: Path) -> Tuple[bool, str, str]:
    """Run the script or the sorter; (ok, reason, result workspace format)."""
    if settings.mode == "workspace":
        codec = adapters.workspace_codec(manifest.format)
        script_name = settings.script_name or manifest.script
        ok, reason = run_workspace_script(manifest, work_dir, output_dir, script_name, codec)
        return ok, reason, codec.name
    codec = adapters.result_codec()
    sorter = adapters.sorter((manifest.sorting or {}).get("sorter", ""))
    ok, reason = run_sorting(manifest, work_dir, output_dir, sorter, codec, adapters.result_items)
    return ok, reason, codec.name
