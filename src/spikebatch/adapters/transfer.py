"""Helpers shared by the storage adapters: streaming sha256, the persistent digest
cache, atomic writes, the path-traversal guard, progress accounting and the retry
policy. Nothing here knows boto3 or minio.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from ..domain.errors import IntegrityError, UnsafePathError
from ..domain.storage_uri import relative_key_problem
from ..ports.storage import ProgressCallback
from .files.atomic import atomic_path, is_temporary_name  # noqa: F401 - moving to files/

log = logging.getLogger(__name__)

#: Read size for hashing and copying: large enough that per-call overhead vanishes,
#: small enough to keep memory flat whatever the file size.
CHUNK = 8 * 1024 * 1024
#: Read size of download streams: what a dropped connection can lose (the partial
#: chunk is discarded and re-fetched by the resumed ranged GET).
STREAM_CHUNK = 1024 * 1024
#: A file modified less than this before hashing began is hashed but not cached: a
#: second write within the same mtime tick (2 s on the coarsest filesystems) would
#: otherwise leave a stale digest under an unchanged (size, mtime) -- git's "racy" case.
RACY_WINDOW_NS = 2_000_000_000


def sha256_file(path: str | Path, progress: Optional["Progress"] = None) -> tuple[str, int]:
    """(hex digest, size) of a file, read in CHUNK-sized pieces into one reused buffer."""
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            hasher.update(view[:count])
            size += count
            if progress is not None:
                progress.add(count)
    return hasher.hexdigest(), size


def copy_file(source: str | Path, dest: str | Path, progress: Optional["Progress"] = None) -> None:
    """Copy ``source`` to ``dest`` in CHUNK-sized steps, reporting progress after each.

    The kernel copies the bytes (copy_file_range: no user-space buffer, and a reflink on
    filesystems that support it); where the kernel or filesystem refuses, read/write.
    """
    with open(source, "rb", buffering=0) as src, open(dest, "wb") as dst:
        if hasattr(os, "copy_file_range"):
            try:
                while True:
                    count = os.copy_file_range(src.fileno(), dst.fileno(), CHUNK)
                    if not count:
                        return
                    if progress is not None:
                        progress.add(count)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                # Refused: start over with plain reads and writes.
                if progress is not None:
                    progress.add(-progress.done)
                src.seek(0)
                dst.seek(0)
                dst.truncate()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            count = src.readinto(buffer)
            if not count:
                return
            dst.write(view[:count])
            if progress is not None:
                progress.add(count)


def user_cache_dir() -> Path:
    """``$SPIKEBATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/spikebatch``, else
    ``~/.cache/spikebatch``."""
    explicit = os.environ.get("SPIKEBATCH_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikebatch"


@dataclass(frozen=True)
class FileIdentity:
    """What must stay equal for a cached digest to still describe a file."""

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str | Path) -> "FileIdentity":
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


class DigestCache:
    """sha256 digests of local files, persisted as one small JSON file per path under
    ``<cache dir>/digests/`` (one file per entry: concurrent processes never rewrite
    each other's entries, and no lock is needed).

    ``files_hashed`` / ``bytes_hashed`` count real reads, so callers (and tests) can see
    that an unchanged file was not read again.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else user_cache_dir() / "digests"
        self.files_hashed = 0
        self.bytes_hashed = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DigestCache({str(self.folder)!r})"

    def _entry(self, real_path: str) -> Path:
        name = hashlib.sha256(real_path.encode("utf-8", "surrogateescape")).hexdigest()
        return self.folder / name[:2] / f"{name}.json"

    def cached(self, path: str | Path) -> Optional[str]:
        """The cached digest if the file is unchanged since it was hashed, else None."""
        real = os.path.realpath(path)
        try:
            entry = json.loads(self._entry(real).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A corrupt or unreadable entry only costs a re-hash.
            log.debug("ignoring digest cache entry for %s: %s", real, exc)
            return None
        if not isinstance(entry, dict) or entry.get("path") != real:
            return None
        try:
            current = FileIdentity.of(real)
        except FileNotFoundError:
            return None
        stored = {k: entry.get(k) for k in ("size", "mtime_ns", "inode", "device")}
        if stored != current.__dict__ or not isinstance(entry.get("sha256"), str):
            return None
        return entry["sha256"]

    def digest(self, path: str | Path, progress: Optional[ProgressCallback] = None) -> str:
        """The file's sha256, from the cache when (path, size, mtime, inode) match.
        ``progress(bytes_hashed, size)`` follows the read (one final call on a hit)."""
        hit = self.cached(path)
        if hit is not None:
            if progress is not None:
                size = os.path.getsize(path)
                progress(size, size)
            return hit
        real = os.path.realpath(path)
        before = FileIdentity.of(real)
        started_ns = time.time_ns()
        digest, size = sha256_file(real, Progress(progress, before.size) if progress else None)
        with self._lock:
            self.files_hashed += 1
            self.bytes_hashed += size
        if FileIdentity.of(real) != before or size != before.size:
            raise IntegrityError(
                f"{real} changed while it was being hashed; wait until it is completely "
                "written, then stage it again"
            )
        if started_ns - before.mtime_ns >= RACY_WINDOW_NS:
            self._store(real, before, digest)
        return digest

    def _store(self, real: str, identity: FileIdentity, digest: str) -> None:
        entry = dict(identity.__dict__, path=real, sha256=digest)
        target = self._entry(real)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_text(json.dumps(entry))
        except OSError as exc:
            # The cache only saves time; a read-only home must not stop a transfer.
            log.debug("digest cache not written for %s: %s", real, exc)


def safe_local_path(root: str | Path, relative: str, *, source: str) -> Path:
    """``root``/``relative`` after checking that it stays inside ``root``: no ``..``,
    no absolute key, no empty segment, and no symlink (in ``root`` or below) leading
    out of it. ``source`` (a URI) names the key's origin in the error message."""
    problem = relative_key_problem(relative)
    if problem:
        raise UnsafePathError(
            f"refusing to write {source} to {root}: {problem}; nothing was written -- "
            "rename the object so its key stays inside the prefix"
        )
    base = Path(root).resolve()
    target = base.joinpath(*relative.rstrip("/").split("/"))
    resolved = target.resolve()
    if resolved != base and base not in resolved.parents:
        raise UnsafePathError(
            f"refusing to write {source} to {target}: a symlink leads outside {base}; "
            "nothing was written -- remove the symlink or choose another folder"
        )
    return target


class TransferCancelled(Exception):
    """Carries a KeyboardInterrupt / SystemExit raised by a progress callback through
    library code that cleans up (aborts a multipart upload) only on ``Exception``;
    the adapters re-raise ``reason`` once the library has cleaned up."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(f"transfer cancelled by {type(reason).__name__}")
        self.reason = reason


class Progress:
    """Turns byte increments (from any thread) into ``callback(done, total)`` calls.

    Calls are serialised, so a progress bar needs no locking. An exception raised by
    the callback propagates to the transfer, which is how a caller cancels one.
    """

    def __init__(self, callback: Optional[ProgressCallback], total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        # boto3 reports negative counts when it rewinds a part for a retry.
        with self._lock:
            self.done += count
            if self.callback is not None:
                self._call()

    def _call(self) -> None:
        try:
            self.callback(self.done, self.total)  # type: ignore[misc]
        except Exception:
            raise
        except BaseException as exc:
            raise TransferCancelled(exc) from exc

    def finish(self) -> None:
        """Report completion once if the transfer did not (an upload that was skipped
        because the object already exists)."""
        with self._lock:
            if self.done != self.total:
                self.done = self.total
                if self.callback is not None:
                    self._call()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the S3 adapters retry one request.

    Only transient failures are retried: connection errors, timeouts and the
    TRANSIENT_STATUS codes. 403 (bad credentials) and 404 (missing object or bucket)
    fail at once: retrying cannot fix them and would only delay the message.
    """

    attempts: int = 3
    backoff_seconds: float = 0.1
    connect_timeout: float = 5.0
    read_timeout: float = 120.0


TRANSIENT_STATUS = (429, 500, 502, 503, 504)


def check_unchanged(path: str | Path, before: FileIdentity, uri: str) -> None:
    """Raise IntegrityError if ``path`` changed since ``before`` was taken (the bytes
    sent may then not match the digest recorded for them)."""
    if FileIdentity.of(path) != before:
        raise IntegrityError(
            f"{path} changed while it was being stored as {uri}; the stored copy was "
            "removed -- wait until the file is completely written, then stage it again"
        )
