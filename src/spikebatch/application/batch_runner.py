"""The runner in one pod of a sorting batch: sort the one recording its completion
index names, and write that recording's outputs under its own prefix.

A pod of a batch Job has ``SPIKEBATCH_BATCH_INDEXES`` (the recordings its Job covers)
and ``JOB_COMPLETION_INDEX`` (set by the job controller, or by the local backend): the
recording is the ``JOB_COMPLETION_INDEX``-th of that list. It fetches only that
recording, sorts it, and uploads under ``<outputs>recordings/<name>/``: the sorter's
files, a workspace with the recording's namespace, and ``result.json`` (status, units,
seconds, cache key). On success it records the result in the store's result cache, so
a later batch with the same recording, sorter, parameters and image reuses it.

Exit codes are those of ``runner``: 0 sorted, 1 the sorter failed (retried by the
Job), 2 bad input or configuration (the pod failure policy fails the index at once).
"""

from __future__ import annotations

import json
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping, Optional

from ..domain.batch import BATCH_INDEXES_ENV, COMPLETION_INDEX_ENV, parse_index_ranges, recording_output_prefix
from ..domain.bundle import RESULT_NAME, RUNNER_LOG_NAME, WORKSPACE_DIR, BundleManifest, RecordingEntry
from ..domain.errors import SpikebatchError
from .job_runtime import BundleFetcher, LogTee, upload_tree
from .runner import MARKER, OUTPUT_SUBDIR, WORK_SUBDIR, InJobAdapters, RunnerSettings


def batch_position(env: Mapping[str, str]) -> Optional[int]:
    """The index (in the bundle's recordings) this pod sorts, or None when the pod is
    not part of a batch. A SpikebatchError says what is malformed."""
    indexes_text = env.get(BATCH_INDEXES_ENV)
    if not indexes_text:
        return None
    try:
        indexes = parse_index_ranges(indexes_text)
        completion = int(env.get(COMPLETION_INDEX_ENV, "0"))
    except ValueError as exc:
        raise SpikebatchError(f"{BATCH_INDEXES_ENV}/{COMPLETION_INDEX_ENV} are malformed ({exc}); "
                              "re-submit the batch") from None
    if not 0 <= completion < len(indexes):
        raise SpikebatchError(f"{COMPLETION_INDEX_ENV}={completion} is outside this Job's "
                              f"{len(indexes)} recordings; re-submit the batch")
    return indexes[completion]


def _entry(manifest: BundleManifest, position: int) -> RecordingEntry:
    if manifest.job_type != "sorting":
        raise SpikebatchError(f"bundle is a {manifest.job_type} bundle, not a sorting batch")
    if not 0 <= position < len(manifest.recordings):
        raise SpikebatchError(f"recording index {position} is not in the bundle's "
                              f"{len(manifest.recordings)} recordings; re-submit the batch")
    return manifest.recordings[position]


class _Result:
    def __init__(self) -> None:
        self.fields: dict = {"status": "failed", "reason": "", "units": None}
        self.code = 1


def run_batch_recording(settings: RunnerSettings, adapters: InJobAdapters, work_root: Path, position: int) -> int:
    """Sort the bundle's recording at ``position``; return the exit code. Whatever
    happens, the recording's result.json and the runner's log are written (the
    recording's prefix is known once the bundle is read)."""
    log_path = work_root / RUNNER_LOG_NAME
    result = _Result()
    prefix: Optional[str] = None
    logs_prefix = settings.logs_prefix
    started = time.monotonic()
    with LogTee(log_path):
        try:
            print(f"spikebatch runner: batch recording #{position} input={settings.input_uri}", flush=True)
            manifest = BundleManifest.model_validate_json(_manifest_bytes(adapters, settings.input_uri, work_root))
            entry = _entry(manifest, position)
            prefix = recording_output_prefix(settings.output_prefix, entry.name)
            logs_prefix = recording_output_prefix(settings.logs_prefix, entry.name)
            result.fields.update(recording=entry.name, index=position, cache_key=entry.cache_key)
            _sort_one(settings, adapters, work_root, entry, prefix, result)
        except SpikebatchError as exc:
            result.fields["reason"], result.code = f"{type(exc).__name__}: {exc.message}", 2
            print(f"error: {exc.message}", flush=True)
        except Exception as exc:  # the sorter's crash: reported, retried by the Job
            result.fields["reason"], result.code = f"{type(exc).__name__}: {exc}", 1
            traceback.print_exc()
        result.fields["seconds"] = round(time.monotonic() - started, 3)
        if prefix is not None:
            try:
                adapters.store.write_bytes(prefix + RESULT_NAME,
                                           json.dumps(result.fields, indent=2, sort_keys=True).encode())
            except SpikebatchError as exc:
                print(f"warning: could not write {RESULT_NAME}: {exc.message}", flush=True)
                result.code = result.code or 1
        print(f"{MARKER} status={result.fields['status']}"
              + (f" reason={result.fields['reason']}" if result.fields["reason"] else ""), flush=True)
    try:
        adapters.store.upload_file(local_path=log_path, s3_uri=logs_prefix + RUNNER_LOG_NAME)
    except SpikebatchError as exc:
        print(f"warning: could not upload {RUNNER_LOG_NAME}: {exc.message}", flush=True)
    return result.code


def _manifest_bytes(adapters: InJobAdapters, bundle_uri: str, work_root: Path) -> bytes:
    """Only manifest.json of the bundle, to learn the recording's name first."""
    import zipfile

    from ..domain.bundle import MANIFEST_NAME
    from ..domain.errors import IntegrityError

    probe = work_root / "bundle-manifest.zip"
    adapters.store.download_file(s3_uri=bundle_uri, local_path=probe)
    try:
        with zipfile.ZipFile(probe) as bundle:
            return bundle.read(MANIFEST_NAME)
    except (zipfile.BadZipFile, KeyError):
        raise IntegrityError(f"bundle {bundle_uri} is not a spikebatch bundle; re-submit the batch") from None
    finally:
        probe.unlink(missing_ok=True)


def _sort_one(settings: RunnerSettings, adapters: InJobAdapters, work_root: Path, entry: RecordingEntry,
              prefix: str, result: _Result) -> None:
    fetcher = BundleFetcher(adapters.store, work_root / WORK_SUBDIR)
    manifest = fetcher.fetch(settings.input_uri, only_recording=entry.name)
    config = dict((manifest.sorting or {}).get("config") or {})
    sorter = adapters.sorter((manifest.sorting or {}).get("sorter", ""))
    codec = adapters.result_codec()
    output_dir = work_root / OUTPUT_SUBDIR
    target = output_dir / entry.name
    target.mkdir(parents=True)
    print(f"sorting {entry.name} with {sorter.name}", flush=True)
    outcome = sorter.sort(fetcher.work_dir / entry.path, config, target)
    workspace_dir = output_dir / WORKSPACE_DIR
    workspace_dir.mkdir()
    workspace = codec.open(workspace_dir)
    for key, value in adapters.result_items(outcome, workspace).items():
        workspace.store(entry.name, key, value)
    codec.commit(workspace, workspace_dir)
    print(f"sorted {entry.name}: {outcome.unit_count} units", flush=True)
    result.fields.update(status="succeeded", units=outcome.unit_count, format=codec.name,
                         files=upload_tree(adapters.store, output_dir, prefix))
    result.code = 0
    if entry.cache_uri:
        entry_text = json.dumps({"output_prefix": prefix, "run_id": manifest.run_id, "recording": entry.name,
                                 "units": outcome.unit_count, "cache_key": entry.cache_key,
                                 "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        try:
            adapters.store.write_bytes(entry.cache_uri, entry_text.encode())
        except SpikebatchError as exc:  # the result stands; only its reuse is lost
            print(f"warning: could not record the result in the cache: {exc.message}", flush=True)
