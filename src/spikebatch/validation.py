"""Validation helpers for CLI/API job inputs (spec module ``validation``)."""

from .domain.validation import summarize_validation_errors, validate_job_spec  # noqa: F401

__all__ = ["summarize_validation_errors", "validate_job_spec"]
