"""BaseArtifactStore: what the three ArtifactStore adapters share -- the path layout,
content-addressed blobs with dedupe, verified atomic downloads (resumed after a dropped
connection); output listing and download come from RunOutputs (run_outputs.py).

An adapter subclasses BaseArtifactStore and implements its primitives (_stat, _upload,
_open_range, _list, _read, _write, _delete, and _incomplete / _abort for uploads left
unfinished); every public method of the port is written once here, so the three
adapters cannot drift apart in behaviour.

Uploads left unfinished. A multipart upload whose process was killed (SIGKILL, a lost
machine) or whose connection died stays on an S3 server, invisible to listings and
billed, until someone aborts it; the local store's analogue is a partial file. Once an
upload of an object has succeeded, every other unfinished upload of that same object is
aborted, whatever its age: the object now holds complete content, so such an upload is
either dead or a concurrent writer of the same key (two submissions of one recording,
whose content-addressed key holds the same bytes either way). That concurrent writer
then fails to finish its own upload, finds the object holding exactly the bytes it was
sending (size and sha256), and counts its upload as done. The rest -- uploads of
objects nobody uploads again -- ``list_incomplete_uploads`` / ``abort_incomplete_upload``
find and remove (``spikebatch clean``).
"""

from __future__ import annotations

import abc
import hashlib
import logging
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Iterable, Mapping, Optional, Sequence

from ...domain.errors import (
    ConfigError,
    IntegrityError,
    InvalidURIError,
    ObjectNotFoundError,
    StorageError,
    StorageUnavailableError,
)
from ...domain.models import StoragePathTemplates
from ...domain.storage_paths import STORAGE_CATEGORIES
from ...domain.storage_uri import StorageURI, parse_uri, relative_key_problem
from ...ports.storage import IncompleteUpload, ProgressCallback
from ..files.atomic import atomic_path
from ..files.digests import DigestCache, FileIdentity, check_unchanged
from .progress import Progress, TransferCancelled
from .retry import RetryPolicy
from .run_outputs import RunOutputs

#: Read size of download streams: what a dropped connection can lose (the partial
#: chunk is discarded and re-fetched by the resumed ranged GET).
STREAM_CHUNK = 1024 * 1024
_HEX64 = frozenset("0123456789abcdef")
#: S3's smallest part (every part but the last): a file below it is sent in one PUT by
#: both SDKs as configured here, so no multipart upload of it can be left behind.
S3_MIN_PART = 5 * 1024 * 1024

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    #: None when the object was written without spikebatch's metadata.
    sha256: Optional[str]


def _templates(value: Any) -> StoragePathTemplates:
    if value is None:
        return StoragePathTemplates()
    if isinstance(value, StoragePathTemplates):
        return value
    if isinstance(value, Mapping):
        return StoragePathTemplates.model_validate(dict(value))
    raise ConfigError(
        f"path_templates must be a StoragePathTemplates or a mapping, not {type(value).__name__}"
    )


def _uses_filename(template: str) -> bool:
    return any(name == "filename" for _, name, _, _ in string.Formatter().parse(template))


class BaseArtifactStore(RunOutputs, abc.ABC):
    """Port methods written against the adapter primitives below."""

    scheme = "s3"
    #: The folder behind file:// URIs; None for a store that is not on this filesystem.
    local_root: Optional[Path] = None
    retry = RetryPolicy()
    #: Files smaller than this cannot have left an unfinished upload of their object
    #: (see S3_MIN_PART), so a successful upload of one does not look for any.
    unfinished_upload_floor = S3_MIN_PART

    def __init__(self, *, prefix: Optional[str], path_templates: Any,
                 digest_cache: Optional[DigestCache] = None) -> None:
        self.path_templates = _templates(path_templates)
        self.prefix: Optional[str] = None
        if prefix:  # None or "" (the reference's spelling of "no prefix"): none
            parsed = parse_uri(prefix, scheme=self.scheme)
            self.prefix = str(parsed.as_prefix())
        self.digest_cache = digest_cache if digest_cache is not None else DigestCache()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r})"

    # --- primitives every adapter implements -------------------------------------
    @abc.abstractmethod
    def _stat(self, uri: StorageURI) -> Optional[ObjectInfo]:
        """Size and recorded sha256 of the object, or None when it does not exist."""

    @abc.abstractmethod
    def _upload(self, path: Path, uri: StorageURI, sha256: str, progress: Progress) -> None:
        """Store the file at ``uri`` with ``sha256`` as metadata; on failure leave no
        object and no multipart parts behind."""

    @abc.abstractmethod
    def _open_range(self, uri: StorageURI, start: int) -> ContextManager[Iterable[bytes]]:
        """The object's bytes from offset ``start`` on, as chunks; the connection is
        closed when the context ends, even half-read."""

    def _download(self, uri: StorageURI, tmp: Path, progress: Progress) -> str:
        """Write the object to ``tmp``; return the sha256 of what was written.

        One sequential stream, hashed on the way (no second pass over the file). A
        connection dropped mid-way is resumed from the last byte written (a ranged GET)
        instead of restarting a multi-GB download; the final sha256 check catches an
        object replaced in between.
        """
        hasher = hashlib.sha256()
        written = 0
        with open(tmp, "wb") as handle:
            for attempt in range(1, self.retry.attempts + 1):
                try:
                    with self._open_range(uri, written) as chunks:
                        for chunk in chunks:
                            handle.write(chunk)
                            hasher.update(chunk)
                            written += len(chunk)
                            progress.add(len(chunk))
                    return hasher.hexdigest()
                except StorageUnavailableError:
                    if attempt == self.retry.attempts:
                        raise
                    time.sleep(self.retry.backoff_seconds * 2 ** attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    @abc.abstractmethod
    def _list(self, prefix: StorageURI) -> list[tuple[StorageURI, int]]:
        """(URI, size) of every object under ``prefix``, folder markers excluded."""

    @abc.abstractmethod
    def _read(self, uri: StorageURI) -> tuple[bytes, Optional[str]]:
        """A small object's bytes and its recorded sha256 (None if absent)."""

    @abc.abstractmethod
    def _write(self, uri: StorageURI, data: bytes, sha256: str) -> None:
        """Store a small object with ``sha256`` as metadata."""

    @abc.abstractmethod
    def _delete(self, uri: StorageURI) -> None:
        """Remove the object (no error if it is already gone)."""

    @abc.abstractmethod
    def _incomplete(self, where: StorageURI, *, sizes: bool) -> list[IncompleteUpload]:
        """Unfinished uploads of the object ``where`` names, or of every object under
        it when it is a prefix; with ``sizes``, the bytes each has stored (else None).
        An upload that ends while being looked at is left out."""

    @abc.abstractmethod
    def _abort(self, uri: StorageURI, upload_id: str) -> bool:
        """Abort the unfinished upload ``upload_id`` of ``uri`` and free what it stored;
        False when it no longer exists."""

    # --- layout ------------------------------------------------------------------
    def _parse(self, uri: str, *, what: str = "object") -> StorageURI:
        parsed = parse_uri(uri, scheme=self.scheme)
        if what == "object" and parsed.is_prefix:
            raise InvalidURIError(
                f"{uri} ends with '/', so it names a prefix, not an object; add the file name"
            )
        return parsed

    def _render(self, category: str, *, run_id: str = "", filename: str = "") -> str:
        try:
            return self.path_templates.render(category, prefix=self.prefix, run_id=run_id,
                                              filename=filename)
        except InvalidURIError:
            raise
        except ConfigError as exc:
            # Same text, but a StorageError too, as the port promises.
            raise InvalidURIError(exc.message) from None

    @staticmethod
    def _check_run_id(run_id: str) -> None:
        problem = relative_key_problem(run_id) if isinstance(run_id, str) else "it is not a string"
        if problem or "/" in run_id:
            raise InvalidURIError(
                f"run_id {run_id!r} cannot be part of a storage path "
                f"({problem or 'it contains /'}); use the run id spikebatch generated"
            )

    def build_uri(self, *, run_id: str, filename: str, category: str = "inputs") -> str:
        template = getattr(self.path_templates, category, None) if category in STORAGE_CATEGORIES else None
        if template is not None and not _uses_filename(template):
            # outputs / logs: the run's prefix, whatever the filename (the reference's
            # templates ignore it too); ask download_output / list_output_files for files.
            self._check_run_id(run_id)
            return str(self._parse(self._render(category, run_id=run_id), what="prefix").as_prefix())
        if category == "blobs":
            if len(filename) != 64 or not set(filename) <= _HEX64:
                raise InvalidURIError(
                    f"blob filename {filename!r} must be a lower-case sha256 hex digest; "
                    "use put_blob() to store a file by content"
                )
        else:
            self._check_run_id(run_id)
            problem = relative_key_problem(filename) if isinstance(filename, str) else "not a string"
            if problem or filename.endswith("/"):
                raise InvalidURIError(
                    f"filename {filename!r} for run {run_id!r} is not a safe relative name "
                    f"({problem or 'it ends with /'}); use a plain file name"
                )
        return str(self._parse(self._render(category, run_id=run_id, filename=filename)))

    def output_prefix_for_run(self, run_id: str) -> str:
        self._check_run_id(run_id)
        if not self.prefix:
            return ""
        return str(self._parse(self._render("outputs", run_id=run_id), what="prefix").as_prefix())

    def logs_prefix_for_run(self, run_id: str) -> str:
        self._check_run_id(run_id)
        if not self.prefix:
            return ""
        return str(self._parse(self._render("logs", run_id=run_id), what="prefix").as_prefix())

    # --- uploads -----------------------------------------------------------------
    @staticmethod
    def _local_file(local_path: str | Path) -> tuple[Path, FileIdentity]:
        path = Path(local_path)
        if not path.is_file():
            raise ObjectNotFoundError(
                f"local file {path} does not exist or is not a regular file; check the path"
            )
        return path, FileIdentity.of(path)

    def _store(self, path: Path, identity: FileIdentity, target: StorageURI, digest: str,
               progress: Optional[ProgressCallback]) -> str:
        tracker = Progress(progress, identity.size)
        try:
            try:
                self._upload(path, target, digest, tracker)
            except StorageError:
                # A concurrent upload of the same object may have finished first and
                # aborted this one (see the module's docstring): done if it stored
                # these bytes.
                if not self._holds(target, identity.size, digest):
                    raise
                tracker.finish()
        except TransferCancelled as exc:
            raise exc.reason from None
        try:
            check_unchanged(path, identity, str(target))
        except IntegrityError:
            self._delete(target)
            raise
        if identity.size >= self.unfinished_upload_floor:
            self._abort_unfinished_uploads_of(target)
        return str(target)

    def _holds(self, target: StorageURI, size: int, digest: str) -> bool:
        """Whether ``target`` holds ``size`` bytes recorded with sha256 ``digest``
        (False too when the store cannot be asked)."""
        try:
            info = self._stat(target)
        except StorageError:
            return False
        return info is not None and info.size == size and info.sha256 == digest

    def _abort_unfinished_uploads_of(self, target: StorageURI) -> None:
        """Abort every unfinished upload of ``target``, which now holds complete
        content. The upload itself has succeeded, so failing here (credentials that
        may write objects but not list or abort uploads) only leaves them for
        ``spikebatch clean``."""
        try:
            for upload in self._incomplete(target, sizes=False):
                if self._abort(target, upload.upload_id):
                    log.info("aborted an unfinished upload of %s started %s", target,
                             upload.initiated.isoformat())
        except StorageError as exc:
            log.info("unfinished uploads of %s are left for `spikebatch clean`: %s", target, exc.message)

    def upload_file(self, *, local_path: str | Path, s3_uri: str,
                    progress: Optional[ProgressCallback] = None) -> str:
        target = self._parse(s3_uri)
        path, identity = self._local_file(local_path)
        digest = self.digest_cache.digest(path)
        return self._store(path, identity, target, digest, progress)

    def upload_bundle(self, *, local_zip: str | Path, run_id: str) -> str:
        uri = self.build_uri(run_id=run_id, filename=Path(local_zip).name, category="inputs")
        return self.upload_file(local_path=local_zip, s3_uri=uri)

    def blob_digest(self, local_path: str | Path, progress: Optional[ProgressCallback] = None) -> str:
        path, _ = self._local_file(local_path)
        return self.digest_cache.digest(path, progress)

    def blob_digests(self, paths: Sequence[str | Path],
                     progress: Optional[ProgressCallback] = None) -> list[str]:
        # Every path is checked before the first file is read.
        files = [self._local_file(path)[0] for path in paths]
        return self.digest_cache.digests(files, progress)

    def _blob_target(self, digest: str) -> StorageURI:
        return self._parse(self.build_uri(run_id="", filename=digest, category="blobs"))

    @staticmethod
    def _same_blob(existing: Optional[ObjectInfo], size: int, digest: str) -> bool:
        """Whether a stored object holds the blob: put_blob's test for skipping."""
        return existing is not None and existing.size == size and existing.sha256 == digest

    def has_blob(self, sha256: str, size: int) -> bool:
        return self._same_blob(self._stat(self._blob_target(sha256)), size, sha256)

    def put_blob(self, local_path: str | Path, progress: Optional[ProgressCallback] = None) -> str:
        path, identity = self._local_file(local_path)
        digest = self.digest_cache.digest(path)
        target = self._blob_target(digest)
        existing = self._stat(target)
        if self._same_blob(existing, identity.size, digest):
            # Same bytes already stored: nothing to send. Report completion so a
            # progress bar does not stay at zero.
            try:
                Progress(progress, identity.size).finish()
            except TransferCancelled as exc:
                raise exc.reason from None
            if identity.size >= self.unfinished_upload_floor:
                # A process killed while uploading these bytes next to one that finished.
                self._abort_unfinished_uploads_of(target)
            return str(target)
        return self._store(path, identity, target, digest, progress)

    # --- downloads ---------------------------------------------------------------
    def download_file(self, *, s3_uri: str, local_path: str | Path,
                      progress: Optional[ProgressCallback] = None,
                      expected_sha256: Optional[str] = None, read_only: bool = False) -> str:
        """Download one object; when ``local_path`` is an existing folder the object
        keeps its name inside it. ``read_only`` lets a local store link instead of
        copying (see the port); a remote store always writes a copy. Returns the path
        written (a string, as the reference's)."""
        source = self._parse(s3_uri)
        dest = Path(local_path)
        if dest.is_dir():
            dest = dest / source.name
        info = self._stat(source)
        if info is None:
            raise ObjectNotFoundError(
                f"object {source} not found; check the run id and file name "
                "(list_outputs shows what a run wrote)"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest, fsync=True) as tmp:
            try:
                digest = self._download(source, tmp, Progress(progress, info.size))
            except TransferCancelled as exc:
                raise exc.reason from None
            size = tmp.stat().st_size
            if size != info.size:
                raise IntegrityError(
                    f"download of {source} gave {size} bytes, expected {info.size}; "
                    "nothing was written -- retry the download"
                )
            if info.sha256 is not None:
                if digest != info.sha256:
                    raise IntegrityError(
                        f"download of {source} has sha256 {digest}, but the object records "
                        f"{info.sha256}; nothing was written -- retry, and re-upload the "
                        "object if this persists"
                    )
            if expected_sha256 is not None and digest != expected_sha256:
                raise IntegrityError(
                    f"download of {source} has sha256 {digest}, not the expected {expected_sha256}; "
                    "nothing was written -- the object changed since it was recorded"
                )
        return str(dest)

    # --- small objects -----------------------------------------------------------
    def exists(self, uri: str) -> bool:
        return self._stat(self._parse(uri)) is not None

    def read_bytes(self, uri: str) -> bytes:
        source = self._parse(uri)
        data, recorded = self._read(source)
        if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
            raise IntegrityError(
                f"{source} does not match its recorded sha256; re-write the object"
            )
        return data

    def write_bytes(self, uri: str, data: bytes) -> str:
        target = self._parse(uri)
        self._write(target, bytes(data), hashlib.sha256(data).hexdigest())
        return str(target)

    # --- unfinished uploads ------------------------------------------------------
    def list_incomplete_uploads(self, prefix: str) -> list[IncompleteUpload]:
        where = self._parse(prefix, what="prefix").as_prefix()
        return sorted(self._incomplete(where, sizes=True), key=lambda u: (u.uri, u.initiated, u.upload_id))

    def abort_incomplete_upload(self, upload: IncompleteUpload) -> bool:
        return self._abort(self._parse(upload.uri), upload.upload_id)
