"""Checking and rendering a job without submitting it: the policy verdict over the job
as it would run, and its final manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional

from ..domain.effective import resolve_image
from ..domain.manifest import manifest_to_yaml, render_job_manifest
from ..domain.models import ClusterProfile, JobSpec
from ..domain.naming import make_job_name, new_run_id
from ..domain.policy import PreflightSummary, evaluate_policy, summarize_preflight
from ..domain.redaction import redact_sensitive_map
from ..domain.validation import validate_job_spec


def as_job_spec(job_spec: Any) -> JobSpec:
    """A JobSpec from a JobSpec or from a mapping of its fields (validated)."""
    return job_spec if isinstance(job_spec, JobSpec) else validate_job_spec(job_spec)


def check_policy(job_spec: JobSpec, profile: ClusterProfile, extra_findings: Iterable[Any] = (), *,
                 include_passes: bool = False) -> PreflightSummary:
    """The policy findings for ``job_spec`` on ``profile`` (plus ``extra_findings``: a
    batch's own); ``include_passes``: a PASS finding for each check that found nothing.

    The image is resolved first: a missing or unknown image is a configuration error
    with a precise fix, better said as such than as the policy's missing-image block."""
    resolve_image(job_spec, profile)
    findings = evaluate_policy(job_spec, profile, include_passes=include_passes)
    return summarize_preflight(findings + list(extra_findings))


@dataclass(frozen=True)
class RenderedJob:
    job_name: str
    #: The manifest as it would be submitted: real values, never to be shown.
    manifest: Dict[str, Any]
    #: The manifest to show or store for the user, secrets masked (``redact_sensitive_map``).
    shown_manifest: Dict[str, Any]
    #: ``shown_manifest`` as YAML.
    yaml: str
    policy: PreflightSummary


def render_job(job_spec: JobSpec, profile: ClusterProfile,
               secret_values: Optional[Iterable[Optional[str]]] = None) -> RenderedJob:
    """The Job manifest ``job_spec`` would be submitted as (a new name and run id), with
    the policy's verdict on it. Nothing is submitted. What is meant to be shown is
    masked: values of secret-named variables, and ``secret_values`` (the user's own
    credentials) wherever they appear."""
    policy = check_policy(job_spec, profile)
    job_name = make_job_name(job_spec.name_prefix)
    manifest = render_job_manifest(job_name, job_spec, profile, new_run_id())
    shown = redact_sensitive_map(manifest, list(secret_values or ()))
    return RenderedJob(job_name, manifest, shown, manifest_to_yaml(shown), policy)
