"""Building and staging bundles: plan (validate, hash) first, upload second.

``plan_*`` functions touch nothing remote: they check every input (``bundle_inputs``:
kinds, names, links, empty recordings, all before any file is read), hash the files
(through the store's digest cache, so an unchanged multi-GB file is not re-read) and
return a BundlePlan. Only ``stage_bundle`` uploads: the large files as content-addressed
blobs (skipped when already stored), then one small zip with manifest.json.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..domain.bundle import (
    BUNDLE_FILENAME,
    DEFAULT_BLOB_THRESHOLD,
    INPUTS_DIR,
    MANIFEST_NAME,
    RECORDINGS_DIR,
    SCRIPT_DIR,
    WORKSPACE_DIR,
    BundleFile,
    BundleManifest,
    RecordingEntry,
    bundle_name_problem,
    check_user_basename,
    safe_relative_path,
)
from ..domain.errors import ConfigError, UnsafePathError
from ..domain.local_files import shown_path
from ..ports.storage import ArtifactStore, ProgressCallback
from .bundle_inputs import named_file, recording_files, recording_source


#: Inside a recording folder, files above this go as blobs: the data files (re-sorted
#: often, never uploaded twice), while small sidecars (JSON, probe files) ride in the zip.
RECORDING_MEMBER_BLOB_THRESHOLD = 64 * 1024


@dataclass
class PlannedFile:
    local_path: Path
    path: str
    sha256: str
    size: int
    as_blob: bool


@dataclass
class BundlePlan:
    """Everything to upload for one run, validated and hashed."""

    run_id: str
    job_type: str
    format: str
    files: List[PlannedFile]
    script: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    recordings: List[RecordingEntry] = field(default_factory=list)
    sorting: Optional[Dict[str, Any]] = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _check_bundle_path(local: Path, path: str) -> None:
    """The last word on a planned path, whatever produced it (a workspace codec
    included): it must be one the manifest accepts, or the submission would fail after
    its blobs were uploaded."""
    problems = [bundle_name_problem(part) for part in path.split("/")]
    problem = next((p for p in problems if p), None)
    if problem is None:
        try:
            safe_relative_path(path)
        except UnsafePathError as exc:
            problem = f"cannot travel in a bundle ({exc.message})"
    if problem:
        raise ConfigError(f"{shown_path(os.fspath(local))} {problem}; rename the file")


def _check_unique(names: Iterable[Tuple[str, Path]], what: str) -> None:
    seen: Dict[str, Path] = {}
    for name, source in names:
        if name in seen:
            raise ConfigError(
                f"two {what} share the basename {name!r} ({seen[name]} and {source}); "
                "rename one: inside the job they land in one folder"
            )
        seen[name] = source


def _json_metadata(metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ConfigError("metadata must be a dict of JSON values")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metadata must hold JSON values only ({exc}); convert the value to str/int/float/list/dict") from None
    return metadata


class BundlePlanner:
    """Hashes files (through ``store.blob_digest``) and decides blob vs zip.

    ``hash_progress(bytes_hashed, bytes_total)`` follows the hashing of one plan: the
    total is known up front (every file is checked and sized before the first is read).
    """

    def __init__(
        self,
        store: ArtifactStore,
        blob_threshold: int = DEFAULT_BLOB_THRESHOLD,
        hash_progress: Optional[ProgressCallback] = None,
    ) -> None:
        self.store = store
        self.blob_threshold = blob_threshold
        self.hash_progress = hash_progress
        self._hashed = 0
        self._hash_total = 0

    def _forward_from(self, offset: int) -> Optional[ProgressCallback]:
        """One file's hashing progress, as progress of the whole plan."""
        if self.hash_progress is None:
            return None
        report = self.hash_progress
        return lambda done, _size: report(offset + done, self._hash_total)

    def _plan_files(self, entries: List[Tuple[Path, str, bool]]) -> List[PlannedFile]:
        """Check every path and size every file first (so nothing is read for a plan
        that will be refused, and the progress total is right), then hash each."""
        for local, path, _ in entries:
            _check_bundle_path(local, path)
        sized = [(local, path, force, local.stat().st_size) for local, path, force in entries]
        self._hash_total += sum(size for *_, size in sized)
        planned = []
        for local, path, force_blob, size in sized:
            digest = self.store.blob_digest(local, progress=self._forward_from(self._hashed))
            self._hashed += size
            planned.append(
                PlannedFile(local_path=local, path=path, sha256=digest, size=size, as_blob=force_blob or size > self.blob_threshold)
            )
        return planned

    def _plan_inputs(self, bundle_input_paths: Optional[Iterable[Any]]) -> List[Tuple[Path, str, bool]]:
        inputs = [named_file(p, "bundle input") for p in (bundle_input_paths or [])]
        for file in inputs:
            check_user_basename(file.name, "bundle input")
        _check_unique(((f.name, f) for f in inputs), "bundle inputs")
        return [(f, f"{INPUTS_DIR}/{f.name}", False) for f in inputs]

    def check_workspace_inputs(self, script: Any, bundle_input_paths: Optional[Iterable[Any]] = None) -> None:
        """The checks of ``plan_workspace`` on the script and inputs, reading nothing:
        run before the workspace is saved, so a bad input is refused at once."""
        self._script_entry(script)
        self._plan_inputs(bundle_input_paths)

    @staticmethod
    def _script_entry(script: Any) -> Tuple[Path, str, bool]:
        script_file = named_file(script, "script")
        check_user_basename(script_file.name, "script")
        if script_file.suffix != ".py":
            raise ConfigError(f"script {str(script_file)!r} must be a Python file ending in .py")
        return (script_file, f"{SCRIPT_DIR}/{script_file.name}", False)

    def plan_workspace(
        self,
        *,
        run_id: str,
        codec_name: str,
        workspace_files: Sequence[Path],
        workspace_root: Path,
        script: Any,
        bundle_input_paths: Optional[Iterable[Any]] = None,
        metadata: Optional[Dict[str, Any]] = None,
    ) -> BundlePlan:
        script_entry = self._script_entry(script)
        entries = [script_entry]
        entries += self._plan_inputs(bundle_input_paths)
        for local in workspace_files:
            entries.append((local, f"{WORKSPACE_DIR}/{local.relative_to(workspace_root).as_posix()}", False))
        files = self._plan_files(entries)
        return BundlePlan(
            run_id=run_id,
            job_type="workspace",
            format=codec_name,
            files=files,
            script=script_entry[0].name,
            metadata=_json_metadata(metadata),
        )

    def plan_sorting(
        self,
        *,
        run_id: str,
        recording_paths: Iterable[Any],
        sorter_name: str,
        sorter_config: Dict[str, Any],
        metadata: Optional[Dict[str, Any]] = None,
    ) -> BundlePlan:
        paths = list(recording_paths)
        if not paths:
            raise ConfigError("recording_paths is empty; give at least one recording file or folder")
        # Every recording, and every file in a recording folder, is checked before
        # the first byte of any of them is read (see bundle_inputs).
        recordings = [recording_source(p) for p in paths]
        for rec, _ in recordings:
            check_user_basename(rec.name, "recording")
        _check_unique(((r.name, r) for r, _ in recordings), "recordings")
        to_hash: List[Tuple[Path, str, bool]] = []
        entries: List[RecordingEntry] = []
        for rec, size in recordings:
            base = f"{RECORDINGS_DIR}/{rec.name}"
            entries.append(RecordingEntry(name=rec.name, path=base))
            if size is not None:
                # Recordings go as blobs whatever their size: a lab re-sorts the same
                # recording with new settings, and a blob is never uploaded twice.
                to_hash.append((rec, base, True))
                continue
            for member in recording_files(rec):
                to_hash.append((member.local_path, f"{base}/{member.relative}",
                                member.size > RECORDING_MEMBER_BLOB_THRESHOLD))
        files = self._plan_files(to_hash)
        return BundlePlan(
            run_id=run_id,
            job_type="sorting",
            format=sorter_name,
            files=files,
            metadata=_json_metadata(metadata),
            recordings=entries,
            sorting={"sorter": sorter_name, "config": sorter_config},
        )


def stage_bundle(
    plan: BundlePlan,
    store: ArtifactStore,
    scratch_dir: Path,
    progress: Optional[ProgressCallback] = None,
) -> str:
    """Upload the plan's blobs, then the zip holding manifest.json and the small files;
    return the bundle's URI."""
    total = plan.total_bytes
    done = 0

    def forward(offset: int) -> Optional[ProgressCallback]:
        if progress is None:
            return None
        return lambda sent, _size: progress(offset + sent, total)

    entries: List[BundleFile] = []
    for planned in plan.files:
        if planned.as_blob:
            uri = store.put_blob(planned.local_path, progress=forward(done))
            entries.append(BundleFile(path=planned.path, sha256=planned.sha256, size=planned.size, source="blob", uri=uri))
        else:
            entries.append(BundleFile(path=planned.path, sha256=planned.sha256, size=planned.size))
        done += planned.size
        if progress:
            progress(done, total)

    manifest = BundleManifest(
        run_id=plan.run_id,
        job_type=plan.job_type,  # type: ignore[arg-type]
        format=plan.format,
        script=plan.script,
        files=entries,
        metadata=plan.metadata,
        recordings=plan.recordings,
        sorting=plan.sorting,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    zip_path = scratch_dir / BUNDLE_FILENAME
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(MANIFEST_NAME, manifest.model_dump_json(indent=2))
        for planned in plan.files:
            if not planned.as_blob:
                bundle.write(planned.local_path, arcname=planned.path)
    bundle_uri = store.upload_bundle(local_zip=zip_path, run_id=plan.run_id)
    os.unlink(zip_path)
    return bundle_uri
