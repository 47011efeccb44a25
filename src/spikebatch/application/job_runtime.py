"""The steps the runner takes inside the job: fetch and verify the bundle, run the
script or the sorter, upload what came out. ``runner.run_in_job`` puts them in order.

Written against the ports; the composition root supplies the store, codecs and sorter.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, List, Optional, TextIO, Tuple

from ..domain.bundle import (
    BUNDLE_FILENAME,
    MANIFEST_NAME,
    OUTPUTS_DIR,
    RESULT_NAME,
    SCRIPT_DIR,
    WORKSPACE_DIR,
    BundleManifest,
    safe_relative_path,
)
from ..domain.errors import IntegrityError, SpikebatchError
from ..ports.sorter import Sorter
from ..ports.storage import ArtifactStore
from ..ports.workspace import WorkspaceCodec

_CHUNK = 1024 * 1024


def _inside(root: Path, relative: str) -> Path:
    """``root/relative`` for a path named by the bundle. The pure check refuses
    absolute paths and ``..``; symlinks cannot lead out, because ``root`` is a folder
    the runner has just made and it writes only regular files into it."""
    return root / safe_relative_path(relative)


class BundleFetcher:
    """Downloads a bundle and its blobs into ``work_dir`` (a new folder), verifying
    every byte against the bundle's manifest."""

    def __init__(self, store: ArtifactStore, work_dir: Path) -> None:
        self.store = store
        self.work_dir = work_dir
        work_dir.mkdir(parents=True)

    def fetch(self, bundle_uri: str, only_recording: Optional[str] = None) -> BundleManifest:
        """Fetch and verify the bundle; with ``only_recording`` (a recording's name) the
        files of the other recordings are left where they are: a batch pod sorts one
        recording of hundreds and downloads just that one."""
        zip_path = self.work_dir.parent / BUNDLE_FILENAME
        self.store.download_file(s3_uri=bundle_uri, local_path=zip_path)
        try:
            bundle = zipfile.ZipFile(zip_path)
        except zipfile.BadZipFile:
            raise IntegrityError(f"bundle {bundle_uri} is not a zip archive; re-submit the job") from None
        with bundle:
            try:
                manifest = BundleManifest.model_validate_json(bundle.read(MANIFEST_NAME))
            except KeyError:
                raise IntegrityError(f"bundle {bundle_uri} has no {MANIFEST_NAME}; re-submit the job") from None
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                # A manifest that fails validation is bad input, not a crash of the runner:
                # exit 2 like any other input the job cannot use.
                first = str(exc).splitlines()
                detail = " ".join(first[1:3]).strip() if len(first) > 1 else str(exc)
                raise IntegrityError(f"bundle {bundle_uri} has an invalid {MANIFEST_NAME} ({detail}); "
                                     "re-submit the job with this version of spikebatch") from None
            listed = {f.path for f in manifest.files if f.source == "bundle"} | {MANIFEST_NAME}
            for member in bundle.namelist():
                if member not in listed:
                    # Only files the manifest vouches for are extracted.
                    raise IntegrityError(f"bundle member {member!r} is not listed in {MANIFEST_NAME}")
            skipped = _other_recordings(manifest, only_recording)
            for entry in manifest.files:
                if entry.source != "bundle" or _is_under(entry.path, skipped):
                    continue
                target = _inside(self.work_dir, entry.path)
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(entry.path) as source, target.open("wb") as sink:
                    digest = _copy_hashing(source, sink)
                self._verify(target, digest, entry.sha256, entry.size, entry.path)
        zip_path.unlink()
        recordings = _recording_paths(manifest)
        fetched = [f for f in manifest.files if not _is_under(f.path, skipped)]
        for entry in manifest.blobs:
            if _is_under(entry.path, skipped):
                continue
            target = _inside(self.work_dir, entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            # The store hashes the bytes as they arrive and refuses any other content. A
            # recording is only read (by the sorter): a local store may link it instead
            # of writing a copy of a multi-GB file.
            self.store.download_file(s3_uri=entry.uri, local_path=target, expected_sha256=entry.sha256,
                                     read_only=_is_under(entry.path, recordings))
            self._verify(target, entry.sha256, entry.sha256, entry.size, entry.path)
        print(f"fetched {len(fetched)} files ({sum(f.size for f in fetched)} bytes), all verified", flush=True)
        return manifest

    @staticmethod
    def _verify(path: Path, digest: str, sha256: str, size: int, name: str) -> None:
        actual_size = path.stat().st_size
        if actual_size != size:
            raise IntegrityError(f"{name}: size {actual_size} != {size} recorded in the bundle; re-submit the job")
        if digest != sha256:
            raise IntegrityError(f"{name}: sha256 differs from the bundle manifest; the input changed or was corrupted")


def _recording_paths(manifest: BundleManifest) -> List[str]:
    """The bundle paths of a sorting job's recordings (files or folders)."""
    if manifest.job_type != "sorting":
        return []  # a workspace job's files may be written by its script or codec
    return [safe_relative_path(r.path) for r in manifest.recordings]


def _other_recordings(manifest: BundleManifest, only: Optional[str]) -> List[str]:
    """The bundle paths of every recording but the one named ``only`` (none when
    ``only`` is None); an unknown name is an error of the job's configuration."""
    if only is None:
        return []
    if only not in {r.name for r in manifest.recordings}:
        raise SpikebatchError(f"recording {only!r} is not in the bundle; re-submit the batch")
    return [safe_relative_path(r.path) for r in manifest.recordings if r.name != only]


def _is_under(path: str, folders: List[str]) -> bool:
    normal = safe_relative_path(path)
    return any(normal == f or normal.startswith(f + "/") for f in folders)


def _copy_hashing(source: BinaryIO, sink: BinaryIO) -> str:
    """Copy ``source`` to ``sink``; the sha256 of what was copied."""
    hasher = hashlib.sha256()
    for block in iter(lambda: source.read(_CHUNK), b""):
        hasher.update(block)
        sink.write(block)
    return hasher.hexdigest()


class LogTee:
    """Copies everything printed to stdout/stderr into a log file as well."""

    class _Stream:
        def __init__(self, original: TextIO, log: TextIO) -> None:
            self.original, self.log = original, log

        def write(self, text: str) -> int:
            self.log.write(text)
            return self.original.write(text)

        def flush(self) -> None:
            self.log.flush()
            self.original.flush()

        def __getattr__(self, name: str) -> Any:
            return getattr(self.original, name)

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> "LogTee":
        self._log = self.path.open("w", encoding="utf-8")
        self._saved = sys.stdout, sys.stderr
        sys.stdout = self._Stream(sys.stdout, self._log)  # type: ignore[assignment]
        sys.stderr = self._Stream(sys.stderr, self._log)  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = self._saved
        self._log.close()


def run_workspace_script(
    manifest: BundleManifest,
    work_dir: Path,
    output_dir: Path,
    script_name: Optional[str],
    codec: WorkspaceCodec,
) -> Tuple[bool, str]:
    """Run the user's script with ``workspace`` (and ``output_dir``) as globals; on
    success save the workspace into ``output_dir/workspace``. Returns (ok, reason)."""
    if not script_name:
        raise SpikebatchError("no script: SCRIPT_NAME is unset and the bundle names none")
    script = _inside(work_dir, f"{SCRIPT_DIR}/{script_name}")
    if not script.is_file():
        raise SpikebatchError(f"script {script_name!r} is not in the bundle; check SCRIPT_NAME")
    workspace = codec.open(work_dir / WORKSPACE_DIR)
    user_outputs = output_dir / OUTPUTS_DIR
    user_outputs.mkdir(parents=True, exist_ok=True)
    print(f"running {script_name} on a {codec.name} workspace", flush=True)
    try:
        runpy.run_path(
            str(script),
            init_globals={
                "workspace": workspace,
                "output_dir": str(user_outputs),
                "inputs_dir": str(work_dir / "inputs"),
                "metadata": dict(manifest.metadata),
            },
            run_name="__main__",
        )
    except SystemExit as exc:
        if exc.code not in (None, 0):
            print(f"script {script_name} exited with status {exc.code}", flush=True)
            return False, f"script exited with status {exc.code}"
    except BaseException as exc:  # any error of the user's script is reported, not raised
        traceback.print_exc()
        return False, f"script raised {type(exc).__name__}: {exc}"
    result_dir = output_dir / WORKSPACE_DIR
    result_dir.mkdir(parents=True, exist_ok=True)
    codec.commit(workspace, result_dir)
    print(f"script {script_name} finished; workspace saved", flush=True)
    return True, ""


def run_sorting(
    manifest: BundleManifest,
    work_dir: Path,
    output_dir: Path,
    sorter: Sorter,
    result_codec: WorkspaceCodec,
    result_items: Callable[[Any, Any], dict],
) -> Tuple[bool, str]:
    """Sort every recording into ``output_dir/<recording>/`` and gather the results in a
    workspace with one namespace per recording. Returns (ok, reason)."""
    config = dict((manifest.sorting or {}).get("config") or {})
    result_dir = output_dir / WORKSPACE_DIR
    result_dir.mkdir(parents=True, exist_ok=True)
    workspace = result_codec.open(result_dir)
    failures: List[str] = []
    for entry in manifest.recordings:
        recording = _inside(work_dir, entry.path)
        target = output_dir / entry.name
        target.mkdir(parents=True, exist_ok=True)
        print(f"sorting {entry.name} with {sorter.name}", flush=True)
        try:
            outcome = sorter.sort(recording, config, target)
        except SpikebatchError as exc:
            print(f"sorting {entry.name} failed: {exc.message}", flush=True)
            failures.append(entry.name)
            continue
        except Exception as exc:  # a sorter crash on one recording must not hide the others
            traceback.print_exc()
            print(f"sorting {entry.name} failed: {type(exc).__name__}: {exc}", flush=True)
            failures.append(entry.name)
            continue
        for key, value in result_items(outcome, workspace).items():
            workspace.store(entry.name, key, value)
        print(f"sorted {entry.name}: {outcome.unit_count} units", flush=True)
    result_codec.commit(workspace, result_dir)
    if failures:
        return False, "sorting failed for " + ", ".join(failures)
    return True, ""


def upload_tree(store: ArtifactStore, folder: Path, prefix: str) -> List[str]:
    """Upload every file under ``folder`` to ``prefix`` + its relative path."""
    uris = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        uri = prefix + path.relative_to(folder).as_posix()
        store.upload_file(local_path=path, s3_uri=uri)
        uris.append(uri)
    return uris


def write_result(store: ArtifactStore, output_prefix: str, **fields: Any) -> None:
    """``result.json`` under the output prefix: how the run ended, for retrieve_result."""
    store.write_bytes(output_prefix + RESULT_NAME, json.dumps(fields, indent=2, sort_keys=True).encode())
