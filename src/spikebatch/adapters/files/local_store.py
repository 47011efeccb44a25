"""LocalFileStorage: the ArtifactStore on the local filesystem (``file://`` URIs).

The embedded default of the ``local`` profile: a laptop runs jobs without any object
store, and the same runner code reads and writes ``file://`` URIs.

Every URI must lie under ``root`` (symlinks resolved), so a crafted URI cannot read or
write elsewhere. The sha256 of each object is kept in a sidecar JSON file in a shadow
tree, ``<root>/.spikebatch-meta/<path relative to root>.json``, holding
``{"sha256", "size", "mtime_ns"}``. A shadow tree rather than extended attributes:
xattrs are missing or dropped on several filesystems (tmpfs on older kernels, network
and FAT volumes, copies made by many tools), and a shadow tree keeps the user's folders
free of extra files. A sidecar whose size / mtime no longer match the file (the file was
edited by hand) is ignored: the object then counts as unverified.

A download the caller will only read (``download_file(read_only=True)``: the runner's
recordings) is not copied: the object is placed by reflink (copy-on-write, where the
filesystem can) or else linked, hard link or (across filesystems) symlink, after its
write permission is dropped (a content-addressed blob never changes). The user's own
files are never linked: ``put_blob`` stores a copy. Whatever the way, the placed file
is hashed and checked like a download before it is used; should a process that ignores
permissions (root) write through a link anyway, the object's size / mtime no longer
match its sidecar, so every later download refuses it and the next ``put_blob`` of
those bytes stores them again.

Every file is written under a temporary name (``.<name>.<8 hex>.spikebatch-part``) and
renamed when complete; a process killed mid-write leaves that partial file. These are
the local store's unfinished uploads: the next successful upload of the same object
removes them, and ``list_incomplete_uploads`` / ``abort_incomplete_upload`` find and
remove the rest (their time is the file's last write).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ...domain.errors import (
    IntegrityError,
    InvalidURIError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    SpikebatchError,
    StorageError,
    UnsafePathError,
)
from ...domain.storage_uri import StorageURI, file_uri, parse_uri
from ...ports.storage import IncompleteUpload, ProgressCallback
from ..storage.base_store import BaseArtifactStore, ObjectInfo
from ..storage.progress import Progress, TransferCancelled
from .atomic import TEMPORARY_SUFFIX, atomic_path, is_temporary_name, temporary_target, write_text_atomically
from .digests import CHUNK, DigestCache, sha256_file
from .user_dirs import data_dir

META_DIR = ".spikebatch-meta"


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


#: Linux's FICLONE ioctl: ``dest`` shares ``source``'s blocks, copy-on-write (btrfs,
#: XFS, bcachefs, ...).
_FICLONE = 0x40049409
#: What a filesystem answers when it cannot clone or link (not an I/O failure).
_CANNOT = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY,
                     errno.ENOSYS, errno.EPERM, errno.EMLINK})


def _reflink(source: Path, dest: Path) -> bool:
    """Make ``dest`` a copy-on-write clone of ``source``; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    import fcntl

    try:
        with open(source, "rb") as src, open(dest, "xb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return True
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            dest.unlink()
        if exc.errno in _CANNOT:
            return False
        raise


def _without_write_permission(path: Path) -> bool:
    """Drop every write bit of ``path``; whether it is now read-only for its owner
    (False: not ours to change, and writable by us)."""
    mode = path.stat().st_mode
    if mode & 0o222:
        try:
            os.chmod(path, stat.S_IMODE(mode) & ~0o222)
        except PermissionError:
            return not os.access(path, os.W_OK)
    return True


def link_read_only(source: Path, dest: Path) -> Optional[str]:
    """Place ``source`` at ``dest`` (which must not exist) without copying its bytes:
    "reflink", else "hardlink" or "symlink" to ``source`` made read-only; None when
    none is possible (then nothing is left at ``dest``)."""
    if _reflink(source, dest):
        return "reflink"
    if not _without_write_permission(source):
        return None
    for how, make in (("hardlink", os.link), ("symlink", os.symlink)):
        try:
            make(source, dest)
            return how
        except OSError as exc:
            if exc.errno not in _CANNOT:
                raise
    return None


class LocalFileStorage(BaseArtifactStore):
    """ArtifactStore over a folder. ``prefix`` is a ``file:///...`` URI under ``root``;
    either may be omitted (``root`` defaults to the prefix's folder, the prefix to
    ``file://`` + ``$SPIKEBATCH_DATA_DIR`` or ``~/.local/share/spikebatch/storage/``)."""

    scheme = "file"
    #: A partial file of any size may be left by a killed process.
    unfinished_upload_floor = 0

    def __init__(self, *, prefix: Optional[str] = None, path_templates: Any = None,
                 root: str | Path | None = None, digest_cache: Optional[DigestCache] = None) -> None:
        if root is not None:
            root_path = Path(root).expanduser()
            if not root_path.is_absolute():
                root_path = root_path.absolute()
        elif prefix:
            root_path = Path(parse_uri(prefix, scheme="file").as_prefix().key)
        else:
            root_path = data_dir().absolute()
        if not prefix:  # None or "": the root's own URI
            prefix = file_uri(str(root_path), folder=True)
        super().__init__(prefix=prefix, path_templates=path_templates, digest_cache=digest_cache)
        #: The folder behind this store's file:// URIs (the port's local_root).
        self.local_root: Path = root_path
        # Compare resolved paths: the root itself may sit behind a symlink (/tmp on
        # macOS), which is fine; what matters is what lies below it.
        self._real_root = root_path.resolve()
        self._path(parse_uri(self.prefix or "", scheme="file"))

    def __repr__(self) -> str:
        return f"LocalFileStorage(prefix={self.prefix!r}, root={str(self.local_root)!r})"

    # --- mapping URIs to paths ---------------------------------------------------
    def _path(self, uri: StorageURI) -> Path:
        path = Path(uri.key)
        resolved = path.resolve()
        if resolved != self._real_root and self._real_root not in resolved.parents:
            if self.local_root != path and self.local_root not in path.parents:
                raise InvalidURIError(
                    f"{uri} is outside the storage root {self.local_root}; use a URI under "
                    f"{file_uri(str(self.local_root), folder=True)}"
                )
            raise UnsafePathError(
                f"{uri} leads outside the storage root {self.local_root} through a symlink; "
                "remove the symlink"
            )
        relative = resolved.relative_to(self._real_root)
        if relative.parts and relative.parts[0] == META_DIR:
            raise InvalidURIError(f"{uri} is inside the reserved folder {META_DIR}; use another name")
        return self._real_root / relative

    def _meta(self, path: Path) -> Path:
        relative = path.relative_to(self._real_root)
        return self._real_root / META_DIR / relative.parent / f"{relative.name}.json"

    def _write_meta(self, path: Path, sha256: str) -> None:
        st = path.stat()
        meta = self._meta(path)
        meta.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(meta, json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))

    def _recorded_sha256(self, path: Path, st: os.stat_result) -> Optional[str]:
        try:
            meta = json.loads(self._meta(path).read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a damaged sidecar: treat the object as unverified
        if meta.get("size") != st.st_size or meta.get("mtime_ns") != st.st_mtime_ns:
            return None
        sha = meta.get("sha256")
        return sha if isinstance(sha, str) else None

    @contextlib.contextmanager
    def _os_errors(self, uri: StorageURI, action: str) -> Iterator[None]:
        try:
            yield
        except SpikebatchError:
            raise  # already ours (an ObjectNotFoundError is also a FileNotFoundError)
        except PermissionError:
            raise StorageAccessDeniedError(
                f"cannot {action} {uri}: permission denied; choose a writable storage root "
                "(SPIKEBATCH_DATA_DIR or the profile's default_s3_prefix)"
            ) from None
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(f"cannot {action} {uri}: {exc.filename} does not exist") from None
        except IsADirectoryError:
            raise ObjectNotFoundError(f"cannot {action} {uri}: it is a folder, not a file") from None
        except OSError as exc:
            raise StorageError(
                f"cannot {action} {uri}: {exc.strerror or exc}; check free space and the "
                "storage root"
            ) from None

    # --- read-only placement ------------------------------------------------------
    def download_file(self, *, s3_uri: str, local_path: str | Path,
                      progress: Optional[ProgressCallback] = None,
                      expected_sha256: Optional[str] = None, read_only: bool = False) -> str:
        """As the port's; with ``read_only`` the object is reflinked or linked rather
        than copied when the filesystem allows (see the module's docstring)."""
        if read_only:
            placed = self._place_read_only(s3_uri, Path(local_path), progress, expected_sha256)
            if placed is not None:
                return str(placed)
        return super().download_file(s3_uri=s3_uri, local_path=local_path, progress=progress,
                                     expected_sha256=expected_sha256)

    def _place_read_only(self, s3_uri: str, dest: Path, progress: Optional[ProgressCallback],
                         expected_sha256: Optional[str]) -> Optional[Path]:
        """The object linked at ``dest`` and verified, or None when it cannot be linked
        (or does not exist: the copying download then says so)."""
        source = self._parse(s3_uri)
        if dest.is_dir():
            dest = dest / source.name
        info = self._stat(source)
        if info is None:
            return None
        path = self._path(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
        with self._os_errors(source, "link"):
            how = link_read_only(path, tmp)
        if how is None:
            return None
        try:
            try:
                digest, size = sha256_file(tmp, Progress(progress, info.size))
            except TransferCancelled as exc:
                raise exc.reason from None
            expected = [sha for sha in (info.sha256, expected_sha256) if sha is not None]
            if size != info.size or any(digest != sha for sha in expected):
                raise IntegrityError(
                    f"{source} ({size} bytes, sha256 {digest}) does not match what was recorded for it; "
                    "nothing was placed -- re-submit the job to store it again")
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return dest

    # --- primitives --------------------------------------------------------------
    def _stat(self, uri: StorageURI) -> Optional[ObjectInfo]:
        path = self._path(uri)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(st.st_size, self._recorded_sha256(path, st))

    def _upload(self, path: Path, uri: StorageURI, sha256: str, progress: Progress) -> None:
        dest = self._path(uri)
        with self._os_errors(uri, "write"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                copy_file(path, tmp, progress)
            self._write_meta(dest, sha256)

    @contextlib.contextmanager
    def _open_range(self, uri: StorageURI, start: int) -> Iterator[Iterable[bytes]]:
        with self._os_errors(uri, "read"), open(self._path(uri), "rb") as handle:
            handle.seek(start)
            yield iter(lambda: handle.read(CHUNK), b"")

    def _list(self, prefix: StorageURI) -> list[tuple[StorageURI, int]]:
        base = self._path(prefix)
        # Listed URIs are spelled like the prefix (which may name the root through a
        # symlink), so that relative_to(prefix) holds for each of them.
        spelled = prefix.as_prefix().key
        found: list[tuple[StorageURI, int]] = []
        for folder, dirs, files in os.walk(base):
            here = Path(folder)
            # Never descend into the metadata tree or through symlinks (which could
            # lead out of the root).
            dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink()
                             and not (here == self._real_root and d == META_DIR))
            for name in sorted(files):
                path = here / name
                if is_temporary_name(name) or path.is_symlink():
                    continue
                relative = path.relative_to(base).as_posix()
                found.append((StorageURI("file", "", spelled + relative), path.stat().st_size))
        return found

    def _read(self, uri: StorageURI) -> tuple[bytes, Optional[str]]:
        path = self._path(uri)
        with self._os_errors(uri, "read"):
            data = path.read_bytes()
            st = path.stat()
        return data, self._recorded_sha256(path, st)

    def _write(self, uri: StorageURI, data: bytes, sha256: str) -> None:
        dest = self._path(uri)
        with self._os_errors(uri, "write"):
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                tmp.write_bytes(data)
            self._write_meta(dest, sha256)

    def _delete(self, uri: StorageURI) -> None:
        path = self._path(uri)
        with self._os_errors(uri, "delete"):
            for victim in (path, self._meta(path)):
                victim.unlink(missing_ok=True)

    # --- partial files (unfinished uploads) ----------------------------------------
    def _inside_root(self, folder: Path) -> Optional[Path]:
        """``folder`` resolved, when it lies under the root (the metadata tree
        included); None otherwise."""
        resolved = folder.resolve()
        if resolved != self._real_root and self._real_root not in resolved.parents:
            return None
        return resolved

    @staticmethod
    def _partial(folder: Path, name: str, st: os.stat_result) -> IncompleteUpload:
        return IncompleteUpload(
            uri=file_uri(str(folder / (temporary_target(name) or name))), upload_id=name,
            initiated=datetime.fromtimestamp(st.st_mtime, timezone.utc), size=st.st_size)

    def _partials_in(self, folder: Path, target: Optional[str]) -> Iterator[IncompleteUpload]:
        """Partial files directly in ``folder`` (of ``target`` only, when given)."""
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            name_target = temporary_target(entry.name)
            if name_target is None or (target is not None and name_target != target):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
            if stat.S_ISREG(st.st_mode):
                yield self._partial(folder, entry.name, st)

    def _incomplete(self, where: StorageURI, *, sizes: bool) -> list[IncompleteUpload]:
        with self._os_errors(where, "list partial files under"):
            if not where.is_prefix:
                path = self._path(where)
                meta = self._meta(path)
                return [*self._partials_in(path.parent, path.name),
                        *self._partials_in(meta.parent, meta.name)]
            base = self._path(where)
            # The metadata tree's partial files too (sidecars being written); walking
            # the root itself covers it.
            folders = [base]
            if base != self._real_root:
                folders.append(self._real_root / META_DIR / base.relative_to(self._real_root))
            found: list[IncompleteUpload] = []
            for top in folders:
                for folder, dirs, _ in os.walk(top):
                    here = Path(folder)
                    dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink())
                    found += self._partials_in(here, None)
            return found

    def _abort(self, uri: StorageURI, upload_id: str) -> bool:
        folder = self._inside_root(Path(uri.key).parent)
        if folder is None or "/" in upload_id or temporary_target(upload_id) != Path(uri.key).name:
            raise InvalidURIError(
                f"{upload_id!r} is not a partial file of {uri} in the storage root {self.local_root}; "
                "use what list_incomplete_uploads returned"
            )
        with self._os_errors(uri, "remove the partial file of"):
            try:
                (folder / upload_id).unlink()
            except FileNotFoundError:
                return False
        return True
