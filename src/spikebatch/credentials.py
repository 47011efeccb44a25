"""Credential resolution and redaction utilities (spec module ``credentials``)."""

from .adapters.config.credentials import ResolvedCredentials, resolve_credentials  # noqa: F401
from .domain.redaction import MASK, UNSET, redact_document, redact_sensitive_map, redact_text  # noqa: F401

__all__ = [
    "MASK",
    "UNSET",
    "ResolvedCredentials",
    "redact_document",
    "redact_sensitive_map",
    "redact_text",
    "resolve_credentials",
]
