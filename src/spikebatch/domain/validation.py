"""Validation of raw job-spec payloads into models, with one line per problem."""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Type, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import JobSpecValidationError
from .models import JobSpec

M = TypeVar("M", bound=BaseModel)


def _location(loc: Iterable[Any]) -> str:
    parts: List[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "(top level)"


def summarize_validation_errors(error: ValidationError, root: str = "") -> List[str]:
    """``field.path: what is wrong`` for each problem pydantic found."""
    lines = []
    for problem in error.errors(include_url=False):
        loc = [root, *problem["loc"]] if root else problem["loc"]
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field; remove it or check its spelling"
        elif problem["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{_location(loc)}: {message}")
    return lines


def validate_model(model: Type[M], payload: Any, root: str = "") -> M:
    """Validate ``payload`` as ``model``; raise JobSpecValidationError naming each field."""
    if isinstance(payload, model):
        return payload
    if not isinstance(payload, Mapping):
        where = f"{root}: " if root else ""
        raise JobSpecValidationError(
            [f"{where}expected a mapping of fields, got {type(payload).__name__}"]
        )
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        raise JobSpecValidationError(summarize_validation_errors(exc, root)) from None


def validate_job_spec(payload: Any) -> JobSpec:
    """Parse and validate a raw job spec payload (e.g. a loaded YAML mapping)."""
    return validate_model(JobSpec, payload)
