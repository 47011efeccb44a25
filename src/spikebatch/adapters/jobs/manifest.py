"""The manifest a caller hands a backend: read from a dict, a Path, a path string or
YAML text, checked to be one batch/v1 Job, and pinned to the backend's namespace."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ...domain.documents import MANIFEST_LIMITS, parse_yaml_documents
from ...domain.errors import ConfigError, InvalidManifestError, JobTooLargeError, NamespaceMismatchError
from ...ports.backend import ManifestInput

#: What etcd says (through the API server, as HTTP 500) about an object over its
#: request limit (1.5 MiB by default), which the API server's own 3 MiB limit let by.
ETCD_TOO_LARGE = "request is too large"
#: The largest Job (as JSON) the cluster adapters send. The API server takes request
#: bodies up to 3 MiB (larger: HTTP 413), but etcd stores objects up to 1.5 MiB by
#: default; a Job between the two passes a server-side dry run and then fails its real
#: create with a baffling "controller-uid ... must be" error (the API server retries the
#: refused write), after the inputs were uploaded.
MAX_JOB_BYTES = 1536 * 1024


def check_job_size(body: Mapping[str, Any], max_bytes: Optional[int], *, target: str, where: str) -> None:
    """JobTooLargeError when ``body`` as JSON is over ``max_bytes`` (None: no limit)."""
    if max_bytes is None:
        return
    size = len(json.dumps(body, separators=(",", ":")).encode("utf-8"))
    if size > max_bytes:
        raise too_large(target, where, f"{size / 1048576:.1f} MiB as JSON, over the {max_bytes / 1048576:g} MiB "
                        "an object may have in etcd by default")


def too_large(target: str, where: str, detail: str) -> JobTooLargeError:
    """The one line for a Job the API server refuses for its size (HTTP 413, or etcd's
    limit): bad input, so exit 2, with what to do instead."""
    return JobTooLargeError(
        f"{target} is too large for Kubernetes {where} ({detail}): its env values, "
        "arguments or command carry too much inline data; keep them small and pass large data as a "
        "file instead (an --input file of the bundle, a volume, or an object in storage)")


def load_manifest(manifest: ManifestInput) -> dict[str, Any]:
    """A Job manifest as a fresh dict, from a dict, a Path, a path string or YAML text."""
    if isinstance(manifest, Mapping):
        return copy.deepcopy(dict(manifest))
    if isinstance(manifest, Path) or (isinstance(manifest, str) and _looks_like_path(manifest)):
        path = Path(manifest).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else f"not UTF-8 text ({exc.reason} at offset {exc.start})"
            raise InvalidManifestError(f"cannot read manifest file {str(path)!r}: {reason or exc}") from exc
        source = str(path)
    elif isinstance(manifest, str):
        text, source = manifest, "manifest text"
    else:
        raise InvalidManifestError(
            f"a manifest must be YAML text, a path or a dict, not {type(manifest).__name__}")
    try:
        # Within the size, nesting and alias limits of every YAML spikebatch reads.
        docs = [d for d in parse_yaml_documents(text, source, limits=MANIFEST_LIMITS) if d is not None]
    except ConfigError as exc:
        raise InvalidManifestError(exc.message) from None
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InvalidManifestError(f"{source} must hold exactly one Job object (found {len(docs)} documents)")
    return docs[0]


def _looks_like_path(text: str) -> bool:
    # YAML text of a Job always spans lines or braces; a single line that names an
    # existing file, or ends like a manifest file name, is a path.
    if "\n" in text or text.lstrip().startswith("{"):
        return False
    return os.path.exists(os.path.expanduser(text)) or text.endswith((".yaml", ".yml", ".json"))


def prepare_job_manifest(manifest: ManifestInput, namespace: str) -> dict[str, Any]:
    """Load ``manifest``, check it is a batch/v1 Job, and pin it to ``namespace``.

    A manifest naming another namespace is refused (never silently moved)."""
    body = load_manifest(manifest)
    kind, api = body.get("kind"), body.get("apiVersion")
    if kind != "Job" or api != "batch/v1":
        raise InvalidManifestError(
            f"the manifest is {api or '?'}/{kind or '?'}; a backend submits batch/v1 Jobs only",
            [f"kind: expected Job (apiVersion batch/v1), got {kind!r} ({api!r})"])
    meta = body.get("metadata")
    if meta is None:
        meta = body["metadata"] = {}
    if not isinstance(meta, dict):
        raise InvalidManifestError("the manifest's metadata must be a mapping", ["metadata: not a mapping"])
    theirs = meta.get("namespace")
    if theirs not in (None, "") and theirs != namespace:
        raise NamespaceMismatchError(
            f"the manifest targets namespace {theirs!r} but this backend works in {namespace!r}; "
            "render the manifest for this namespace or build the backend with namespace="
            f"{theirs!r}")
    meta["namespace"] = namespace
    if not meta.get("name") and not meta.get("generateName"):
        raise InvalidManifestError("the Job manifest has no metadata.name",
                                   ["metadata.name: Required value: name or generateName is required"])
    return body
