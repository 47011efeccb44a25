"""Reading YAML files users write (profiles, job configs) with one-line errors, within
the size, nesting and alias limits of ``domain.documents``."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from ...domain.documents import YAML_LIMITS, check_document_size, parse_yaml_text
from ...domain.errors import ConfigError, InputFileNotFoundError
from ...domain.local_files import file_kind, shown_path


def parse_yaml(text: str, source: str) -> Any:
    """``text`` parsed safely within the YAML limits; an error names ``source``, the
    line and column."""
    return parse_yaml_text(text, source)


def read_user_text(path: Path, source: str) -> str:
    """The UTF-8 text of the YAML file at ``path``, reading no more than the size limit
    allows (a huge file is refused without being read)."""
    limit = YAML_LIMITS.max_bytes
    with open(path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit + 1)
    check_document_size(len(data), source, YAML_LIMITS, "YAML")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8 text; save the file as UTF-8"
        ) from None


def check_user_file(path: Path, what: str, flag: str) -> None:
    """``path`` must be a regular file (or a link to one): a missing file names ``what``
    and the ``flag``; a FIFO, socket, device or folder says what it is -- and is never
    opened (reading a FIFO would wait for a writer forever)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise InputFileNotFoundError(f"{what} {shown_path(os.fspath(path))} does not exist; check the {flag} path") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{what} {shown_path(os.fspath(path))} is {file_kind(mode)}, not a regular file; "
                          f"give a YAML file to {flag}")


def read_yaml_file(path: Path, what: str, flag: str) -> Any:
    """Parse the YAML file at ``path``; a missing file names ``what`` and the ``flag``."""
    check_user_file(path, what, flag)
    source = f"{what} {str(path)!r}"
    return parse_yaml(read_user_text(path, source), source)
