"""The local files a submission names, checked before any of them is read.

A bundle carries regular files only, under names its UTF-8 manifest can hold. So every
script, ``--input`` and recording (and every file inside a recording folder) is looked
at with ``lstat`` -- never opened: opening a FIFO blocks -- and refused, in one line
naming the path and the fix, when it

* does not exist, or is a FIFO, a socket or a device instead of a file (or folder);
* has a name that is not UTF-8, or holds a backslash or a control character;
* is a symbolic link that is broken, or that leads out of its folder: the folder
  holding a named script or ``--input`` link, the recording folder for a link inside
  one. The user named the link, not what it points to; a link planted next to their
  data must not ship, say, ``~/.ssh/id_ed25519``. Giving the target's own path sends
  it. A recording named directly may be a link to anywhere (labs keep recordings on a
  shared drive and link them): what it points to is checked like the recording itself;
* is a recording that holds no data: an empty file, or a folder of empty files.

Nothing is hashed or uploaded before every input of the submission has passed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional

from ..domain.bundle import bundle_name_problem
from ..domain.errors import ConfigError, InputFileNotFoundError
from ..domain.local_files import file_kind, shown_path


@dataclass(frozen=True)
class RecordingFile:
    """One file of a recording folder: where it is and its path inside the folder."""

    local_path: Path
    relative: str
    size: int


def _shown(path: Any) -> str:
    return shown_path(os.fspath(path))


def _lstat(path: Path, what: str) -> os.stat_result:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise InputFileNotFoundError(f"{what} {_shown(path)} does not exist; check the path") from None


def _check_name(path: Path, name: str, what: str) -> None:
    problem = bundle_name_problem(name)
    if problem:
        raise ConfigError(f"{what} {_shown(path)} {problem}; rename the file (or give a copy with a plain name)")


def _followed(link: Path, what: str, folder: Optional[Path]) -> tuple[Path, os.stat_result]:
    """The real path and stat of what the symlink ``link`` leads to, which must exist
    and lie inside ``folder`` (both resolved); ``folder=None``: anywhere."""
    target = Path(os.path.realpath(link))
    try:
        info = os.stat(target)
    except OSError:
        raise ConfigError(
            f"{what} {_shown(link)} is a broken link (to {_shown(os.readlink(link))}); fix or remove the link"
        ) from None
    if folder is None:
        return target, info
    home = Path(os.path.realpath(folder))
    if target != home and home not in target.parents:
        raise ConfigError(
            f"{what} {_shown(link)} links outside its folder {_shown(home)} (to {_shown(target)}); "
            "give that file's own path if you mean to send it, or copy it in"
        )
    return target, info


def named_file(path: Any, what: str) -> Path:
    """The file a user named (a script, an ``--input``), checked: a regular file (or a
    link to one in the link's folder) whose name a bundle can carry."""
    file = Path(path).expanduser()
    info = _lstat(file, what)
    _check_name(file, file.name, what)
    if stat.S_ISLNK(info.st_mode):
        _, info = _followed(file, what, file.parent)
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{what} {_shown(file)} is a folder; give a file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {_shown(file)} is {file_kind(info.st_mode)}, not a regular file; give a file")
    return file


def recording_source(path: Any) -> tuple[Path, Optional[int]]:
    """A recording the user named, checked: ``(path, size)`` for a non-empty regular
    file, ``(path, None)`` for a folder (see ``recording_files``)."""
    rec = Path(path).expanduser()
    info = _lstat(rec, "recording")
    _check_name(rec, rec.name, "recording")
    if stat.S_ISLNK(info.st_mode):
        # Named by the user, so it may lead anywhere; only a broken link is refused.
        _, info = _followed(rec, "recording", None)
    if stat.S_ISDIR(info.st_mode):
        return rec, None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(
            f"recording {_shown(rec)} is {file_kind(info.st_mode)}, not a file or folder; "
            "give the recording's file or the folder it was saved to"
        )
    if info.st_size == 0:
        raise ConfigError(
            f"recording file {_shown(rec)} is empty (0 bytes); give the recording's data file "
            "(if it is still being copied, wait until the copy has finished)"
        )
    return rec, info.st_size


def recording_files(folder: Path) -> List[RecordingFile]:
    """Every file of a recording folder, sorted by path, checked: regular files (or
    links to files inside the folder) under names a bundle can carry. A FIFO, socket,
    device, broken link or link to a folder is refused rather than skipped: the job
    would see a recording with a file missing."""
    found: List[RecordingFile] = []
    pending = [(folder, "")]
    while pending:
        here, prefix = pending.pop()
        with os.scandir(here) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            path = Path(entry.path)
            _check_name(path, entry.name, "recording file")
            info = entry.stat(follow_symlinks=False)
            relative = prefix + entry.name
            if stat.S_ISLNK(info.st_mode):
                _, info = _followed(path, "recording file", folder)
                if stat.S_ISDIR(info.st_mode):
                    raise ConfigError(
                        f"recording file {_shown(path)} is a link to a folder; replace the link with the "
                        "files themselves"
                    )
            if stat.S_ISDIR(info.st_mode):
                pending.append((path, relative + "/"))
            elif stat.S_ISREG(info.st_mode):
                found.append(RecordingFile(path, relative, info.st_size))
            else:
                raise ConfigError(
                    f"recording folder {_shown(folder)} holds {_shown(path)}, {file_kind(info.st_mode)}; "
                    "only regular files can be sent: remove it or move it out of the folder"
                )
    if not found:
        raise ConfigError(f"recording folder {_shown(folder)} is empty; give the folder the recording was saved to")
    if not any(member.size for member in found):
        raise ConfigError(
            f"recording folder {_shown(folder)} holds only empty files; give the folder the recording was saved to"
        )
    return sorted(found, key=lambda member: member.relative)
