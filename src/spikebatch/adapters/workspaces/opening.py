"""What a workspace named by a path on the command line is: a folder holding a
built-in directory workspace, or the base path of a saved SpikeLab workspace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...domain.errors import ConfigError
from ...domain.local_files import file_kind, shown_path
from .directory import INDEX_NAME, DirectoryWorkspace, is_directory_workspace


def workspace_at(path: str | Path) -> Any:
    """A built-in directory workspace for a folder holding one; otherwise the path as
    given (a SpikeLab saved workspace base path, without extension)."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not is_directory_workspace(path):
            raise ConfigError(_not_a_workspace(path))
        return DirectoryWorkspace(path, create=False)
    if path.exists() and not path.is_file():
        # A FIFO, socket or device: say so (never open it: reading a FIFO blocks).
        raise ConfigError(
            f"workspace {shown_path(os.fspath(path))} is {file_kind(os.stat(path).st_mode)}; give a directory "
            "workspace folder or a SpikeLab saved workspace base path"
        )
    if not any(Path(f"{path}{suffix}").is_file() for suffix in ("", ".h5", ".json")):
        raise ConfigError(
            f"workspace {str(path)!r} does not exist; give a directory workspace folder or a SpikeLab "
            "saved workspace base path (the path without .h5 / .json)"
        )
    return str(path)


#: Files a folder of data meant as a workspace usually holds.
_DATA_SUFFIXES = (".npy", ".json", ".bin")


def _not_a_workspace(path: Path) -> str:
    """Why a folder is not a workspace and, for a folder of data files, how to make one
    of them (the commands, with one of its own files as the example)."""
    try:
        data_files = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in _DATA_SUFFIXES)
    except OSError:
        data_files = []
    if not data_files:
        return (f"workspace folder {str(path)!r} holds no spikebatch directory workspace (no {INDEX_NAME}); "
                "give a workspace folder (spikebatch workspace init DIR makes one) or a SpikeLab saved "
                "workspace base path")
    first = data_files[0]
    return (f"workspace folder {str(path)!r} holds {len(data_files)} data file(s) ({first}, ...) but is not a "
            f"workspace (no {INDEX_NAME}); make one: spikebatch workspace init WS, then for each file "
            f"spikebatch workspace add WS NAMESPACE KEY FILE (e.g. spikebatch workspace add WS data "
            f"{Path(first).stem} {path / first}), and pass --workspace WS")
