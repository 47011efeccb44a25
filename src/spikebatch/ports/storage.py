"""The ArtifactStore port: where bundles, blobs, outputs and logs live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence, runtime_checkable

#: Called as ``progress(bytes_done, bytes_total)`` while a transfer runs. ``bytes_total``
#: is the full size of the transfer, so a progress bar can show rate and ETA.
ProgressCallback = Callable[[int, int], None]

#: How many files staging uploads at once by default (each may itself send several
#: parts at once); the S3 adapters size their connection pools for it.
PARALLEL_UPLOADS = 4


@dataclass(frozen=True)
class IncompleteUpload:
    """An upload that was started and never finished: an S3 multipart upload neither
    completed nor aborted (what a killed process or a dead connection leaves; the server
    keeps its parts, and bills them, until it is aborted), or a local store's partial
    file."""

    #: The object the upload was writing.
    uri: str
    #: The server's upload id (for the local store: the partial file's name).
    upload_id: str
    #: When it was started (local store: last written), timezone-aware UTC.
    initiated: datetime
    #: Bytes stored so far, when the store can tell.
    size: Optional[int] = None


@runtime_checkable
class ArtifactStore(Protocol):
    """Object storage addressed by URIs (``s3://bucket/key`` or ``file:///abs/path``).

    Path layout follows the profile's StoragePathTemplates under ``prefix``.
    Every method raises subclasses of ``spikebatch.domain.errors.StorageError``.
    """

    #: The URI scheme this store reads and writes: "s3" or "file".
    scheme: str
    #: Root URI under which the path templates expand (ends with "/").
    prefix: Optional[str]
    #: For file:// stores, the folder their URIs must lie under: a runner on the same
    #: machine has to open the store at the same folder. None for remote stores.
    local_root: Optional[Path]

    def build_uri(self, *, run_id: str, filename: str, category: str = "inputs") -> str:
        """URI for ``filename`` of ``run_id`` in ``category`` (inputs | outputs | logs |
        blobs). A category whose template has no ``{filename}`` (outputs and logs by
        default) gives the run's prefix and ignores ``filename``, as the reference's
        templates do; an unknown category is refused."""

    def output_prefix_for_run(self, run_id: str) -> str:
        """URI prefix (ending "/") under which a run's outputs are written; "" when
        the store has no prefix."""

    def logs_prefix_for_run(self, run_id: str) -> str:
        """URI prefix (ending "/") under which a run's logs are written; "" when the
        store has no prefix."""

    def upload_file(
        self, *, local_path: str | Path, s3_uri: str, progress: Optional[ProgressCallback] = None
    ) -> str:
        """Upload one file (streamed, multipart when large, sha256 recorded as object
        metadata) and return its URI."""

    def upload_bundle(self, *, local_zip: str | Path, run_id: str) -> str:
        """Upload a bundle file under the inputs template for ``run_id``; return its URI."""

    def put_blob(self, local_path: str | Path, progress: Optional[ProgressCallback] = None) -> str:
        """Store a file under a content-addressed key (from its sha256); skip the upload
        when an object with that digest and size already exists. Return its URI."""

    def blob_digest(self, local_path: str | Path, progress: Optional[ProgressCallback] = None) -> str:
        """The file's sha256 hex digest, cached by (path, size, mtime, inode);
        ``progress(bytes_hashed, file_size)`` follows the read."""

    def blob_digests(self, paths: Sequence[str | Path],
                     progress: Optional[ProgressCallback] = None) -> list[str]:
        """The sha256 hex digest of each file of ``paths``, in order, every path checked
        before any file is read. Files whose digest is cached (unchanged path, size,
        mtime, inode) are not read again; the others are hashed in parallel, one process
        per core. ``progress(bytes_hashed, total)`` follows all of them together
        (``total``: the sum of their sizes; cached files count at once)."""

    def has_blob(self, sha256: str, size: int) -> bool:
        """Whether ``put_blob`` of a file with this digest and size would skip the
        upload: an object with that sha256 recorded and that size is stored."""

    def download_file(
        self,
        *,
        s3_uri: str,
        local_path: str | Path,
        progress: Optional[ProgressCallback] = None,
        expected_sha256: Optional[str] = None,
        read_only: bool = False,
    ) -> str:
        """Download one object atomically, verified against its recorded sha256 and,
        when given, ``expected_sha256`` (hashed on the way: no second read). On a
        mismatch IntegrityError is raised and nothing is left at ``local_path``.

        ``read_only``: the caller only reads the file. A store on this filesystem may
        then place a link to its own copy instead of writing another one (a reflink, or
        a hard link or symlink to the object made read-only); the file at
        ``local_path`` must not be written to, and removing it leaves the object.
        Returns the path written, as a string (inside ``local_path`` when that is a
        folder)."""

    def download_outputs(
        self,
        *,
        output_prefix: str,
        local_dir: str | Path,
        progress: Optional[ProgressCallback] = None,
    ) -> list[Path]:
        """Download every object under ``output_prefix`` into ``local_dir`` (keys mapped
        to relative paths, each passing the path-traversal guard); return the paths."""

    def list_outputs(self, output_prefix: str) -> list[str]:
        """URIs of every object under ``output_prefix``, sorted."""

    # --- the reference's run-addressed calls (spikelab.batch_jobs.storage_s3) -----
    #: The most keys ``list_output_files`` returns before it refuses (ValueError).
    DEFAULT_LIST_OUTPUT_LIMIT: int

    def list_output_files(self, run_id: str, *, max_keys: Optional[int] = None) -> list[str]:
        """Object keys (no scheme or bucket) under the run's output prefix, sorted; []
        when no prefix is configured. More than ``max_keys`` (default
        DEFAULT_LIST_OUTPUT_LIMIT) objects raise a ConfigError (a ValueError)."""

    def download_output(self, *, run_id: str, filename: str, local_dir: str | Path) -> str:
        """Download ``filename`` from the run's output prefix into ``local_dir``; return
        the local path (a string). A ``filename`` leading outside ``local_dir`` is
        refused before anything is read."""

    def exists(self, uri: str) -> bool:
        """Whether an object exists at ``uri``."""

    def read_bytes(self, uri: str) -> bytes:
        """A small object's whole content (manifests, logs)."""

    def write_bytes(self, uri: str, data: bytes) -> str:
        """Write a small object's whole content; return its URI."""

    def list_incomplete_uploads(self, prefix: str) -> list[IncompleteUpload]:
        """Every incomplete upload of an object under ``prefix`` (a URI ending "/"),
        sorted by URI. (Uploads of one object that upload_file / put_blob leave behind
        are aborted by the next successful upload of that object.)"""

    def abort_incomplete_upload(self, upload: IncompleteUpload) -> bool:
        """Abort ``upload`` and free what it stored; False when it no longer exists
        (finished or aborted meanwhile)."""
