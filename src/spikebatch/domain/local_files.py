"""Words for local files a user names: what kind of file a mode says it is, and a path
shown on one line as it is spelled on disk (bytes that are not UTF-8 as ``\\xNN``).

Pure: callers hand in the mode of an ``lstat`` and the path as text; nothing here
touches the filesystem.
"""

from __future__ import annotations

import stat

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a socket"``, ... for an ``st_mode``."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "a special file"


def shown_path(text: str) -> str:
    """``text`` (a path as the OS gave it, undecodable bytes as surrogate escapes)
    quoted on one line: a byte that is not UTF-8 shows as ``\\xNN``, a control or other
    unprintable character as its escape; a backslash in a name stays one backslash."""
    shown = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the byte code - 0xDC00
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable():
            shown.append(char)
        elif code <= 0xFF:
            shown.append(f"\\x{code:02x}")
        else:
            shown.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "'" + "".join(shown) + "'"
