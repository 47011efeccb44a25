"""The one guard for untrusted relative paths on the local filesystem: an object key
being downloaded, a file name read from a workspace index that may have travelled. It
keeps what is read or written inside its folder, whatever the name or a planted symlink
says."""

from __future__ import annotations

from pathlib import Path

from ...domain.errors import UnsafePathError
from ...domain.storage_uri import relative_key_problem


def safe_local_path(root: str | Path, relative: str, *, source: str) -> Path:
    """``root``/``relative`` after checking that it stays inside ``root``: no ``..``,
    no absolute key, no empty segment, no backslash, and no symlink (in ``root`` or
    below) leading out of it. ``source`` (a URI, a workspace item) names the path's
    origin in the error message. The path returned is under the resolved ``root``."""
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
