"""Validation helpers for CLI/API job inputs (spec module ``validation``)."""

from .domain.validation import (  # noqa: F401 - re-exported public API
    summarize_validation_error,
    summarize_validation_errors,
    validate_job_spec,
)

__all__ = ["summarize_validation_error", "summarize_validation_errors", "validate_job_spec"]
