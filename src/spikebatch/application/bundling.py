"""Planning bundles: validate and hash first; uploading is ``staging``'s.

``plan_*`` functions touch nothing remote: they check every input (``bundle_inputs``:
kinds, names, links, empty recordings, all before any file is read), hash the files
all at once (through the store's digest cache, so an unchanged multi-GB file is not
re-read, and one process per core for the others) and return a BundlePlan, which
``staging.stage_plan`` uploads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..domain.bundle import (
    DEFAULT_BLOB_THRESHOLD,
    INPUTS_DIR,
    RECORDINGS_DIR,
    SCRIPT_DIR,
    WORKSPACE_DIR,
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
    """Hashes files (through ``store.blob_digests``) and decides blob vs zip.

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

    def _plan_files(self, entries: List[Tuple[Path, str, bool]]) -> List[PlannedFile]:
        """Check every path and size every file first (so nothing is read for a plan
        that will be refused, and the progress total is right), then hash them all at
        once: the store hashes the files it has no cached digest for in parallel."""
        for local, path, _ in entries:
            _check_bundle_path(local, path)
        sized = [(local, path, force, local.stat().st_size) for local, path, force in entries]
        self._hash_total += sum(size for *_, size in sized)
        offset = self._hashed
        forward: Optional[ProgressCallback] = None
        if self.hash_progress is not None:
            report = self.hash_progress
            forward = lambda done, _total: report(offset + done, self._hash_total)  # noqa: E731
        digests = self.store.blob_digests([local for local, *_ in sized], progress=forward)
        self._hashed += sum(size for *_, size in sized)
        return [
            PlannedFile(local_path=local, path=path, sha256=digest, size=size,
                        as_blob=force_blob or size > self.blob_threshold)
            for (local, path, force_blob, size), digest in zip(sized, digests)
        ]

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
