"""Cluster policy preflight checks for job specs (spec module ``policy``)."""

from .domain.policy import (  # noqa: F401 - re-exported public API
    BLOCK,
    PASS,
    WARN,
    PolicyFinding,
    PreflightSummary,
    evaluate_policy,
    summarize_preflight,
)

__all__ = ["BLOCK", "PASS", "WARN", "PolicyFinding", "PreflightSummary", "evaluate_policy", "summarize_preflight"]
