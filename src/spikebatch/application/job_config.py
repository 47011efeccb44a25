"""Turning a user's job config (YAML file or mapping) plus CLI choices into a JobSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from ..domain.errors import ConfigError
from ..domain.models import JobSpec
from ..domain.validation import validate_job_spec


def load_job_config(path: str | Path) -> JobSpec:
    """Read and validate a job config YAML file (a JobSpec mapping)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"job config {str(file)!r} does not exist; check the --job-config path")
    try:
        payload: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"job config {str(file)!r}:{where} {problem}; fix the YAML syntax") from None
    if payload is None:
        payload = {}
    try:
        return validate_job_spec(payload)
    except ConfigError as exc:
        raise ConfigError(f"job config {str(file)!r}: {exc.message}") from None


def apply_image_choice(job_spec: JobSpec, *, image: Optional[str] = None, image_profile: Optional[str] = None) -> JobSpec:
    """The JobSpec with --image / --image-profile applied (an explicit image wins)."""
    update: dict[str, Any] = {}
    if image_profile:
        update["image_profile"] = image_profile
    if image:
        update["container"] = job_spec.container.model_copy(update={"image": image})
        # model_copy skips validation; validate the image the user typed.
        type(job_spec.container).model_validate(update["container"].model_dump(exclude_unset=True))
    if not update:
        return job_spec
    copied = job_spec.model_copy(update=update)
    # keep "explicitly set" bookkeeping (profile merges depend on it)
    copied.__pydantic_fields_set__ = set(job_spec.model_fields_set) | set(update)
    return copied
