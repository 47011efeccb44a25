"""The spec's flat analysis bundle: ``<run_id>.zip`` holding ``<run_id>/<file>`` for each
input and ``<run_id>/manifest.json`` (run_id, output_format, files with name, sha256
and size_bytes, metadata, recording_files).

Everything is checked before the first byte is written; each input is read once
(hashed while it is written into the zip, stored uncompressed: recordings are large
and barely compress); the zip is written under a temporary name beside its target and
renamed into place, so a failure leaves nothing behind.

This is the bundle the spec's in-container modules read
(``spikebatch.entrypoints.workspace`` / ``.sorting``). ``RunSession`` stages its own,
richer bundles (content-addressed blobs, per-recording paths); see ``domain.bundle``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterable, List, Literal, Mapping, Optional

from ...domain.errors import ConfigError

SupportedFormat = Literal["workspace", "sorting", "custom"]
FORMATS = ("workspace", "sorting", "custom")
MANIFEST_NAME = "manifest.json"
#: Names the bundle writer makes itself; an input may not carry one.
RESERVED_NAMES = frozenset({MANIFEST_NAME})
_CHUNK = 1024 * 1024


class BundleInputError(ConfigError, ValueError):
    """An argument of package_analysis_bundle that cannot make a bundle (a ValueError,
    as the spec raises)."""


def _check_run_id(run_id: Any) -> str:
    if not isinstance(run_id, str) or not run_id.strip() or any(c in run_id for c in "/\\\0") or run_id in (".", ".."):
        raise BundleInputError(f"run_id {run_id!r} must be one path component (no '/', '\\', '..'); "
                               "use e.g. a uuid4 hex")
    return run_id


def _check_inputs(input_paths: Iterable[Any]) -> List[Path]:
    paths = [Path(p).expanduser() for p in input_paths]
    seen: Dict[str, Path] = {}
    for path in paths:
        if path.name in RESERVED_NAMES:
            raise BundleInputError(f"input {str(path)!r} is named {path.name!r}, which the bundle's own manifest "
                                   "uses; rename the file")
        if path.name in seen:
            raise BundleInputError(f"inputs {str(seen[path.name])!r} and {str(path)!r} have the same file name "
                                   f"{path.name!r}; the flat bundle cannot hold both, rename one")
        seen[path.name] = path
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"input file not found: {path}")
        if not path.is_file():
            raise BundleInputError(f"input {str(path)!r} is not a file; the flat bundle holds files only")
    return paths


def _check_metadata(metadata: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise BundleInputError(f"metadata must be a dict, not {type(metadata).__name__}")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BundleInputError(f"metadata is not JSON ({exc}); convert paths, dates and arrays to plain "
                               "JSON values") from None
    return dict(metadata)


def _check_recordings(output_format: str, recording_files: Optional[Iterable[str]], names: List[str]) -> Optional[List[str]]:
    if recording_files is None:
        if output_format == "sorting":
            raise BundleInputError("recording_files is required when output_format is 'sorting': pass the file "
                                   "names of the inputs that are recordings")
        return None
    if isinstance(recording_files, str):
        raise BundleInputError("recording_files must be a list of file names, not one string")
    declared = sorted({Path(str(name)).name for name in recording_files})
    missing = [name for name in declared if name not in names]
    if missing:
        raise BundleInputError(f"recording_files names {missing[0]!r}, which is not the file name of any input; "
                               "add it to input_paths or fix the name")
    return declared


def _add_file(bundle: zipfile.ZipFile, source: Path, member: str) -> Dict[str, Any]:
    hasher = hashlib.sha256()
    size = 0
    info = zipfile.ZipInfo.from_file(source, member)
    info.compress_type = zipfile.ZIP_STORED
    with source.open("rb") as reader, bundle.open(info, "w", force_zip64=True) as writer:
        for block in iter(lambda: reader.read(_CHUNK), b""):
            hasher.update(block)
            writer.write(block)
            size += len(block)
    return {"name": source.name, "sha256": hasher.hexdigest(), "size_bytes": size}


def package_analysis_bundle(
    *,
    input_paths: Iterable[str],
    run_id: str,
    output_dir: str,
    output_format: SupportedFormat,
    metadata: Optional[Dict[str, object]] = None,
    recording_files: Optional[Iterable[str]] = None,
) -> str:
    """Write ``<output_dir>/<run_id>.zip`` (see the module doc) and return its absolute
    path. Refused before anything is written: an unknown ``output_format``, a sorting
    bundle without ``recording_files``, a ``run_id`` that is not one path component, an
    input named ``manifest.json``, two inputs with one file name, metadata that is not
    JSON (BundleInputError, a ValueError); a missing input (FileNotFoundError)."""
    if output_format not in FORMATS:
        raise BundleInputError(f"output_format {output_format!r} must be one of: {', '.join(FORMATS)}")
    _check_run_id(run_id)
    paths = _check_inputs(input_paths)
    meta = _check_metadata(metadata)
    recordings = _check_recordings(output_format, recording_files, [p.name for p in paths])
    target_dir = Path(output_dir).expanduser().resolve()
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{run_id}.zip"
    handle, partial_name = tempfile.mkstemp(prefix=f".{run_id}.", suffix=".zip.partial", dir=target_dir)
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as raw, zipfile.ZipFile(raw, "w", allowZip64=True) as bundle:
            bundle.writestr(zipfile.ZipInfo(f"{run_id}/"), b"")
            files = [_add_file(bundle, path, f"{run_id}/{path.name}") for path in paths]
            manifest: Dict[str, Any] = {"files": files, "metadata": meta, "output_format": output_format,
                                        "run_id": run_id}
            if recordings is not None:
                manifest["recording_files"] = recordings
            bundle.writestr(f"{run_id}/{MANIFEST_NAME}", json.dumps(manifest, indent=2, sort_keys=True),
                            compress_type=zipfile.ZIP_DEFLATED)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return str(target)
