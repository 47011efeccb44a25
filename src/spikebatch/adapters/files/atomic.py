"""Atomic writes: a reader never sees a half-written file under its final name."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator, Optional

#: Suffix of the temporary files atomic_path writes (listings skip them).
TEMPORARY_SUFFIX = ".spikebatch-part"
_HEX = frozenset("0123456789abcdef")


@contextlib.contextmanager
def atomic_path(final: str | Path, *, fsync: bool = False, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path in ``final``'s folder; on success rename it over
    ``final`` (os.replace, atomic on POSIX), on any failure delete it.

    ``private`` creates the file with mode 0600 before the caller writes it (what it
    will hold may be a credential, e.g. a Job's env); otherwise the umask decides."""
    final = Path(final)
    tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
    try:
        if private:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        yield tmp
        if fsync:
            # Flush data before the rename so a crash cannot leave a renamed but
            # truncated file behind.
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomically(path: str | Path, text: str, *, fsync: bool = False, private: bool = False) -> None:
    """Replace ``path`` with ``text`` (UTF-8) in one rename; a crash leaves the old file
    or none."""
    with atomic_path(Path(path).expanduser(), fsync=fsync, private=private) as tmp:
        tmp.write_text(text, encoding="utf-8")


def is_temporary_name(name: str) -> bool:
    """Whether ``name`` is one of atomic_path's temporary files."""
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def temporary_target(name: str) -> Optional[str]:
    """The name of the file that atomic_path's temporary file ``name`` was to become
    (``.<final>.<8 hex>.spikebatch-part``), or None when ``name`` is not one."""
    if not is_temporary_name(name):
        return None
    final, dot, token = name[1:-len(TEMPORARY_SUFFIX)].rpartition(".")
    if not dot or not final or len(token) != 8 or not set(token) <= _HEX:
        return None
    return final
