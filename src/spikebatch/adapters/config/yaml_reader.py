"""Reading YAML files users write (profiles, job configs) with one-line errors, within
the size, nesting and alias limits of ``domain.documents``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...domain.documents import YAML_LIMITS, check_document_size, parse_yaml_text
from ...domain.errors import ConfigError


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


def read_yaml_file(path: Path, what: str, flag: str) -> Any:
    """Parse the YAML file at ``path``; a missing file names ``what`` and the ``flag``."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist; check the {flag} path")
    source = f"{what} {str(path)!r}"
    return parse_yaml(read_user_text(path, source), source)
