"""Field checks shared by the models: Kubernetes names, absolute paths and labels as
written in YAML."""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

from pydantic import AfterValidator, BeforeValidator

from .naming import is_dns_subdomain, is_rfc1123_label, label_key_problem, label_value_problem


def check_namespace(value: str, what: str = "namespace") -> str:
    if not is_rfc1123_label(value):
        raise ValueError(f"{what} {value!r} must be an RFC 1123 label (a-z, 0-9, '-')")
    return value


def check_dns_subdomain(value: str, what: str) -> str:
    if not is_dns_subdomain(value):
        raise ValueError(f"{what} {value!r} must be a lower-case DNS subdomain")
    return value


def check_absolute(value: Optional[str], what: str) -> Optional[str]:
    if value is not None and not value.startswith("/"):
        raise ValueError(f"{what} {value!r} must be an absolute path")
    return value


def _coerce_labels(value: Any) -> Any:
    # YAML turns `gpu: true` or `batch: 3` into bool/int; a user means the text. A YAML
    # null (`owner:`) is almost always a forgotten value: say so rather than guess.
    if not isinstance(value, dict):
        return value
    out = {}
    for key, val in value.items():
        if val is None:
            raise ValueError(
                f"label {key!r} has no value (YAML null); write {key}: \"\" for an empty value"
            )
        if isinstance(val, bool):
            val = str(val).lower()
        elif isinstance(val, (int, float)):
            val = str(val)
        out[key] = val
    return out


def check_labels(labels: Dict[str, str]) -> Dict[str, str]:
    for key, val in labels.items():
        problem = label_key_problem(key) or label_value_problem(val)
        if problem:
            raise ValueError(problem)
    return labels


#: Kubernetes labels as written in YAML: scalar values become text, then every key and
#: value is checked. Shared by JobSpec and ClusterProfile.
Labels = Annotated[Dict[str, str], BeforeValidator(_coerce_labels), AfterValidator(check_labels)]
