"""sha256 digests of local files: the persistent digest cache that spares re-reading an
unchanged multi-GB recording (and hashes the files it does not know one process per
core: file_hashing), and the check that a file did not change while it was being
stored. The one streaming hasher of the package, ``sha256_file``, lives in
hashing_worker (what the worker processes run) and is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Optional, Sequence

from ...domain.errors import IntegrityError
from ...ports.storage import ProgressCallback
from .atomic import write_text_atomically
from .file_hashing import CHUNK, FileIdentity, HashedFile, hash_files, hashing_processes, sha256_file
from .user_dirs import cache_dir

__all__ = ["CHUNK", "DigestCache", "FileIdentity", "PARALLEL_HASH_MIN_BYTES", "RACY_WINDOW_NS",
           "check_unchanged", "sha256_file"]

log = logging.getLogger(__name__)

#: A file modified less than this before hashing began is hashed but not cached: a
#: second write within the same mtime tick (2 s on the coarsest filesystems) would
#: otherwise leave a stale digest under an unchanged (size, mtime) -- git's "racy" case.
RACY_WINDOW_NS = 2_000_000_000
#: Below this many bytes to hash, files are hashed in this process one after another:
#: a worker process takes ~25 ms to start, about what a core needs to hash 30 MB, and
#: at 64 MB of 4 MB files two workers measured no faster than one process (256 MB:
#: 1.5x faster).
PARALLEL_HASH_MIN_BYTES = 64 * 1024 * 1024


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
        return self.digests([path], progress)[0]

    def digests(self, paths: Sequence[str | Path], progress: Optional[ProgressCallback] = None,
                processes: Optional[int] = None) -> list[str]:
        """The sha256 of each file of ``paths``, in order. Files the cache knows
        unchanged are not read; the others are hashed ``processes`` at once (default:
        one per core, when there are enough bytes to make the worker processes worth
        starting). A file named twice is read once.

        ``progress(bytes_hashed, total)`` follows all of them, ``total`` being the sum of
        their sizes: cached files count as hashed at once. Raises IntegrityError when a
        file changed while it was read."""
        reals = [os.path.realpath(path) for path in paths]
        sizes = {real: os.stat(real).st_size for real in reals}
        total = sum(sizes[real] for real in reals)
        known: dict[str, str] = {}
        for real in dict.fromkeys(reals):
            hit = self.cached(real)
            if hit is not None:
                known[real] = hit
        to_hash = [real for real in dict.fromkeys(reals) if real not in known]
        # Bytes that count as hashed before any is read: cached files, and a second
        # naming of a file (it is read once).
        already = total - sum(sizes[real] for real in to_hash)

        def forward(done: int, _total: int) -> None:
            progress(already + done, total)  # type: ignore[misc]

        if to_hash:
            if processes is None:
                big_enough = sum(sizes[real] for real in to_hash) >= PARALLEL_HASH_MIN_BYTES
                processes = hashing_processes() if big_enough else 1
            hashed = hash_files(to_hash, processes=processes,
                                progress=forward if progress is not None else None)
            for file in hashed:
                known[file.path] = self._remember(file)
        elif progress is not None:
            progress(total, total)
        return [known[real] for real in reals]

    def _remember(self, file: HashedFile) -> str:
        """Count a read, refuse a file that changed while it was read, and cache the
        digest unless the file was modified too recently for its mtime to tell."""
        with self._lock:
            self.files_hashed += 1
            self.bytes_hashed += file.size
        if not file.unchanged:
            raise IntegrityError(
                f"{file.path} changed while it was being hashed; wait until it is completely "
                "written, then stage it again"
            )
        if file.started_ns - file.before.mtime_ns >= RACY_WINDOW_NS:
            self._store(file.path, file.before, file.sha256)
        return file.sha256

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
