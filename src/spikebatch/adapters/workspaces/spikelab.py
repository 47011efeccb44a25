"""WorkspaceCodec for SpikeLab's ``AnalysisWorkspace`` (used when ``spikelab`` imports).

A SpikeLab workspace on disk is a base path with two files beside each other:
``<base>.h5`` (the data, HDF5) and ``<base>.json`` (the index). In a bundle and in a
job's outputs the base is always ``<folder>/workspace``. Reading and writing go through
SpikeLab's own ``save`` / ``load`` so the files stay exactly SpikeLab's format.
spikelab is imported only when a workspace is actually handled, so spikebatch works
without it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from ...domain.errors import ConfigError, UnsafePathError
from ..files.atomic import atomic_path

#: Base name of the saved workspace inside a bundle / output folder.
BASENAME = "workspace"


def spikelab_available() -> bool:
    """Whether the ``spikelab`` package can be imported here."""
    return importlib.util.find_spec("spikelab") is not None


def _analysis_workspace_class():
    from spikelab.workspace import AnalysisWorkspace

    return AnalysisWorkspace


def _saved_base(path: Any) -> Path | None:
    """The base path (no extension) of a saved SpikeLab workspace named by ``path``
    (with or without a trailing ``.h5``, as SpikeLab accepts), or None."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    text = os.fspath(path)
    base = Path(text[:-3] if text.endswith(".h5") else text).expanduser()
    h5, index = base.with_name(base.name + ".h5"), base.with_name(base.name + ".json")
    return base if h5.is_file() and index.is_file() else None


def _check_names(workspace: Any) -> None:
    """Refuse names HDF5 would read as paths. SpikeLab saves ("a/b", key) as nested
    groups and then cannot load the file back; better to fail before the save than to
    hand back a result nobody can open."""
    for namespace in workspace.list_namespaces():
        for name, what in [(namespace, "namespace"), *((k, f"key in {namespace!r}") for k in workspace.list_keys(namespace))]:
            if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
                raise UnsafePathError(f"SpikeLab workspace {what} {name!r} cannot be saved: "
                                      "names must be non-empty, without '/', and not '.' or '..'")


class SpikeLabWorkspaceCodec:
    """Saves / opens spikelab ``AnalysisWorkspace`` objects (regular or lazy) and saved
    workspace base paths."""

    name = "spikelab"

    def can_handle(self, workspace: Any) -> bool:
        if not spikelab_available():
            return False
        if _saved_base(workspace) is not None:
            return True
        return isinstance(workspace, _analysis_workspace_class())

    def save(self, workspace: Any, folder: Path) -> list[Path]:
        base = _saved_base(workspace)
        if base is None:
            return self.commit(workspace, folder)
        # A saved workspace is already in SpikeLab's format: copy its two files as they
        # are (no load + re-save, which would read a possibly large .h5 into memory).
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for suffix in (".h5", ".json"):
            dest = folder / (BASENAME + suffix)
            with atomic_path(dest) as tmp:
                shutil.copyfile(base.with_name(base.name + suffix), tmp)
            written.append(dest)
        return written

    def open(self, folder: Path) -> Any:
        # A missing or empty folder opens as a new, empty workspace (a sorting job
        # starts its result workspace this way); any other folder must hold one.
        folder = Path(folder)
        if not folder.exists() or not any(folder.iterdir()):
            return _analysis_workspace_class()()
        return self._load(folder)

    def commit(self, workspace: Any, folder: Path) -> list[Path]:
        cls = _analysis_workspace_class()
        if not isinstance(workspace, cls):
            raise ConfigError(
                f"expected a spikelab AnalysisWorkspace or the base path of a saved one "
                f"(<base>.h5 and <base>.json), got {workspace!r}"
            )
        _check_names(workspace)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # SpikeLab's save writes each file to a temporary name and renames it.
        workspace.save(str(folder / BASENAME))
        return [folder / (BASENAME + ".h5"), folder / (BASENAME + ".json")]

    def load_result(self, folder: Path) -> Any:
        return self._load(Path(folder))

    @staticmethod
    def _load(folder: Path) -> Any:
        base = folder / BASENAME
        if _saved_base(base) is None:
            raise ConfigError(f"no SpikeLab workspace in {folder} (expected {BASENAME}.h5 and {BASENAME}.json)")
        return _analysis_workspace_class().load(str(base))
