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
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

from ...domain.errors import (
    InvalidURIError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    UnsafePathError,
)
from ...domain.storage_uri import StorageURI, file_uri, parse_uri
from ..storage.base_store import BaseArtifactStore, ObjectInfo
from ..storage.progress import Progress
from .atomic import atomic_path, is_temporary_name, write_text_atomically
from .digests import CHUNK, DigestCache
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


class LocalFileStorage(BaseArtifactStore):
    """ArtifactStore over a folder. ``prefix`` is a ``file:///...`` URI under ``root``;
    either may be omitted (``root`` defaults to the prefix's folder, the prefix to
    ``file://`` + ``$SPIKEBATCH_DATA_DIR`` or ``~/.local/share/spikebatch/storage/``)."""

    scheme = "file"

    def __init__(self, *, prefix: Optional[str] = None, path_templates: Any = None,
                 root: str | Path | None = None, digest_cache: Optional[DigestCache] = None) -> None:
        if root is not None:
            root_path = Path(root).expanduser()
            if not root_path.is_absolute():
                root_path = root_path.absolute()
        elif prefix is not None:
            root_path = Path(parse_uri(prefix, scheme="file").as_prefix().key)
        else:
            root_path = data_dir().absolute()
        if prefix is None:
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
