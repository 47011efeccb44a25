"""sha256 digests of local files: the one streaming hasher of the package, the
persistent digest cache that spares re-reading an unchanged multi-GB recording, and the
check that a file did not change while it was being stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...domain.errors import IntegrityError
from ...ports.storage import ProgressCallback
from ..storage.progress import Progress
from .atomic import write_text_atomically
from .user_dirs import cache_dir

log = logging.getLogger(__name__)

#: Read size for hashing and copying: large enough that per-call overhead vanishes,
#: small enough to keep memory flat whatever the file size.
CHUNK = 8 * 1024 * 1024
#: A file modified less than this before hashing began is hashed but not cached: a
#: second write within the same mtime tick (2 s on the coarsest filesystems) would
#: otherwise leave a stale digest under an unchanged (size, mtime) -- git's "racy" case.
RACY_WINDOW_NS = 2_000_000_000


def sha256_file(path: str | Path, progress: Optional[Progress] = None) -> tuple[str, int]:
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
        self.folder = Path(folder) if folder is not None else cache_dir() / "digests"
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
            write_text_atomically(target, json.dumps(entry))
        except OSError as exc:
            # The cache only saves time; a read-only home must not stop a transfer.
            log.debug("digest cache not written for %s: %s", real, exc)


def check_unchanged(path: str | Path, before: FileIdentity, uri: str) -> None:
    """Raise IntegrityError if ``path`` changed since ``before`` was taken (the bytes
    sent may then not match the digest recorded for them)."""
    if FileIdentity.of(path) != before:
        raise IntegrityError(
            f"{path} changed while it was being stored as {uri}; the stored copy was "
            "removed -- wait until the file is completely written, then stage it again"
        )
