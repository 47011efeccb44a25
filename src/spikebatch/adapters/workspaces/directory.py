"""The built-in workspace for users without SpikeLab: a folder of plain files.

Layout of a workspace folder::

    spikebatch-workspace.json      the index (authoritative): names, kinds, notes
    items/<namespace>/<key>.json   a JSON value
    items/<namespace>/<key>.bin    raw bytes
    items/<namespace>/<key>.npy    a NumPy array (np.save, allow_pickle=False)

Every value is written to disk as soon as it is stored (temporary file + rename), then
the index is replaced the same way; a reader therefore sees either the old or the new
item, never half of one. Only the index decides what the workspace holds: files it
does not name are ignored.

The method signatures follow spikelab's ``AnalysisWorkspace`` (store / get / get_info /
describe / list_keys / list_namespaces / rename / add_note / delete / merge_from / save /
load / load_item), so an analysis script written against the global ``workspace`` runs
with either. Values differ: this workspace holds JSON values, bytes and arrays, while
SpikeLab's holds arrays, dicts and its own data classes.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Any, Optional

from ...domain.documents import JSON_INDEX_LIMITS, check_document_size, parse_json_text
from ...domain.errors import ConfigError, SpikebatchError, UnsafePathError
from ..files.atomic import atomic_path, write_text_atomically
from ..files.path_guard import safe_local_path
from . import directory_values as values

INDEX_NAME = "spikebatch-workspace.json"
ITEMS_DIR = "items"
FORMAT = "spikebatch-directory-workspace"
FORMAT_VERSION = 1
#: The latest time an index may carry (year 9999): an int beyond it may not even fit a float.
_LATEST_SECONDS = 253_402_300_800


def is_directory_workspace(path: Any) -> bool:
    """Whether ``path`` (str or PathLike) is a folder holding a directory workspace."""
    if not isinstance(path, (str, os.PathLike)):
        return False
    return (Path(path) / INDEX_NAME).is_file()


class DirectoryWorkspace:
    """A namespaced store of JSON values, bytes and NumPy arrays kept in ``path``.

    ``DirectoryWorkspace(path)`` opens the workspace saved there (its stored ``name``
    wins over the argument), or creates an empty one when ``create`` is true (the
    default) and the folder holds none.
    """

    def __init__(self, path: str | os.PathLike, name: Optional[str] = None, *, create: bool = True) -> None:
        self.path = Path(path).expanduser().absolute()
        index_path = self.path / INDEX_NAME
        if index_path.is_file():
            self._load_index(index_path)
            return
        if not create:
            raise ConfigError(f"no spikebatch directory workspace at {self.path} (no {INDEX_NAME} there)")
        if (self.path / ITEMS_DIR).exists():
            # An items/ folder without our index is someone else's data: never adopt it.
            raise SpikebatchError(
                f"{self.path} has an '{ITEMS_DIR}' folder but no {INDEX_NAME}; "
                "choose an empty folder for a new workspace"
            )
        self.workspace_id = str(uuid.uuid4())
        self.name = name
        self.created_at = time.time()
        self._namespaces: dict[str, dict] = {}
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_index()

    # --- storage --------------------------------------------------------------------
    def store(self, namespace: str, key: str, obj: Any, note: Optional[str] = None) -> None:
        """Store ``obj`` (JSON value, bytes or NumPy array) under (namespace, key),
        replacing any previous value there. Written to disk before returning."""
        values.check_name(namespace, "namespace")
        values.check_name(key, "key")
        kind, summary, payload = values.encode(obj, f"({namespace!r}, {key!r})")
        ns = self._namespaces.get(namespace)
        if ns is None:
            taken = {n["dir"].casefold() for n in self._namespaces.values()}
            ns = {"dir": values.unique_stem(namespace, taken), "items": {}}
        old = ns["items"].get(key)
        taken = {e["stem"].casefold() for k, e in ns["items"].items() if k != key}
        stem = old["stem"] if old else values.unique_stem(key, taken)
        entry = {"stem": stem, "kind": kind, **summary, "created_at": time.time()}
        if note is not None:
            entry["note"] = note
        folder = self._guarded(ITEMS_DIR, ns["dir"])
        folder.mkdir(parents=True, exist_ok=True)
        target = self._guarded(ITEMS_DIR, ns["dir"], stem + values.EXTENSIONS[kind])
        with atomic_path(target) as tmp:
            values.write_payload(kind, payload, tmp)
        ns["items"][key] = entry
        self._namespaces[namespace] = ns
        self._write_index()
        if old and old["kind"] != kind:
            # Same key, new kind: the file under the old extension is now unreferenced.
            (folder / (stem + values.EXTENSIONS[old["kind"]])).unlink(missing_ok=True)

    def get(self, namespace: str, key: str, default: Any = values.REQUIRED) -> Optional[Any]:
        """The stored value. A (namespace, key) that holds nothing raises
        MissingItemError (a KeyError naming the key and the keys there) unless a
        ``default`` is given, which is then returned: a misspelt key in an analysis
        script fails where it is read, not later on a None. (SpikeLab's
        AnalysisWorkspace.get returns None instead and takes no default; a script for
        both can test ``key in workspace.list_keys(namespace)`` first.)"""
        entry = self._namespaces.get(namespace, {}).get("items", {}).get(key)
        if entry is None:
            if default is values.REQUIRED:
                raise values.missing_item(namespace, key, self.list_keys())
            return default
        return values.read_payload(entry["kind"], self._file_of(namespace, key))

    def get_info(self, namespace: str, key: str) -> Optional[dict]:
        """The index entry (type, shape/dtype or size, created_at, note) or None."""
        entry = self._namespaces.get(namespace, {}).get("items", {}).get(key)
        return None if entry is None else self._public(entry)

    # --- inspection -----------------------------------------------------------------
    def describe(self) -> dict:
        """``{namespace: {key: info}}`` for every stored item."""
        return {ns: {k: self._public(e) for k, e in v["items"].items()} for ns, v in self._namespaces.items()}

    def list_keys(self, namespace: Optional[str] = None) -> "dict | list":
        """Keys of ``namespace`` (a list), or ``{namespace: [keys]}`` for all."""
        if namespace is not None:
            return list(self._namespaces.get(namespace, {}).get("items", {}))
        return {ns: list(v["items"]) for ns, v in self._namespaces.items()}

    def list_namespaces(self) -> list:
        """Namespace names in the order they were first stored."""
        return list(self._namespaces)

    def files(self) -> list[Path]:
        """The index and every item file: exactly what makes up this workspace."""
        out = [self.path / INDEX_NAME]
        for ns, v in self._namespaces.items():
            out.extend(self._file_of(ns, key) for key in v["items"])
        return out

    # --- mutation -------------------------------------------------------------------
    def rename(self, namespace: str, old_key: str, new_key: str, overwrite: bool = False) -> bool:
        """Move an item to ``new_key``; False (with a warning) when ``new_key`` exists
        and ``overwrite`` is false. KeyError when the item does not exist."""
        if old_key not in self._namespaces.get(namespace, {}).get("items", {}):
            raise KeyError(f"workspace item not found: ({namespace!r}, {old_key!r})")
        values.check_name(new_key, "key")
        if new_key == old_key:
            return True
        if not overwrite and new_key in self._namespaces[namespace]["items"]:
            warnings.warn(f"key {new_key!r} already exists in namespace {namespace!r}; pass overwrite=True",
                          UserWarning, stacklevel=2)
            return False
        info = self._namespaces[namespace]["items"][old_key]
        self.store(namespace, new_key, self.get(namespace, old_key), note=info.get("note"))
        self._namespaces[namespace]["items"][new_key]["created_at"] = info["created_at"]
        self.delete(namespace, old_key)
        return True

    def add_note(self, namespace: str, key: str, note: str) -> None:
        """Attach or replace the note of an existing item (KeyError if absent)."""
        entry = self._namespaces.get(namespace, {}).get("items", {}).get(key)
        if entry is None:
            raise KeyError(f"workspace item not found: ({namespace!r}, {key!r})")
        entry["note"] = note
        self._write_index()

    def delete(self, namespace: str, key: Optional[str] = None) -> None:
        """Delete one item, or the whole namespace when ``key`` is None. KeyError when
        it does not exist. An emptied namespace disappears, as in SpikeLab."""
        ns = self._namespaces.get(namespace)
        if ns is None or (key is not None and key not in ns["items"]):
            what = f"namespace {namespace!r}" if key is None else f"item ({namespace!r}, {key!r})"
            raise KeyError(f"workspace {what} not found")
        doomed = [self._file_of(namespace, k) for k in (ns["items"] if key is None else [key])]
        if key is None:
            del self._namespaces[namespace]
        else:
            del ns["items"][key]
            if not ns["items"]:
                del self._namespaces[namespace]
        # Index first: if the process dies now, the files are orphans, never dangling.
        self._write_index()
        for path in doomed:
            path.unlink(missing_ok=True)
        if namespace not in self._namespaces:
            folder = self.path / ITEMS_DIR / ns["dir"]
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def merge_from(self, other: Any, overwrite: bool = False) -> dict:
        """Copy every item of ``other`` (this class or any workspace with the same
        listing methods) into this one. Returns ``{"merged", "skipped", "skipped_keys"}``."""
        merged, skipped_keys = 0, []
        for namespace in other.list_namespaces():
            for key in other.list_keys(namespace):
                if not overwrite and key in self._namespaces.get(namespace, {}).get("items", {}):
                    skipped_keys.append((namespace, key))
                    continue
                info = other.get_info(namespace, key) or {}
                self.store(namespace, key, other.get(namespace, key), note=info.get("note"))
                merged += 1
        return {"merged": merged, "skipped": len(skipped_keys), "skipped_keys": skipped_keys}

    # --- persistence ----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write a copy of this workspace into the folder ``path``.

        ``path`` may be new, a folder without a workspace (other files are left alone),
        or a directory workspace, which is replaced. Saving onto this workspace's own
        folder just rewrites the index (items are already on disk)."""
        target = Path(path).expanduser().absolute()
        if target.resolve() == self.path.resolve():
            self._write_index()
            return
        stale: list[Path] = []
        if (target / INDEX_NAME).is_file():
            previous = DirectoryWorkspace(target, create=False)
            stale = previous.files()[1:]
        elif (target / ITEMS_DIR).exists():
            raise SpikebatchError(f"{target} has an '{ITEMS_DIR}' folder but no {INDEX_NAME}; not overwriting it")
        target.mkdir(parents=True, exist_ok=True)
        copy = DirectoryWorkspace.__new__(DirectoryWorkspace)
        copy.path, copy.workspace_id, copy.name, copy.created_at = target, self.workspace_id, self.name, self.created_at
        copy._namespaces = json.loads(json.dumps(self._namespaces))
        for ns, v in self._namespaces.items():
            for key in v["items"]:
                dest = copy._file_of(ns, key)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(dest) as tmp:
                    shutil.copyfile(self._file_of(ns, key), tmp)
        copy._write_index()
        keep = {p.resolve() for p in copy.files()}
        for old in stale:
            if old.resolve() not in keep:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DirectoryWorkspace":
        """The workspace saved in ``path`` (ConfigError if there is none)."""
        return cls(path, create=False)

    @classmethod
    def load_item(cls, path: str | os.PathLike, namespace: str, key: str) -> Any:
        """One value of the workspace saved in ``path``, reading only that file."""
        return cls.load(path).get(namespace, key)

    @staticmethod
    def comparison_namespace(*namespaces: str) -> str:
        """The conventional namespace for results comparing several namespaces."""
        return "C_" + "_".join(namespaces)

    def __repr__(self) -> str:
        count = sum(len(v["items"]) for v in self._namespaces.values())
        label = f" {self.name!r}" if self.name else ""
        return f"DirectoryWorkspace{label}({str(self.path)!r}, {len(self._namespaces)} namespace(s), {count} item(s))"

    # --- internals ------------------------------------------------------------------
    def _file_of(self, namespace: str, key: str) -> Path:
        ns = self._namespaces[namespace]
        entry = ns["items"][key]
        return self._guarded(ITEMS_DIR, ns["dir"], entry["stem"] + values.EXTENSIONS[entry["kind"]])

    def _guarded(self, *names: str) -> Path:
        """``self.path``/``names`` after the path guard has checked that, symlinks
        resolved, it stays in the workspace: a tampered index or a planted symlink must
        not read or write elsewhere. The path is spelled under ``self.path`` (not the
        resolved folder the guard returns) so files() lists paths under the folder the
        caller named, even when that folder is reached through a symlink."""
        relative = "/".join(names)
        try:
            safe_local_path(self.path, relative, source=f"workspace file {relative}")
        except UnsafePathError:
            raise UnsafePathError(
                f"{self.path.joinpath(*names)} would lie outside the workspace folder {self.path.resolve()}"
            ) from None
        return self.path.joinpath(*names)

    @staticmethod
    def _public(entry: dict) -> dict:
        return {k: v for k, v in entry.items() if k not in ("stem", "kind")}

    def _write_index(self) -> None:
        document = {"format": FORMAT, "version": FORMAT_VERSION, "workspace_id": self.workspace_id,
                    "name": self.name, "created_at": self.created_at, "namespaces": self._namespaces}
        write_text_atomically(self.path / INDEX_NAME, json.dumps(document, indent=1, ensure_ascii=False))

    def _load_index(self, index_path: Path) -> None:
        document = _read_index(index_path)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SpikebatchError(f"{index_path} is not a spikebatch directory workspace index")
        if document.get("version") != FORMAT_VERSION:
            raise SpikebatchError(f"{index_path} has workspace format version {document.get('version')!r}; "
                                  f"this spikebatch reads version {FORMAT_VERSION}; upgrade spikebatch")
        namespaces = document.get("namespaces")
        if not isinstance(namespaces, dict):
            raise SpikebatchError(f"{index_path}: 'namespaces' must be an object")
        for ns, v in namespaces.items():
            # Folder and file names come from a file that may have travelled: re-check them.
            if not isinstance(v, dict) or not isinstance(v.get("items"), dict):
                raise SpikebatchError(f"{index_path}: namespace {ns!r} is malformed")
            _check_indexed_name(index_path, v.get("dir"), f"folder of namespace {ns!r}")
            for key, entry in v["items"].items():
                if not isinstance(entry, dict):
                    raise SpikebatchError(f"{index_path}: item ({ns!r}, {key!r}) is malformed")
                _check_indexed_name(index_path, entry.get("stem"), f"file of item ({ns!r}, {key!r})")
                kind = entry.get("kind")
                if not isinstance(kind, str) or kind not in values.EXTENSIONS:
                    raise SpikebatchError(f"{index_path}: item ({ns!r}, {key!r}) has unknown kind {kind!r}")
        created_at = document.get("created_at")
        if created_at is not None and (isinstance(created_at, bool) or not isinstance(created_at, (int, float))
                                       or abs(created_at) > _LATEST_SECONDS):
            raise SpikebatchError(f"{index_path}: 'created_at' must be a time in seconds since the epoch")
        self.workspace_id = str(document.get("workspace_id") or uuid.uuid4())
        self.name = document.get("name")
        self.created_at = float(created_at or time.time())
        self._namespaces = namespaces


def _check_indexed_name(index_path: Path, value: Any, what: str) -> None:
    """values.check_name for a name read from the index, naming the index."""
    try:
        values.check_name(value, what)
    except UnsafePathError as exc:
        raise UnsafePathError(f"{index_path}: {exc.message}") from None


def _read_index(index_path: Path) -> Any:
    """The index document, read and decoded within the JSON index limits (size,
    nesting, integer digits): a workspace may have travelled, and its index is input."""
    source = f"{index_path} (not a readable workspace index)"
    limit = JSON_INDEX_LIMITS.max_bytes
    with open(index_path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    check_document_size(len(data), source, JSON_INDEX_LIMITS, "JSON")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8; "
                          "restore the index from a good copy of the workspace") from None
    return parse_json_text(text, source)


class DirectoryWorkspaceCodec:
    """WorkspaceCodec for DirectoryWorkspace: the bundle carries the workspace folder
    as is, the job opens it in place, and the retrieved folder is opened again."""

    name = "directory"

    def can_handle(self, workspace: Any) -> bool:
        return isinstance(workspace, DirectoryWorkspace) or is_directory_workspace(workspace)

    def save(self, workspace: Any, folder: Path) -> list[Path]:
        return self.commit(self._as_workspace(workspace), folder)

    def open(self, folder: Path) -> DirectoryWorkspace:
        # A missing or empty folder opens as a new, empty workspace (a sorting job
        # starts its result workspace this way); any other folder must hold one.
        folder = Path(folder)
        if not folder.exists() or not any(folder.iterdir()):
            return DirectoryWorkspace(folder)
        return DirectoryWorkspace.load(folder)

    def commit(self, workspace: Any, folder: Path) -> list[Path]:
        workspace = self._as_workspace(workspace)
        workspace.save(folder)
        return DirectoryWorkspace.load(folder).files()

    def load_result(self, folder: Path) -> DirectoryWorkspace:
        return DirectoryWorkspace.load(folder)

    @staticmethod
    def _as_workspace(workspace: Any) -> DirectoryWorkspace:
        if isinstance(workspace, DirectoryWorkspace):
            return workspace
        if is_directory_workspace(workspace):
            return DirectoryWorkspace.load(workspace)
        raise ConfigError(
            f"{workspace!r} is neither a DirectoryWorkspace nor a folder holding one ({INDEX_NAME} missing)"
        )
