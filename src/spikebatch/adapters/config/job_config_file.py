"""Job config files: a YAML mapping of JobSpec fields."""

from __future__ import annotations

from pathlib import Path

from ...domain.errors import ConfigError
from ...domain.models import JobSpec
from ...domain.validation import validate_job_spec
from .yaml_reader import read_yaml_file


def load_job_config(path: str | Path) -> JobSpec:
    """Read and validate a job config YAML file (a JobSpec)."""
    file = Path(path).expanduser()
    payload = read_yaml_file(file, "job config", "--job-config")
    try:
        return validate_job_spec({} if payload is None else payload)
    except ConfigError as exc:
        raise ConfigError(f"job config {str(file)!r}: {exc.message}") from None
