"""The bundle manifest: what a job's inputs are, with sizes and sha256 digests.

A bundle is a zip (``bundle.zip`` under the run's inputs path) holding
``manifest.json`` and the small files. Large files (recordings, big inputs) are not
copied into it: they are staged once as content-addressed blobs and the manifest
refers to them by URI, digest and size. The runner verifies every file it fetches
against this manifest before anything runs.
"""

from __future__ import annotations

import posixpath
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import ConfigError, UnsafePathError
from .local_files import shown_path

BUNDLE_FORMAT_VERSION = 1
BUNDLE_FILENAME = "bundle.zip"
MANIFEST_NAME = "manifest.json"
#: Result marker the runner writes under OUTPUT_PREFIX when it finishes.
RESULT_NAME = "result.json"
#: The runner's last line on stdout: ``SPIKEBATCH_RESULT status=succeeded|failed [reason=...]``.
RESULT_MARKER = "SPIKEBATCH_RESULT"
RUNNER_LOG_NAME = "runner.log"

# Where things live inside the job's work folder (and the bundle).
SCRIPT_DIR = "script"
INPUTS_DIR = "inputs"
WORKSPACE_DIR = "workspace"
RECORDINGS_DIR = "recordings"
OUTPUTS_DIR = "outputs"

#: Basenames a user's file may not take: the runner's own files would be shadowed.
RESERVED_NAMES = frozenset({MANIFEST_NAME, RESULT_NAME, RUNNER_LOG_NAME, BUNDLE_FILENAME})

#: Files larger than this are staged as content-addressed blobs instead of zipped.
DEFAULT_BLOB_THRESHOLD = 8 * 1024 * 1024


def safe_relative_path(path: str) -> str:
    """``path`` as a normalised POSIX relative path that stays inside its folder."""
    if not path or "\\" in path or "\x00" in path:
        raise UnsafePathError(f"path {path!r} is not a plain relative path")
    if path.startswith("/") or posixpath.isabs(path):
        raise UnsafePathError(f"path {path!r} is absolute; bundle paths must be relative")
    normal = posixpath.normpath(path)
    if normal == "." or normal.startswith("../") or normal == ".." or "/../" in f"/{normal}/":
        raise UnsafePathError(f"path {path!r} escapes its folder")
    return normal


def bundle_name_problem(name: str) -> Optional[str]:
    """Why a file or folder name cannot travel in a bundle as it is, or None.

    The manifest is UTF-8 JSON and its paths are POSIX paths the runner recreates, so a
    name must be UTF-8 (a name the OS could not decode holds surrogate escapes), hold
    no backslash (a separator to zip tools and Windows; ``safe_relative_path`` refuses
    it) and no control character (it would break the one-line messages that name it).
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    if "\\" in name:
        return "has a backslash ('\\') in its name, which a bundle path cannot hold"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        return "has a control character (a newline, a tab, NUL, ...) in its name"
    return None


def check_user_basename(name: str, what: str) -> str:
    """A user file's basename must be usable as is and not shadow the runner's files."""
    problem = bundle_name_problem(name)
    if problem:
        raise ConfigError(f"{what} {shown_path(name)} {problem}; rename the file")
    if name in RESERVED_NAMES:
        raise ConfigError(f"{what} {name!r} uses a reserved name ({', '.join(sorted(RESERVED_NAMES))}); rename the file")
    if name.startswith(".") or "/" in name or not name:
        raise ConfigError(f"{what} {name!r} must be a plain, non-hidden file name; rename the file")
    return name


class BundleFile(BaseModel):
    """One file of the job's inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Path inside the work folder (POSIX, relative).
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    #: "bundle": inside bundle.zip; "blob": staged separately at ``uri``.
    source: Literal["bundle", "blob"] = "bundle"
    uri: Optional[str] = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        try:
            return safe_relative_path(value)
        except UnsafePathError as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _blob_has_uri(self) -> "BundleFile":
        if self.source == "blob" and not self.uri:
            raise ValueError(f"blob file {self.path!r} needs its uri")
        return self


class RecordingEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Name of the recording (its basename): the result's namespace.
    name: str
    #: Path inside the work folder of the recording file or folder.
    path: str
    #: A batch's recordings: what identifies the sorting result (``domain.batch``),
    #: and where the runner records it once sorted, for later runs to reuse.
    cache_key: Optional[str] = None
    cache_uri: Optional[str] = None


class BundleManifest(BaseModel):
    """``manifest.json`` of a bundle."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = BUNDLE_FORMAT_VERSION
    run_id: str
    job_type: Literal["workspace", "sorting"]
    #: Workspace codec name ("directory", "spikelab") for workspace jobs; the result
    #: workspace's codec is chosen by the runner.
    format: str
    script: Optional[str] = None
    files: List[BundleFile] = Field(default_factory=list)
    metadata: Dict[str, Any] = Field(default_factory=dict)
    recordings: List[RecordingEntry] = Field(default_factory=list)
    #: For sorting jobs: {"sorter": name, "config": {...}}.
    sorting: Optional[Dict[str, Any]] = None
    created_at: Optional[str] = None

    @model_validator(mode="after")
    def _consistent(self) -> "BundleManifest":
        paths = [f.path for f in self.files]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise ValueError(f"bundle lists these paths twice: {', '.join(repeated)}")
        if self.job_type == "workspace" and not self.script:
            raise ValueError("a workspace bundle needs its script")
        if self.job_type == "sorting" and (not self.recordings or not self.sorting):
            raise ValueError("a sorting bundle needs recordings and a sorting config")
        return self

    def file(self, path: str) -> BundleFile:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)

    @property
    def blobs(self) -> List[BundleFile]:
        return [f for f in self.files if f.source == "blob"]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)
