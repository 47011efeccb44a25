"""Reading YAML files users write (profiles, job configs) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ...domain.errors import ConfigError


def parse_yaml(text: str, source: str) -> Any:
    """``text`` parsed safely; a syntax error names ``source``, the line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{source}:{where} {problem}; fix the YAML syntax") from None


def read_yaml_file(path: Path, what: str, flag: str) -> Any:
    """Parse the YAML file at ``path``; a missing file names ``what`` and the ``flag``."""
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} does not exist; check the {flag} path")
    return parse_yaml(path.read_text(encoding="utf-8"), f"{what} {str(path)!r}")
