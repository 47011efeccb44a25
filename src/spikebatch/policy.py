"""Cluster policy preflight checks for job specs (spec module ``policy``): the names of
spikelab.batch_jobs.policy (``PolicyFinding``, ``evaluate_policy``,
``summarize_preflight``, ``PolicyConfig``) and spikebatch's own."""

from .domain.models import ClusterProfile, JobSpec, PolicyConfig  # noqa: F401 - as the reference's module has them
from .domain.policy import (  # noqa: F401 - re-exported public API
    BLOCK,
    INTERACTIVE_GPU_LIMIT,
    LONG_RUNTIME,
    PASS,
    REFERENCE_CHECKS,
    REQUEST_LIMIT_MISMATCH,
    SLEEP_IN_BATCH_JOB,
    WARN,
    Level,
    PolicyFinding,
    PreflightSummary,
    evaluate_policy,
    summarize_preflight,
)

__all__ = [
    "BLOCK",
    "INTERACTIVE_GPU_LIMIT",
    "LONG_RUNTIME",
    "PASS",
    "REFERENCE_CHECKS",
    "REQUEST_LIMIT_MISMATCH",
    "SLEEP_IN_BATCH_JOB",
    "WARN",
    "Level",
    "PolicyConfig",
    "PolicyFinding",
    "PreflightSummary",
    "evaluate_policy",
    "summarize_preflight",
]
